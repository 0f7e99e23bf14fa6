"""SQLAlchemy 2 tables: the same schema on SQLite and PostgreSQL. Alembic migrations follow it.

Times are epoch milliseconds (BIGINT), as in MLflow, so they sort and compare cheaply in SQL.
A metric value of NaN is stored as NULL: SQLite turns NaN into NULL anyway, and PostgreSQL orders
NaN above every number, which would make `metrics.x > 0.5` match NaN. NULL compares false on both.
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

# INTEGER PRIMARY KEY is SQLite's rowid alias (autoincrement); BIGINT IDENTITY on PostgreSQL.
BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
Millis = sa.BigInteger

KEY_LENGTH = 250
RUN_ID_LENGTH = 32


class Base(DeclarativeBase):
    """Declarative base; naming convention keeps constraint names stable for Alembic."""

    metadata = sa.MetaData(
        naming_convention={
            "ix": "ix_%(table_name)s_%(column_0_N_name)s",
            "uq": "uq_%(table_name)s_%(column_0_N_name)s",
            "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
            "pk": "pk_%(table_name)s",
            "ck": "ck_%(table_name)s_%(constraint_name)s",
        }
    )


class ExperimentRow(Base):
    __tablename__ = "experiments"

    experiment_id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(sa.String(500), unique=True)
    artifact_location: Mapped[str] = mapped_column(sa.Text)
    lifecycle_stage: Mapped[str] = mapped_column(sa.String(16), default="active")
    description: Mapped[str] = mapped_column(sa.Text, default="")
    creation_time: Mapped[int] = mapped_column(Millis)
    last_update_time: Mapped[int] = mapped_column(Millis)


class ExperimentTagRow(Base):
    __tablename__ = "experiment_tags"

    experiment_id: Mapped[int] = mapped_column(
        BigId, sa.ForeignKey("experiments.experiment_id", ondelete="CASCADE"), primary_key=True
    )
    key: Mapped[str] = mapped_column(sa.String(KEY_LENGTH), primary_key=True)
    value: Mapped[str] = mapped_column(sa.Text)


class RunRow(Base):
    __tablename__ = "runs"
    __table_args__ = (
        # The default listing: newest first within an experiment, run_id breaks ties (keyset paging).
        sa.Index("ix_runs_experiment_start", "experiment_id", "start_time", "run_id"),
        # WatchExperiments: the runs of an experiment changed after a point in time, in order.
        sa.Index("ix_runs_experiment_changed", "experiment_id", "changed_ms", "run_id"),
    )

    run_id: Mapped[str] = mapped_column(sa.String(RUN_ID_LENGTH), primary_key=True)
    experiment_id: Mapped[int] = mapped_column(BigId, sa.ForeignKey("experiments.experiment_id"))
    run_name: Mapped[str] = mapped_column(sa.String(KEY_LENGTH))
    user_id: Mapped[str] = mapped_column(sa.String(256), default="")
    status: Mapped[str] = mapped_column(sa.String(16))
    start_time: Mapped[int] = mapped_column(Millis)
    end_time: Mapped[int | None] = mapped_column(Millis, nullable=True)
    lifecycle_stage: Mapped[str] = mapped_column(sa.String(16), default="active")
    artifact_uri: Mapped[str] = mapped_column(sa.Text)
    parent_run_id: Mapped[str | None] = mapped_column(sa.String(RUN_ID_LENGTH), nullable=True, index=True)
    description: Mapped[str] = mapped_column(sa.Text, default="")
    deleted_time: Mapped[int | None] = mapped_column(Millis, nullable=True)
    # True while the run is deleted because its experiment was: restoring the experiment restores
    # exactly these. An explicit mark, not a time: a run deleted on its own in the same millisecond
    # as its experiment must stay deleted.
    deleted_with_experiment: Mapped[bool] = mapped_column(
        sa.Boolean, default=False, server_default=sa.false()
    )
    # AIP-155 idempotency key of the CreateRun that made this run.
    request_id: Mapped[str | None] = mapped_column(sa.String(128), nullable=True, unique=True)
    # The server's clock at the run's last change (info, params, tags, inputs, metric points): what
    # WatchExperiments reads (store/tracking/run_changes.py).
    changed_ms: Mapped[int] = mapped_column(Millis, default=0, server_default="0")


class ParamRow(Base):
    __tablename__ = "params"

    run_id: Mapped[str] = mapped_column(
        sa.String(RUN_ID_LENGTH), sa.ForeignKey("runs.run_id", ondelete="CASCADE"), primary_key=True
    )
    key: Mapped[str] = mapped_column(sa.String(KEY_LENGTH), primary_key=True)
    # Not indexed: PostgreSQL btree entries are capped near 2.7 kB and values may be longer.
    value: Mapped[str] = mapped_column(sa.Text)


class RunTagRow(Base):
    __tablename__ = "run_tags"

    run_id: Mapped[str] = mapped_column(
        sa.String(RUN_ID_LENGTH), sa.ForeignKey("runs.run_id", ondelete="CASCADE"), primary_key=True
    )
    key: Mapped[str] = mapped_column(sa.String(KEY_LENGTH), primary_key=True)
    value: Mapped[str] = mapped_column(sa.Text)


class LatestMetricRow(Base):
    """Per (run, key): the latest point (largest step, then latest timestamp) and the summaries of
    all points, kept by the same upsert as the points' chunks: search and tables never scan history.

    ``first_*`` is the point at the lowest step; among points at that step the earliest timestamp,
    among those the one stored first. ``min_value``/``max_value`` skip NaN (NULL when every value is
    NaN); ``value_count`` counts every point. Each summary has a (key, column) index, as the value.
    """

    __tablename__ = "latest_metrics"
    __table_args__ = (
        sa.Index("ix_latest_metrics_key_value", "key", "value"),
        sa.Index("ix_latest_metrics_key_min_value", "key", "min_value"),
        sa.Index("ix_latest_metrics_key_max_value", "key", "max_value"),
        sa.Index("ix_latest_metrics_key_first_value", "key", "first_value"),
        sa.Index("ix_latest_metrics_key_value_count", "key", "value_count"),
    )

    run_id: Mapped[str] = mapped_column(
        sa.String(RUN_ID_LENGTH), sa.ForeignKey("runs.run_id", ondelete="CASCADE"), primary_key=True
    )
    key: Mapped[str] = mapped_column(sa.String(KEY_LENGTH), primary_key=True)
    value: Mapped[float | None] = mapped_column(sa.Float(precision=53), nullable=True)  # NULL = NaN
    step: Mapped[int] = mapped_column(sa.BigInteger)
    timestamp_ms: Mapped[int] = mapped_column(Millis)
    # Sequence of the newest chunk of this (run, key). Bumped by the same upsert that updates the
    # latest value, so concurrent writers get distinct chunk numbers from one row lock.
    chunk_seq: Mapped[int] = mapped_column(sa.BigInteger, default=0)
    min_value: Mapped[float | None] = mapped_column(sa.Float(precision=53), nullable=True)
    max_value: Mapped[float | None] = mapped_column(sa.Float(precision=53), nullable=True)
    first_value: Mapped[float | None] = mapped_column(sa.Float(precision=53), nullable=True)  # NULL = NaN
    # Server defaults: a replica still on the previous version inserts rows without these.
    first_step: Mapped[int] = mapped_column(sa.BigInteger, default=0, server_default="0")
    first_timestamp_ms: Mapped[int] = mapped_column(Millis, default=0, server_default="0")
    value_count: Mapped[int] = mapped_column(sa.BigInteger, default=0, server_default="0")


class MetricChunkRow(Base):
    """Up to ~1,000+ points of one (run, key) as packed little-endian arrays (int64, float64, int64).

    One row per chunk instead of per point: ~8x the write rate on PostgreSQL (COPY) and a whole
    history reads back as a handful of rows. first/last step and min/max let reads skip chunks.
    """

    __tablename__ = "metric_chunks"

    run_id: Mapped[str] = mapped_column(
        sa.String(RUN_ID_LENGTH), sa.ForeignKey("runs.run_id", ondelete="CASCADE"), primary_key=True
    )
    key: Mapped[str] = mapped_column(sa.String(KEY_LENGTH), primary_key=True)
    seq: Mapped[int] = mapped_column(sa.BigInteger, primary_key=True)
    first_step: Mapped[int] = mapped_column(sa.BigInteger)
    last_step: Mapped[int] = mapped_column(sa.BigInteger)
    count: Mapped[int] = mapped_column(sa.Integer)
    # Steps within the chunk are non-decreasing: reads can merge chunks without sorting points.
    min_value: Mapped[float | None] = mapped_column(sa.Float(precision=53), nullable=True)
    max_value: Mapped[float | None] = mapped_column(sa.Float(precision=53), nullable=True)
    steps: Mapped[bytes] = mapped_column(sa.LargeBinary)
    values: Mapped[bytes] = mapped_column(sa.LargeBinary)
    timestamps: Mapped[bytes] = mapped_column(sa.LargeBinary)


class MetricWriterRow(Base):
    """Highest batch sequence applied per (run, writer): makes StreamMetrics replays exactly-once."""

    __tablename__ = "metric_writers"

    run_id: Mapped[str] = mapped_column(
        sa.String(RUN_ID_LENGTH), sa.ForeignKey("runs.run_id", ondelete="CASCADE"), primary_key=True
    )
    writer_id: Mapped[str] = mapped_column(sa.String(64), primary_key=True)
    last_sequence: Mapped[int] = mapped_column(sa.BigInteger)


class DatasetRow(Base):
    __tablename__ = "datasets"
    __table_args__ = (sa.UniqueConstraint("experiment_id", "name", "digest"),)

    dataset_id: Mapped[str] = mapped_column(sa.String(32), primary_key=True)
    experiment_id: Mapped[int] = mapped_column(
        BigId, sa.ForeignKey("experiments.experiment_id", ondelete="CASCADE")
    )
    name: Mapped[str] = mapped_column(sa.String(500))
    digest: Mapped[str] = mapped_column(sa.String(64))
    source_type: Mapped[str] = mapped_column(sa.String(64))
    source: Mapped[str] = mapped_column(sa.Text)
    schema: Mapped[str] = mapped_column(sa.Text, default="")
    profile: Mapped[str] = mapped_column(sa.Text, default="")


class RunInputRow(Base):
    __tablename__ = "run_inputs"

    run_id: Mapped[str] = mapped_column(
        sa.String(RUN_ID_LENGTH), sa.ForeignKey("runs.run_id", ondelete="CASCADE"), primary_key=True
    )
    dataset_id: Mapped[str] = mapped_column(
        sa.String(32), sa.ForeignKey("datasets.dataset_id", ondelete="CASCADE"), primary_key=True
    )
    context: Mapped[str] = mapped_column(sa.String(64), primary_key=True)
    # Further tags of the usage, as a JSON object.
    tags: Mapped[str] = mapped_column(sa.Text, default="{}")
    position: Mapped[int] = mapped_column(sa.BigInteger)


# Core table handles: the stores write SQL with these (Core is leaner than ORM sessions on hot paths).
experiments: sa.Table = ExperimentRow.__table__  # type: ignore[assignment]
experiment_tags: sa.Table = ExperimentTagRow.__table__  # type: ignore[assignment]
runs: sa.Table = RunRow.__table__  # type: ignore[assignment]
params: sa.Table = ParamRow.__table__  # type: ignore[assignment]
run_tags: sa.Table = RunTagRow.__table__  # type: ignore[assignment]
latest_metrics: sa.Table = LatestMetricRow.__table__  # type: ignore[assignment]
metric_chunks: sa.Table = MetricChunkRow.__table__  # type: ignore[assignment]
metric_writers: sa.Table = MetricWriterRow.__table__  # type: ignore[assignment]
datasets: sa.Table = DatasetRow.__table__  # type: ignore[assignment]
run_inputs: sa.Table = RunInputRow.__table__  # type: ignore[assignment]


# -- Model registry ------------------------------------------------------------------------------------

MODEL_NAME_LENGTH = 250
ALIAS_LENGTH = 255
USER_LENGTH = 256
REQUEST_ID_LENGTH = 128  # validation.REQUEST_ID_MAX


class RegisteredModelRow(Base):
    """A named model. ``last_version`` is the version counter: CreateModelVersion bumps it with one
    UPDATE ... RETURNING, which takes the row lock (PostgreSQL) or the write lock (SQLite), so
    concurrent registrations get 1, 2, 3... with no gap or duplicate, and a rolled-back one gives its
    number back. Deleted versions' numbers are never reused (aliases and history name them)."""

    __tablename__ = "registered_models"

    model_id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(sa.String(MODEL_NAME_LENGTH), unique=True)
    description: Mapped[str] = mapped_column(sa.Text, default="")
    create_time: Mapped[int] = mapped_column(Millis)
    update_time: Mapped[int] = mapped_column(Millis)
    last_version: Mapped[int] = mapped_column(sa.BigInteger, default=0)


