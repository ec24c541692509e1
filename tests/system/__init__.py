"""Homepage tests: the page rendered by a real browser in front of a real gunicorn."""
