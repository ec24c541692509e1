# MiniMax Free API: gunicorn with gevent workers, as a non-root user.
#   docker build -t minimax-free-api .
#   docker run -d -p 127.0.0.1:8000:8000 --env-file minimax-free-api.env -e GATEWAY_BIND=0.0.0.0:8000 minimax-free-api
# (compose.yaml does the same; deploy/README.md has the details.)
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    GATEWAY_BIND=0.0.0.0:8000

RUN useradd --system --uid 10001 --user-group --no-create-home --shell /usr/sbin/nologin minimax \
    && mkdir -m 700 /data && chown minimax:minimax /data
# The lasting state (kept chats, renewed tokens, the record of chats to delete) and the
# control socket: a volume, so they outlive the container (compose.yaml names it).
ENV GATEWAY_DATA_DIR=/data
VOLUME /data

WORKDIR /app
# Dependencies first: this layer is reused until requirements.txt changes. The same
# virtual environment as the README's command (.venv beside the code).
COPY requirements.txt ./
RUN python3 -m venv .venv && .venv/bin/pip install --no-cache-dir -r requirements.txt

COPY gateway/ gateway/
COPY templates/ templates/
COPY deploy/ deploy/
COPY wsgi.py ./

USER minimax
EXPOSE 8000
# slim has no curl; the port follows GATEWAY_BIND.
HEALTHCHECK --interval=30s --timeout=5s --start-period=15s --retries=3 \
    CMD ["python3", "-c", "import os, urllib.request; port = os.environ.get('GATEWAY_BIND', '0.0.0.0:8000').rsplit(':', 1)[1]; urllib.request.urlopen(f'http://127.0.0.1:{port}/healthz', timeout=4)"]
# gunicorn stops gracefully on SIGTERM (open streams get GATEWAY_GRACEFUL_TIMEOUT).
STOPSIGNAL SIGTERM
CMD ["/app/.venv/bin/gunicorn", "-c", "deploy/gunicorn.conf.py", "wsgi:app"]
