"""The HTTP listener: the web UI, and the same services for browsers over Connect.

Also MLflow's REST API (mlflow_rest/) and artifact downloads. Calls go through the gRPC handlers
(dispatch.py), so the same interceptors guard them. May import services/, auth/, runtime/,
store/ page tokens and the client's shared core.
"""
