"""Authentication (TLS, API tokens, users) and authorization (per-resource permissions).

What lives here: the policy (which rule guards each method, policy.py), the authentication and
authorization interceptors, the bootstrap admin, and the re-checking of long-lived calls
(revocation.py). The SQL they read (users, tokens, grants, read filters) is the store's
(store/users.py, store/access.py); the caller is identity/'s.

May import identity/, store/, runtime/ (the thread pool) and the client's shared core; never
services/ or http/.
"""
