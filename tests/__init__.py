"""Tracklane's test suite, one folder per layer (each folder's ``__init__.py`` says what it may use):

- ``unit/``: pure functions and objects; no server, no network, no service (a child interpreter at
  most). Property tests (Hypothesis) sit beside their subject as ``test_<subject>_properties.py``.
- ``backend/``: the store and the artifact stores called directly, against SQLite, PostgreSQL and
  MinIO; no gRPC.
- ``contract/``: the API as a wire contract, real gRPC and HTTP (Connect, MLflow REST, the UI's
  files) against an in-process server; ``contract/serving/`` the same for ``tracklane models
  serve``, a subprocess server.
- ``client/``: the Python client library (Client, fluent API, metric streaming, artifacts, models,
  evaluate, recipes) against an in-process server.
- ``e2e/``: real processes: the ``tracklane`` CLI, subprocess servers (restarts, workers, TLS),
  fault injection (kills, outages, full disks), other languages' clients, the stock MLflow client,
  containers.
- ``ui/``: the web UI in a real Chromium against an in-process server.

Servers are started one way, by :mod:`tests.servers`; services and tools are found by
tests/conftest.py (which lists the environment variables). Helpers shared by several layers live at
this level (``*_helpers.py``); a folder's own helpers live in it.
"""
