"""Authentication (TLS, API tokens, users) and authorization (per-resource permissions)."""
