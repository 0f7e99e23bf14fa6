"""``ingest`` and ``ingest_scoring``: the dataset, whatever its format, as one parquet file.

Files are streamed batch by batch (pyarrow), so a scoring set larger than memory is converted in
bounded memory. Parquet and CSV are read natively, a folder holds several files of the format, a
``loader_method`` of steps/ingest.py reads any other format one file at a time; ``delta`` needs
the ``deltalake`` package, ``spark_sql`` needs PySpark.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from tracklane.recipes.code import load_function
from tracklane.recipes.errors import RecipeError
from tracklane.recipes.keys import data_files
from tracklane.recipes.schema import IngestConfig
from tracklane.recipes.steps._context import INGESTED, SCORING_INGESTED, StepContext

__all__ = ["missing_engine", "run", "run_scoring"]

_PROFILE_ROWS = 10_000


def missing_engine(section: IngestConfig, where: str) -> str | None:
    """Why this ingest configuration cannot run here (an engine not installed), else None."""
    if section.using == "delta" and importlib.util.find_spec("deltalake") is None:
        return f"{where}: using: delta needs the deltalake package (pip install deltalake); not PySpark"
    if section.using == "spark_sql" and importlib.util.find_spec("pyspark") is None:
        return f"{where}: using: spark_sql needs PySpark (pip install pyspark) and a Java runtime"
    return None


def run(ctx: StepContext) -> dict[str, Any]:
    """The training dataset."""
    return _ingest(ctx, ctx.config.schema.steps.ingest, INGESTED, training=True)


def run_scoring(ctx: StepContext) -> dict[str, Any]:
    """The dataset to score."""
    section = ctx.config.schema.steps.ingest_scoring
    if section is None:
        raise RecipeError("steps.ingest_scoring is not configured in recipe.yaml")
    return _ingest(ctx, section, SCORING_INGESTED, training=False)


def _ingest(ctx: StepContext, section: IngestConfig, output: str, training: bool) -> dict[str, Any]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    problem = missing_engine(section, f"steps.{ctx.step}")
    if problem:
        raise RecipeError(problem)
    target = ctx.out / output
    rows = 0
    writer: Any = None
    schema: Any = None
    try:
        for batch in _batches(ctx, section):
            table = pa.Table.from_batches([batch]) if isinstance(batch, pa.RecordBatch) else batch
            if schema is None:
                schema = table.schema
                writer = pq.ParquetWriter(target, schema)
            elif table.schema != schema:
                table = _conform(table, schema)
            writer.write_table(table)
            rows += table.num_rows
    finally:
        if writer is not None:
            writer.close()
    if writer is None:
        raise RecipeError(f"steps.{ctx.step}: the dataset is empty")
    sample = _sample(target)
    facts: dict[str, Any] = {"rows": rows, "columns": len(schema.names)}
    if training:
        _check_target(ctx, sample if rows <= _PROFILE_ROWS else pq.read_table(target).to_pandas())
    ctx.card.fact("rows", rows)
    ctx.card.fact("source", section.sql or section.location)
    ctx.card.fact("format", section.using)
    if not section.skip_data_profiling:
        from tracklane.recipes.cards import data_profile

        title = "Data profile" + (f" (first {_PROFILE_ROWS} rows)" if rows > _PROFILE_ROWS else "")
        ctx.card.add_html(title, data_profile(sample))
    from tracklane.recipes.cards import schema_table

    ctx.card.add_html("Schema", schema_table(sample))
    ctx.card.add_table("Preview", sample.head(10))
    return facts


def _batches(ctx: StepContext, section: IngestConfig) -> Iterator[Any]:
    import pyarrow as pa

    if section.using == "spark_sql":
        yield from _spark_sql(section)
        return
    if section.using == "delta":
        yield from _delta(ctx.config.root, section)
        return
    loader = None
    if section.loader_method:
        loader = load_function(section.loader_method, "steps.ingest", f"steps.{ctx.step}.loader_method")
    for _name, path in data_files(ctx.config, ctx.step):
        if loader is not None:
            frame = loader(str(path), section.using)
            if frame is None or not hasattr(frame, "columns"):
                raise RecipeError(
                    f"loader_method {section.loader_method} returned {type(frame).__name__}, not a DataFrame"
                )
            yield pa.Table.from_pandas(frame, preserve_index=False)
        elif section.using == "parquet":
            import pyarrow.parquet as pq

            yield from pq.ParquetFile(path).iter_batches(batch_size=65536)
        elif section.using == "csv":
            import pyarrow.csv as pcsv

            yield from pcsv.open_csv(path)


def _delta(root: Path, section: IngestConfig) -> Iterator[Any]:
    from deltalake import DeltaTable

    location = str(section.location)
    path = location if "://" in location else str(root / location)
    table = DeltaTable(path, version=section.version)
    if section.timestamp is not None:
        table.load_as_version(section.timestamp)
    yield from table.to_pyarrow_dataset().to_batches()


def _spark_sql(section: IngestConfig) -> Iterator[Any]:
    import pyarrow as pa
    from pyspark.sql import SparkSession

    spark = SparkSession.builder.getOrCreate()
    frame = spark.sql(section.sql) if section.sql else spark.table(str(section.location))
    yield pa.Table.from_pandas(frame.toPandas(), preserve_index=False)


def _conform(table: Any, schema: Any) -> Any:
    if sorted(table.schema.names) != sorted(schema.names):
        raise RecipeError(f"files of the dataset disagree on columns: {schema.names} vs {table.schema.names}")
    return table.select(schema.names).cast(schema)


def _sample(path: Path) -> Any:
    import pyarrow as pa
    import pyarrow.parquet as pq

    batches = []
    taken = 0
    for batch in pq.ParquetFile(path).iter_batches(batch_size=_PROFILE_ROWS):
        batches.append(batch)
        taken += batch.num_rows
        if taken >= _PROFILE_ROWS:
            break
    return pa.Table.from_batches(batches).slice(0, _PROFILE_ROWS).to_pandas()


def _check_target(ctx: StepContext, frame: Any) -> None:
    schema = ctx.config.schema
    if schema.target_col not in frame.columns:
        raise RecipeError(
            f"target_col {schema.target_col!r} is not a column of the dataset ({list(frame.columns)})"
        )
    if schema.task == "classification" and schema.positive_class is not None:
        classes = frame[schema.target_col].dropna().unique()
        if len(classes) != 2 or schema.positive_class not in set(classes.tolist()):
            raise RecipeError(
                f"positive_class {schema.positive_class!r} makes this a binary problem, but "
                f"{schema.target_col!r} holds {sorted(map(str, classes))[:10]}"
            )