class RegisteredModelTagRow(Base):
    __tablename__ = "registered_model_tags"

    model_id: Mapped[int] = mapped_column(
        BigId, sa.ForeignKey("registered_models.model_id", ondelete="CASCADE"), primary_key=True
    )
    key: Mapped[str] = mapped_column(sa.String(KEY_LENGTH), primary_key=True)
    value: Mapped[str] = mapped_column(sa.Text)


class ModelVersionRow(Base):
    """One version. ``version_id`` is a surrogate key for tags, aliases and keyset paging."""

    __tablename__ = "model_versions"
    __table_args__ = (
        sa.UniqueConstraint("model_id", "version"),
        # A retried CreateModelVersion finds its version; NULLs (no id) never collide. An index,
        # not a constraint: adding one on SQLite would rebuild the table, and dropping the old one
        # would cascade to the versions' tags and aliases (foreign_keys is on).
        sa.Index("ix_model_versions_model_request_id", "model_id", "request_id", unique=True),
        # Latest version per stage.
        sa.Index("ix_model_versions_model_stage_version", "model_id", "stage", "version"),
    )

    version_id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    model_id: Mapped[int] = mapped_column(
        BigId, sa.ForeignKey("registered_models.model_id", ondelete="CASCADE")
    )
    version: Mapped[int] = mapped_column(sa.BigInteger)
    description: Mapped[str] = mapped_column(sa.Text, default="")
    user_id: Mapped[str] = mapped_column(sa.String(USER_LENGTH), default="")
    stage: Mapped[str] = mapped_column(sa.String(16))
    source: Mapped[str] = mapped_column(sa.Text)
    # Not a foreign key: a version outlives the run that produced it (MLflow does the same).
    run_id: Mapped[str] = mapped_column(sa.String(RUN_ID_LENGTH), default="", index=True)
    # Where the files are: the source with `runs:/` resolved against the run's artifact root.
    storage_location: Mapped[str] = mapped_column(sa.Text)
    status: Mapped[str] = mapped_column(sa.String(32))
    status_message: Mapped[str] = mapped_column(sa.Text, default="")
    create_time: Mapped[int] = mapped_column(Millis)
    update_time: Mapped[int] = mapped_column(Millis)
    # Idempotency key of the CreateModelVersion that made it (AIP-155); NULL when none was given.
    request_id: Mapped[str | None] = mapped_column(sa.String(REQUEST_ID_LENGTH), nullable=True)


