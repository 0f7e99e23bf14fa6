"""The gRPC servicers: validate a request, call the store (through runtime/'s thread pool), build
the response; plus the request checks and handler tables they share.

May import store/ (never SQLAlchemy itself), runtime/, artifacts/, identity/ and the client's
shared core; never auth/ (policy sits in front, as interceptors) or http/.
"""
