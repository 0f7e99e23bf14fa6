"""The model registry on SQL: registered models and versions, tags, stages and aliases, history,
and search (the filter compiled by store/query/).

May import store/db/, store/query/, store/access.py (read filters, creator grants) and the shared
core of the client; never auth/ or services/.
"""
