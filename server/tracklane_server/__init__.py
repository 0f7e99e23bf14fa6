"""The Tracklane server: a gRPC (and HTTP) front over a SQL store and an artifact store.

Layers, top down: app.py/cli.py/settings.py wire everything (the only place that builds objects);
http/ and interceptors.py sit in front of services/ (the servicers); auth/ decides who may call
what; runtime/ runs blocking store calls, commit queues and sweepers; store/ holds every line of
SQL; artifacts/ holds the file stores; identity/ (the caller) is neutral ground for all of them.
A layer imports only those below it; every layer may import the client's shared core.
"""