class ModelVersionTagRow(Base):
    __tablename__ = "model_version_tags"

    version_id: Mapped[int] = mapped_column(
        BigId, sa.ForeignKey("model_versions.version_id", ondelete="CASCADE"), primary_key=True
    )
    key: Mapped[str] = mapped_column(sa.String(KEY_LENGTH), primary_key=True)
    value: Mapped[str] = mapped_column(sa.Text)


class ModelAliasRow(Base):
    """An alias is unique per model: setting it again is one upsert, which moves it atomically."""

    __tablename__ = "model_aliases"

    model_id: Mapped[int] = mapped_column(
        BigId, sa.ForeignKey("registered_models.model_id", ondelete="CASCADE"), primary_key=True
    )
    alias: Mapped[str] = mapped_column(sa.String(ALIAS_LENGTH), primary_key=True)
    version_id: Mapped[int] = mapped_column(
        BigId, sa.ForeignKey("model_versions.version_id", ondelete="CASCADE"), index=True
    )


class ModelEventRow(Base):
    """History: alias moves, stage transitions, description changes, creations and deletions."""

    __tablename__ = "model_events"
    __table_args__ = (sa.Index("ix_model_events_model_event", "model_id", "event_id"),)

    event_id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    model_id: Mapped[int] = mapped_column(
        BigId, sa.ForeignKey("registered_models.model_id", ondelete="CASCADE")
    )
    version: Mapped[int] = mapped_column(sa.BigInteger, default=0)  # 0: the model itself
    kind: Mapped[str] = mapped_column(sa.String(32))
    alias: Mapped[str] = mapped_column(sa.String(ALIAS_LENGTH), default="")
    old_value: Mapped[str] = mapped_column(sa.Text, default="")
    new_value: Mapped[str] = mapped_column(sa.Text, default="")
    user_id: Mapped[str] = mapped_column(sa.String(USER_LENGTH), default="")
    time: Mapped[int] = mapped_column(Millis)


