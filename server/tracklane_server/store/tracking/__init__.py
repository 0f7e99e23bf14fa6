"""Experiments and runs on SQL: creation, params and tags, lifecycle, loading runs into messages,
the run change feed, system tags, and run search (the filter compiled by store/query/).

May import store/db/, store/query/, store/metrics/ (a run's points), store/access.py (read
filters, creator grants) and the shared core of the client; never auth/ or services/.
"""
