"""MLflow Projects on Tracklane: ``tracklane run`` and ``tracklane.projects.run``.

    import tracklane.projects

    submitted = tracklane.projects.run("https://github.com/mlflow/mlflow-example", parameters={"alpha": 0.5})
    print(submitted.run_id, submitted.get_status())

Unchanged ``MLproject`` files (see ``spec``); sources in ``sources``; environments (uv, conda,
local) in ``environments`` and containers in ``docker``; where entry points run in ``backends``
(``local``, ``ray``). The package talks to the server only through ``tracklane.Client``.
"""

from tracklane.projects.errors import ExecutionException
from tracklane.projects.runner import run
from tracklane.projects.submitted_run import SubmittedRun

__all__ = ["ExecutionException", "SubmittedRun", "run"]
