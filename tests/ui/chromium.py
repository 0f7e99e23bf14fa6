"""Debian's Chromium as the browser tests and bench/ui.py launch it (Playwright's own browser
download cannot work here)."""

from __future__ import annotations

import os

CHROMIUM = os.environ.get("TRACKLANE_CHROMIUM", "/usr/bin/chromium")
# Without the background-networking flags Chromium keeps dialling Google's hosts, which this
# network refuses; the rest keep a headless run quiet and reproducible.
CHROMIUM_FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
