"""python -m tracklane_server: the same as the tracklane command."""

from tracklane_server.cli import main

main()
