"""gunicorn's entry point: `gunicorn session_lab.wsgi:app`."""

from . import create_app

app = create_app()
