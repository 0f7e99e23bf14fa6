"""MLflow's module-level API over a default ``tracklane.Client``: a training script's everyday calls.

    import tracklane

    tracklane.set_experiment("mnist")
    with tracklane.start_run(run_name="baseline"):
        tracklane.log_params({"lr": 0.01})
        tracklane.log_metric("loss", 0.31, step=10)

State, as in MLflow: the tracking URI, the active experiment and the default client are shared by the
process (the client is thread-safe and created lazily, under a lock); the stack of active runs and the
last active run are per thread, so each thread runs its own ``start_run``. A child process after
``fork`` starts clean (no client, no runs, no active experiment): a gRPC channel must not be used
across a fork. At interpreter exit, runs still active are ended FINISHED.

Modules: ``state`` (the default client, ``default_client()``, tracking URI, per-thread runs),
``runs`` (experiments, start and end), ``logging`` (params, metrics, tags, inputs), ``search``
(``search_runs``) and ``registry`` (``register_model``); each imports only those before it.

Environment (keyword arguments win):
  TRACKLANE_TRACKING_URI     the server, default ``grpc://localhost:50051``
  TRACKLANE_EXPERIMENT_NAME  experiment for runs when none was set (created if missing)
  TRACKLANE_EXPERIMENT_ID    experiment for runs when none was set and no name is given
  TRACKLANE_RUN_ID           the first start_run() without a run_id resumes this run (MLflow's
                             MLFLOW_RUN_ID: how `tracklane run` hands its run to the project)
"""

from tracklane.fluent.logging import (
    configure_metrics,
    delete_tag,
    flush,
    log_input,
    log_metric,
    log_metric_array,
    log_metrics,
    log_param,
    log_params,
    set_tag,
    set_tags,
)
from tracklane.fluent.registry import register_model
from tracklane.fluent.runs import (
    ActiveRun,
    active_run,
    end_run,
    get_experiment_by_name,
    get_run,
    last_active_run,
    set_experiment,
    start_run,
)
from tracklane.fluent.runs import _end_all_at_exit as _end_all_at_exit
from tracklane.fluent.search import search_runs
from tracklane.fluent.state import DEFAULT_EXPERIMENT_ID as DEFAULT_EXPERIMENT_ID
from tracklane.fluent.state import EXPERIMENT_ID_ENV as EXPERIMENT_ID_ENV
from tracklane.fluent.state import EXPERIMENT_NAME_ENV as EXPERIMENT_NAME_ENV
from tracklane.fluent.state import RUN_ID_ENV as RUN_ID_ENV
from tracklane.fluent.state import _reset as _reset
from tracklane.fluent.state import (
    default_client,
    get_tracking_uri,
    set_tracking_uri,
)

__all__ = [
    "ActiveRun",
    "active_run",
    "configure_metrics",
    "default_client",
    "delete_tag",
    "end_run",
    "flush",
    "get_experiment_by_name",
    "get_run",
    "get_tracking_uri",
    "last_active_run",
    "log_input",
    "log_metric",
    "log_metric_array",
    "log_metrics",
    "log_param",
    "log_params",
    "register_model",
    "search_runs",
    "set_experiment",
    "set_tag",
    "set_tags",
    "set_tracking_uri",
    "start_run",
]
