"""Import-order guarantees the deployment depends on."""

import subprocess
import sys


def test_reading_settings_imports_no_http_stack() -> None:
    # gunicorn.conf.py reads settings in the arbiter, before the gevent worker
    # monkey-patches: ssl/requests imported there would stay unpatched.
    code = "import sys, gateway.config; print(sorted(m for m in ('requests', 'ssl', 'urllib3', 'flask') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_upstream_package_imports_no_web_framework() -> None:
    code = "import sys, gateway.upstream.client, gateway.upstream.files; print('flask' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"
