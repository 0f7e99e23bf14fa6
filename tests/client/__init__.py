"""client: the Python client library against an in-process server (``tracking_server``, ``client``
and ``fl`` fixtures, see tests/servers/): the fluent API, metric streaming (buffer, sender, spool,
fork), artifacts, models and flavors, evaluate, system metrics, recipes. What was written is read
back through tracklane.Client. Child interpreters appear only as training processes (fork, exit);
tests of the ``tracklane`` command or of server processes belong in e2e/.
"""
