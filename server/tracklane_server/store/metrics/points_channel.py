"""The PostgreSQL notification channel that tells every server process a run has new points.

Writers NOTIFY inside the transaction that stores the points (chunk_io.upsert_latest_pg):
PostgreSQL delivers it at commit, to every listening connection (other replicas included), and
never for a rolled-back write. SQLite watchers are woken in-process instead.
"""

from __future__ import annotations

#: Channel name; the payload is the run id.
CHANNEL = "tracklane_points"
