"""``predict``: batch scoring with pandas, batch by batch (no Spark, memory bounded by ``batch_size``).

The model is the version ``register`` produced when it is in the cache, else ``model_uri``, else
the latest version of ``model_registry.model_name``. Predictions are added as ``prediction``
(classifiers' scores as further columns) and written to ``output.location`` as parquet or CSV
(``delta`` needs the deltalake package).
"""

from __future__ import annotations

import importlib.util
import os
import shutil
from pathlib import Path
from typing import Any

from tracklane.recipes.errors import RecipeError
from tracklane.recipes.schema import PredictConfig
from tracklane.recipes.steps._context import SCORED, SCORING_INGESTED, StepContext

__all__ = ["missing_engine", "run"]

PREDICTION = "prediction"


def missing_engine(section: PredictConfig | None) -> str | None:
    """Why this output cannot be written here, else None."""
    if section is None:
        return None
    if section.output.using == "table":
        return "steps.predict.output: using: table writes a Spark/Databricks table; use parquet, csv or delta"
    if section.output.using == "delta" and importlib.util.find_spec("deltalake") is None:
        return "steps.predict.output: using: delta needs the deltalake package (pip install deltalake)"
    return None


def run(ctx: StepContext) -> dict[str, Any]:
    """Scores every row of the ingested scoring set."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    import tracklane

    section = ctx.config.schema.steps.predict
    if section is None:
        raise RecipeError("steps.predict is not configured in recipe.yaml")
    problem = missing_engine(section)
    if problem:
        raise RecipeError(problem)
    location = Path(section.output.location)
    location = location if location.is_absolute() else ctx.config.root / location
    if location.exists() and section.save_mode in ("default", "error", "errorifexists"):
        raise RecipeError(
            f"steps.predict.output.location {section.output.location} exists (save_mode: {section.save_mode})"
        )
    model_uri = str(ctx.extra["model_uri"])
    model = tracklane.pyfunc.load_model(model_uri)
    source = pq.ParquetFile(ctx.input_file("ingest_scoring", SCORING_INGESTED))
    scored_path = ctx.out / SCORED
    writer: Any = None
    rows = 0
    summary: Any = None
    preview: Any = None
    try:
        for batch in source.iter_batches(batch_size=section.batch_size):
            frame = batch.to_pandas()
            scored = _score(model, frame, section.result_type)
            table = pa.Table.from_pandas(scored, preserve_index=False)
            if writer is None:
                writer = pq.ParquetWriter(scored_path, table.schema)
                preview = scored.head(10)
            writer.write_table(table.cast(writer.schema) if table.schema != writer.schema else table)
            rows += len(scored)
            summary = _running_summary(summary, scored[PREDICTION])
    finally:
        if writer is not None:
            writer.close()
    if writer is None:
        raise RecipeError("the scoring dataset is empty")
    written = _publish(scored_path, location, section)
    ctx.card.fact("model", model_uri)
    ctx.card.fact("rows scored", rows)
    ctx.card.fact(
        "output",
        f"{section.output.location} ({section.output.using}{'' if written else ', kept: save_mode ignore'})",
    )
    if summary is not None:
        ctx.card.add_table("Predictions", [summary])
    ctx.card.add_table("Preview", preview)
    return {"rows": rows, "model_uri": model_uri, "output": section.output.location, "written": written}


def _score(model: Any, frame: Any, result_type: str) -> Any:
    import pandas as pd

    out = model.predict(frame)
    scored = frame.drop(columns=[PREDICTION], errors="ignore").reset_index(drop=True)
    if isinstance(out, pd.DataFrame):
        label = next((c for c in out.columns if str(c).endswith("label")), out.columns[0])
        scored[PREDICTION] = out[label].to_numpy()
        for column in out.columns:
            if column != label:
                scored[str(column)] = out[column].to_numpy()
    else:
        scored[PREDICTION] = pd.Series(out).to_numpy()
    if result_type in ("double", "float") and pd.api.types.is_numeric_dtype(scored[PREDICTION]):
        scored[PREDICTION] = scored[PREDICTION].astype("float64" if result_type == "double" else "float32")
    return scored


def _running_summary(summary: dict[str, Any] | None, values: Any) -> dict[str, Any]:
    import pandas as pd

    if not pd.api.types.is_numeric_dtype(values):
        counts = dict(summary or {})
        for label, count in values.value_counts().items():
            counts[str(label)] = int(counts.get(str(label), 0)) + int(count)
        return counts
    current = {
        "count": int(values.count()),
        "min": float(values.min()),
        "max": float(values.max()),
        "sum": float(values.sum()),
    }
    if summary:
        current = {
            "count": summary["count"] + current["count"],
            "min": min(summary["min"], current["min"]),
            "max": max(summary["max"], current["max"]),
            "sum": summary["sum"] + current["sum"],
        }
    current["mean"] = current["sum"] / max(1, current["count"])
    return current


def _publish(scored: Path, location: Path, section: PredictConfig) -> bool:
    import pyarrow.parquet as pq

    if location.exists() and section.save_mode == "ignore":
        return False
    location.parent.mkdir(parents=True, exist_ok=True)
    tmp = location.with_name(f".{location.name}.tmp")
    if section.output.using == "parquet":
        shutil.copyfile(scored, tmp)
    elif section.output.using == "csv":
        import pyarrow.csv as pcsv

        source = pq.ParquetFile(scored)
        with pcsv.CSVWriter(tmp, source.schema_arrow) as writer:
            for batch in source.iter_batches():
                writer.write_batch(batch)
    else:  # delta
        from deltalake import write_deltalake

        source = pq.ParquetFile(scored)
        mode = "overwrite"
        for batch in source.iter_batches():
            write_deltalake(str(location), batch, mode=mode)
            mode = "append"
        return True
    if location.is_dir():
        shutil.rmtree(location)
    os.replace(tmp, location)
    return True
