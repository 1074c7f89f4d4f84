"""gunicorn settings for one app node. Values come from the environment, with the defaults below."""

import os

bind = f"0.0.0.0:{os.environ.get('APP_PORT', '8000')}"
# One worker process per node, so the `memory` strategy really is one store per node. Several workers
# would each hold their own dict and lose sessions between workers of one node (see docs/strategies.md).
workers = 1
worker_class = "gthread"
threads = int(os.environ.get("GUNICORN_THREADS", "16"))
# Longer than nginx's upstream keepalive_timeout (30s), so nginx, not gunicorn, closes idle connections
# and never reuses one gunicorn has just closed.
keepalive = 65
timeout = 30
# On SIGTERM, finish in-flight requests for up to this long; compose's stop_grace_period covers it.
graceful_timeout = int(os.environ.get("GUNICORN_GRACEFUL_TIMEOUT", "10"))
accesslog = "-" if os.environ.get("ACCESS_LOG", "false").lower() == "true" else None
errorlog = "-"
loglevel = os.environ.get("LOG_LEVEL", "info")
# Fail at boot, not on the first request, when settings are wrong: the message names the variable.
preload_app = True
