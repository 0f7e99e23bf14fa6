"""The database itself: engine creation (engine.py) and migrations (migrations/, alembic), the
schema (schema.py), transactions with error translation (transactions.py), the dialect object
chosen when the engine is made, page tokens and artifact location URIs.

The bottom of the store: imports nothing else of the server (the client's shared core only).
"""
