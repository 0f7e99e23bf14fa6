"""backend: the store and the artifact stores called directly, no gRPC: SQL store code and
migrations on SQLite and PostgreSQL, artifact stores on a local folder and MinIO (one test body,
both backends; see this folder's conftest.py and the ``s3_service`` / ``postgres_uri`` fixtures).
"""
