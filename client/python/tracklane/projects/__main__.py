"""``python -m tracklane.projects run ...``: the same command as ``tracklane run`` (what
``--no-wait`` starts in the background)."""

from tracklane.projects.cli import main

if __name__ == "__main__":
    main()
