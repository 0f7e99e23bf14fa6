"""The ``tracklane`` command's client side: one module per command group.

``commands`` adds them to the parser and runs them (``tracklane_server.cli`` owns the parser and
``server``/``db``); ``render`` turns results into tables and JSON; ``connect`` checks for a server
and explains one that is not there.
"""
