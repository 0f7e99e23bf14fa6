"""Models from code: a Python script that builds the model and hands it over with ``set_model``.

    # my_model.py
    import tracklane

    class Echo(tracklane.pyfunc.PythonModel):
        def predict(self, context, model_input, params=None):
            return model_input

    tracklane.models.set_model(Echo())

``tracklane.pyfunc.log_model("model", python_model="my_model.py")`` stores the script itself, not a
pickle: loading runs the script, which is as trustworthy as its author (no more, no less than a
pickle, but it can be read first).
"""

from __future__ import annotations

import os
import runpy
import threading
from typing import Any

__all__ = ["load_model_from_code", "set_model"]

# Loading runs a script that calls set_model: one load at a time, so each gets its own model.
_lock = threading.RLock()
_model: list[Any] = []


def set_model(model: Any) -> None:
    """Declares the model a models-from-code script defines.

    Args:
        model: A ``tracklane.pyfunc.PythonModel`` instance, or a function taking the model input
            and returning predictions.

    Raises:
        TypeError: neither.
    """
    from tracklane.pyfunc.model import PythonModel

    if not isinstance(model, PythonModel) and not callable(model):
        raise TypeError(f"set_model expects a PythonModel or a function, got {type(model).__name__}")
    _model[:] = [model]


def load_model_from_code(path: str) -> Any:
    """Runs the script at ``path`` and returns what it passed to ``set_model``.

    Raises:
        FileNotFoundError: no such script.
        RuntimeError: the script never called ``set_model``.
    """
    if not os.path.isfile(path):
        raise FileNotFoundError(f"model code not found: {path}")
    with _lock:
        _model.clear()
        runpy.run_path(path, run_name="__tracklane_model__")
        if not _model:
            raise RuntimeError(f"{path} did not call tracklane.models.set_model(model)")
        model = _model.pop()
    return model
