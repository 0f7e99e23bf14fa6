"""The model being served: loaded once per worker, scored through the batcher by both protocols."""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from tracklane.exceptions import InvalidArgument
from tracklane.models.schema import Schema
from tracklane.serving.batching import Batcher
from tracklane.serving.metrics import Metrics
from tracklane.serving.payload import ModelInput, ScoringError, parse_request, render_predictions

__all__ = ["ServedModel", "load_served_model", "scoring_errors"]

log = logging.getLogger("tracklane.serving")


@dataclass
class ServedModel:
    """A loaded pyfunc model with its name and version (as the Open Inference Protocol names it).

    Attributes:
        pyfunc: The ``tracklane.pyfunc.PyFuncModel``.
        name: The registered model's name, else the folder's name.
        version: The registered version, else ``""``.
        batcher: Where every model call goes.
        metrics: This process's Prometheus metrics.
    """

    pyfunc: Any
    name: str
    version: str
    batcher: Batcher
    metrics: Metrics

    @property
    def input_schema(self) -> Schema | None:
        """The signature's inputs, when the model has one."""
        schema: Schema | None = self.pyfunc.metadata.get_input_schema()
        return schema

    @property
    def output_schema(self) -> Schema | None:
        """The signature's outputs, when the model has one."""
        schema: Schema | None = self.pyfunc.metadata.get_output_schema()
        return schema

    async def predict(self, data: Any, params: dict[str, Any] | None = None) -> Any:
        """Predictions, the input checked against the signature; ScoringError for bad input."""
        with scoring_errors():
            return await self.batcher.predict(data, params)

    async def invocations(self, body: bytes, content_type: str | None) -> bytes:
        """One MLflow scoring request: the body in, ``{"predictions": ...}`` out."""
        parsed: ModelInput = parse_request(body, content_type, self.input_schema)
        return render_predictions(await self.predict(parsed.data, parsed.params))


@contextlib.contextmanager
def scoring_errors() -> Iterator[None]:
    """Turns what a model call raises into MLflow's scoring errors.

    A signature mismatch is INVALID_PARAMETER_VALUE (its message names the column); anything else
    the model raises is BAD_REQUEST, as MLflow's scoring server answers it, and logged.
    """
    try:
        yield
    except InvalidArgument as exc:
        raise ScoringError(exc.message, error_code="INVALID_PARAMETER_VALUE") from None
    except ScoringError:
        raise
    except Exception as exc:
        log.exception("the model failed on a request")
        raise ScoringError(
            "Encountered an unexpected error while evaluating the model. Verify that the input is "
            f"compatible with the model for inference. Error: {type(exc).__name__}: {exc}"
        ) from None


def load_served_model(
    model_dir: str, name: str, version: str, max_batch_size: int = 1, max_batch_delay_ms: float = 0.0
) -> ServedModel:
    """Loads the model folder and wraps it for serving (call inside the serving loop)."""
    from tracklane.pyfunc import load_model

    started = time.monotonic()
    pyfunc = load_model(model_dir)
    metrics = Metrics()

    def predict(data: Any, params: dict[str, Any] | None) -> Any:
        return pyfunc.predict(data, params=params)

    batcher = Batcher(predict, max_batch_size, max_batch_delay_ms / 1000.0)
    batcher.on_batch = metrics.batch_size.observe
    log.info("loaded %s in %.2f s", model_dir, time.monotonic() - started)
    return ServedModel(pyfunc, name, version, batcher, metrics)
