"""AIP-134 update masks: which fields an Update call changes."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from tracklane.exceptions import InvalidArgument


def update_fields(request: Any, *, allowed: Sequence[str], implicit: Mapping[str, bool]) -> set[str]:
    """The paths of ``request.update_mask``, checked against ``allowed``.

    An empty mask means every field the request sets (``implicit``), so a client that knows
    nothing of masks still gets what it asked for; a mask can also clear a field.
    """
    paths = list(request.update_mask.paths)
    if not paths:
        return {name for name, present in implicit.items() if present}
    for i, path in enumerate(paths):
        if path not in allowed:
            raise InvalidArgument(
                f"update_mask.paths[{i}]: {path!r} cannot be updated; use {', '.join(allowed)}",
                field=f"update_mask.paths[{i}]",
            )
    return set(paths)
