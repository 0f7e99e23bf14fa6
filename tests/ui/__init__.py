"""ui: the web UI in a real browser (Debian's Chromium through Playwright) against an in-process
server's HTTP listener, on both backends; see this folder's conftest.py."""
