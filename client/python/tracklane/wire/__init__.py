"""The wire format client and server share, written once: codecs, header names, key rules, limits.

Part of the shared core (with :mod:`tracklane.v1`, :mod:`tracklane.exceptions` and
:mod:`tracklane.entities`) that the server imports; it imports nothing else of the client, and
nothing of the server.

- :mod:`~tracklane.wire.metrics`: ``StreamMetricsRequest`` batches to and from numpy columns.
- :mod:`~tracklane.wire.artifacts`: the chunk-carrying artifact messages, without payload copies.
- :mod:`~tracklane.wire.headers`: call metadata names.
- :mod:`~tracklane.wire.limits`: the key alphabet and the size limits both sides apply.
"""
