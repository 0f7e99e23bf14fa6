"""The HTTP listener: the web UI, and the same services for browsers over Connect."""
