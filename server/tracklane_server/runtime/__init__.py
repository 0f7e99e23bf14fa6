"""What the server runs on besides the servicers: the thread pool for blocking store calls
(blocking.py), the StreamMetrics commit queue, the points wake-up hub, the stale-upload sweeper,
and memory budgets.

May import store/, artifacts/, identity/ and the client's shared core; never services/, auth/
or http/.
"""
