"""The demo page at `/`: static HTML, CSS and JS from this package (no CDN: rooms are often offline).

It is a client of the public API like any other (/api/strategies, /api/<strategy>/..., /api/lab); every
strategy-specific word on it comes from the strategies' traits, none from a list of names.
"""

from __future__ import annotations

from pathlib import Path

from flask import Blueprint, send_from_directory

STATIC = Path(__file__).with_name("static")

bp = Blueprint("demo", __name__, static_folder=str(STATIC), static_url_path="/demo")


@bp.get("/")
def index():
    return send_from_directory(STATIC, "index.html", mimetype="text/html", max_age=0)
