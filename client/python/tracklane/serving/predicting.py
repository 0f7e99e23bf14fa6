"""Batch scoring of one input file: ``tracklane models predict`` and ``tracklane.models.predict``.

The input is read by the same code as the server's (``payload``), so a file that scores with
``curl`` scores here, and the output is the server's ``{"predictions": ...}``. Run as
``python -m tracklane.serving.predicting MODEL_DIR INPUT OUTPUT CONTENT_TYPE`` inside another
environment; ``-`` for stdin/stdout.
"""

from __future__ import annotations

import sys

from tracklane.serving.payload import (
    CONTENT_TYPE_CSV,
    CONTENT_TYPE_JSON,
    CONTENT_TYPE_PARQUET,
    ScoringError,
    parse_request,
    render_predictions,
)

__all__ = ["CONTENT_TYPE_NAMES", "predict_file"]

#: ``-t`` choices and the media type each stands for.
CONTENT_TYPE_NAMES = {"json": CONTENT_TYPE_JSON, "csv": CONTENT_TYPE_CSV, "parquet": CONTENT_TYPE_PARQUET}


def predict_file(model_dir: str, input_path: str, output_path: str, content_type: str = "json") -> None:
    """Scores the file at ``input_path`` (``-``: stdin) into ``output_path`` (``-``: stdout).

    Raises:
        ScoringError: the input does not parse or does not fit the signature.
    """
    from tracklane.pyfunc import load_model
    from tracklane.serving.scoring import scoring_errors

    if content_type not in CONTENT_TYPE_NAMES:
        raise ScoringError(f"content type {content_type!r}: use one of {', '.join(CONTENT_TYPE_NAMES)}")
    model = load_model(model_dir)
    body = sys.stdin.buffer.read() if input_path == "-" else _read(input_path)
    parsed = parse_request(body, CONTENT_TYPE_NAMES[content_type], model.metadata.get_input_schema())
    with scoring_errors():
        predictions = model.predict(parsed.data, params=parsed.params)
    out = render_predictions(predictions)
    if output_path == "-":
        sys.stdout.buffer.write(out + b"\n")
        sys.stdout.flush()
    else:
        with open(output_path, "wb") as dst:
            dst.write(out)


def _read(path: str) -> bytes:
    with open(path, "rb") as src:
        return src.read()


def main(argv: list[str] | None = None) -> None:
    """``python -m tracklane.serving.predicting MODEL_DIR INPUT OUTPUT CONTENT_TYPE``."""
    model_dir, input_path, output_path, content_type = sys.argv[1:] if argv is None else argv
    try:
        predict_file(model_dir, input_path, output_path, content_type)
    except ScoringError as exc:
        print(f"tracklane: error: {exc.error_code}: {exc.message}", file=sys.stderr)
        sys.exit(2)


if __name__ == "__main__":
    main()
