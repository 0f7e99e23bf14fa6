"""Optional libraries (pandas, scikit-learn, skops, cloudpickle), imported when first needed."""

from __future__ import annotations

import importlib
from typing import Any

# Module -> the pip package and the tracklane extra that brings it.
_PACKAGES = {
    "pandas": ("pandas", "models"),
    "cloudpickle": ("cloudpickle", "models"),
    "sklearn": ("scikit-learn", "sklearn"),
    "skops.io": ("skops", "sklearn"),
}


def require(module: str) -> Any:
    """Imports ``module``; ImportError saying what to install when it is missing."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        package, extra = _PACKAGES.get(module, (module, "models"))
        raise ImportError(
            f"this needs the {package!r} package: pip install {package} (or 'tracklane[{extra}]')"
        ) from exc


def pandas_or_none() -> Any:
    """pandas when installed, else None (for isinstance checks that need not import it)."""
    try:
        return importlib.import_module("pandas")
    except ImportError:
        return None
