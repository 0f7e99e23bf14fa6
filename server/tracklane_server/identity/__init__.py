"""Who is calling: neutral ground that both auth/ and store/ import.

Holds the caller (``Principal``) and the default permission of each call (context variables set by
the auth interceptors), the access epoch (bumped after changes that can take access away), and the
API token secrets (generation and hashing). Imports nothing of the server: auth/ decides, store/
filters and records, services/ read the caller; none of them is imported here.
"""
