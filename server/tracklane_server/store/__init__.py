"""Every line of SQL the server runs, behind ``SqlStore`` (sql_store.py, a facade the services use).

- ``db/``: engine, schema, migrations, transactions, the dialect object, page tokens.
- ``tracking/``: experiments, runs, run loading, the run change feed, run search.
- ``metrics/``: metric points, chunks, StreamMetrics ingest, history, watch, notifications.
- ``registry/``: registered models and versions, stages, aliases, history, search.
- ``query/``: the search filter language and the SQL helpers searches share.
- ``access.py`` (permission grants and read filters), ``users.py`` (users and API tokens),
  ``validation.py`` (field checks every store applies).

May import the client's shared core and ``tracklane_server.identity`` (the caller); never
``auth/``, ``services/``, ``runtime/`` or ``http/``, which sit above it.
"""
