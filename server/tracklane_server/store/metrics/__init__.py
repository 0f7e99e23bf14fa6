"""Metric points on SQL: chunked writes (the chunk codec and the per-dialect fast paths),
StreamMetrics ingest applied exactly once, history pages and M4 downsampling, WatchRun reads,
and the commit notifications (PostgreSQL NOTIFY/LISTEN, SQLite's change counter).

May import store/db/ and the shared core of the client; never auth/, services/ or another store
subpackage.
"""
