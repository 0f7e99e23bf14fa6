"""contract: the API as a wire contract, with real gRPC and HTTP on loopback against an
in-process server (``tracking_server``, ``auth_server`` or a ``LocalServer`` of a test's own, see
tests/servers/): status codes and error details, pagination, permissions, limits, hostile input,
Connect, MLflow's REST API. Raw stubs and HTTP clients where the wire matters, tracklane.Client
where it does not. ``serving/``: the same for ``tracklane models serve`` (a subprocess server).
"""
