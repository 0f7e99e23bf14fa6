"""Artifact transfers behind the Client's artifact methods.

- ``methods``: the Client's artifact methods (log, list, download, read), one per RPC or use.
- ``transfer``: the streams themselves: chunked uploads and downloads, direct presigned transfers,
  retries and progress.

The chunk messages are :mod:`tracklane.wire.artifacts`, shared with the server.
"""
