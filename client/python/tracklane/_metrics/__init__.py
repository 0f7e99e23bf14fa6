"""Streamed metric logging: what ``log_metric`` and ``Client.metric_stream()`` stand on.

Layers, each importing only those below it:

- ``_native`` (C): the point buffer a thread appends to, and fluent ``log_metric``'s fast path.
- ``buffer``: the Python side of the buffer (key checks, arrays, segments for the sender).
- ``config``: ``configure_metrics`` and the ``TRACKLANE_METRICS_*`` variables.
- ``batch_stream``: one long-lived ``StreamMetrics`` call with its window of unacknowledged batches.
- ``spool``, ``spool_replay``, ``run_ends``: batches and run ends kept on disk while the server is
  away, and sent later (by the sender, or ``tracklane sync``).
- ``sender``: the background thread that cuts, encodes, sends, spills and replays.
- ``metric_stream``: ``Client.metric_stream()``, the sender for code without the fluent API.

The wire format is :mod:`tracklane.wire.metrics`, shared with the server.
"""
