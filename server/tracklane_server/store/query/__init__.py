"""The search filter language (MLflow's) parsed and compiled to SQLAlchemy, and the public SQL
helpers every search shares (comparisons, keyset pages, tag-sorted ordering).

May import store/db/ (the schema) and the shared core of the client; nothing else of the server.
"""