registered_models: sa.Table = RegisteredModelRow.__table__  # type: ignore[assignment]
registered_model_tags: sa.Table = RegisteredModelTagRow.__table__  # type: ignore[assignment]
model_versions: sa.Table = ModelVersionRow.__table__  # type: ignore[assignment]
model_version_tags: sa.Table = ModelVersionTagRow.__table__  # type: ignore[assignment]
model_aliases: sa.Table = ModelAliasRow.__table__  # type: ignore[assignment]
model_events: sa.Table = ModelEventRow.__table__  # type: ignore[assignment]


# -- Users, tokens and permissions (auth) --------------------------------------------------------------

USER_NAME_LENGTH = USER_LENGTH
TOKEN_NAME_LENGTH = 250
TOKEN_ID_LENGTH = 32
# Hex SHA-256 of the secret: tokens are 256-bit random, so a fast hash is enough (no salt or KDF:
# there is nothing to brute-force), and it lets the lookup be one indexed equality.
TOKEN_HASH_LENGTH = 64
PERMISSION_LENGTH = 16  # READ, EDIT, MANAGE


class UserRow(Base):
    """Someone who calls the API. ``name`` is what runs and registry history record as user_id."""

    __tablename__ = "users"

    user_id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(sa.String(USER_NAME_LENGTH), unique=True)
    is_admin: Mapped[bool] = mapped_column(sa.Boolean, default=False)
    create_time: Mapped[int] = mapped_column(Millis)


class ApiTokenRow(Base):
    """An API token. Only the hash of its secret is stored; revoking deletes the row."""

    __tablename__ = "api_tokens"

    token_id: Mapped[str] = mapped_column(sa.String(TOKEN_ID_LENGTH), primary_key=True)
    user_id: Mapped[int] = mapped_column(
        BigId, sa.ForeignKey("users.user_id", ondelete="CASCADE"), index=True
    )
    name: Mapped[str] = mapped_column(sa.String(TOKEN_NAME_LENGTH), default="")
    token_hash: Mapped[str] = mapped_column(sa.String(TOKEN_HASH_LENGTH), unique=True)
    create_time: Mapped[int] = mapped_column(Millis)
    expire_time: Mapped[int] = mapped_column(Millis, default=0)  # 0: never
    last_used_time: Mapped[int] = mapped_column(Millis, default=0)  # 0: never


class ExperimentPermissionRow(Base):
    """A user's permission on an experiment (and so on its runs, metrics and artifacts)."""

    __tablename__ = "experiment_permissions"

    experiment_id: Mapped[int] = mapped_column(
        BigId, sa.ForeignKey("experiments.experiment_id", ondelete="CASCADE"), primary_key=True
    )
    # Indexed: "what may this user read" is the filter of every search by a non-admin.
    user_id: Mapped[int] = mapped_column(
        BigId, sa.ForeignKey("users.user_id", ondelete="CASCADE"), primary_key=True, index=True
    )
    permission: Mapped[str] = mapped_column(sa.String(PERMISSION_LENGTH))


class RegisteredModelPermissionRow(Base):
    """A user's permission on a registered model (and its versions and aliases); follows renames."""

    __tablename__ = "registered_model_permissions"

    model_id: Mapped[int] = mapped_column(
        BigId, sa.ForeignKey("registered_models.model_id", ondelete="CASCADE"), primary_key=True
    )
    user_id: Mapped[int] = mapped_column(
        BigId, sa.ForeignKey("users.user_id", ondelete="CASCADE"), primary_key=True, index=True
    )
    permission: Mapped[str] = mapped_column(sa.String(PERMISSION_LENGTH))


users: sa.Table = UserRow.__table__  # type: ignore[assignment]
api_tokens: sa.Table = ApiTokenRow.__table__  # type: ignore[assignment]
experiment_permissions: sa.Table = ExperimentPermissionRow.__table__  # type: ignore[assignment]
registered_model_permissions: sa.Table = RegisteredModelPermissionRow.__table__  # type: ignore[assignment]
