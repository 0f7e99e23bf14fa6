"""The web UI in a real Chromium: Tracklane's next to MLflow 3.17.2's, same machine, same PostgreSQL.

Seeds each system with the same data (Tracklane through its client, streaming arrays; MLflow by COPY
into its own tables, bounded), then times in fresh browser contexts, rounds interleaved:
  table:  an experiment of N runs (5 params, 5 metrics) until its runs table shows the newest runs
  chart1: one metric of 1,000,000 points until the chart is drawn
  chart50: one metric of 50 runs x 100,000 points, overlaid, until drawn
and reports whether a single-point spike (one value 100x the rest, per series) is in what was drawn
(Tracklane: the chart's drawn data; MLflow: the history its page fetched), and the JS heap after each.

    python -m bench.ui --postgres-uri postgresql+psycopg://USER:PASSWORD@127.0.0.1:5432/DB \\
        [--runs 10000] [--points 1000000] [--multi-runs 50] [--multi-points 100000] [--rounds 3]

MLflow is optional (skipped with a note when its virtualenv is missing). Everything binds to 127.0.0.1
and stops by itself; a page that is not ready in --timeout seconds counts as "did not finish".
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

import numpy as np
import psycopg
import sqlalchemy as sa

import tracklane
from bench._harness import (
    MLFLOW_PYTHON,
    free_port,
    mlflow_db_uri,
    mlflow_server,
    scratch_database,
    tracklane_server,
)
from bench.search import seed_values
from tests.ui.chromium import CHROMIUM, CHROMIUM_FLAGS
from tracklane.entities import Metric, Param

SPIKE = 100.0
KEY = "loss"
T0 = 1_700_000_000_000


@dataclass
class Seed:
    """What both systems hold, by their own ids."""

    table_experiment: str = ""
    newest_run_name: str = ""
    chart_experiment: str = ""
    chart_run: str = ""
    multi_experiment: str = ""
    multi_runs: list[str] = field(default_factory=list)


def curve(n: int, seed: int) -> tuple[np.ndarray, int]:
    """A smooth noisy curve with one spike at a random step; returns (values, spike step)."""
    rng = np.random.default_rng(seed)
    steps = np.arange(n)
    values = np.exp(-steps / (n / 5)) + 0.02 * rng.standard_normal(n) + 0.1
    at = int(rng.integers(n // 10, n - n // 10))
    values[at] = SPIKE
    return values, at


def run_name(i: int) -> str:
    return f"run-{i:05d}"


# -- seeding ----------------------------------------------------------------------------------------


def seed_tracklane(uri: str, args: argparse.Namespace) -> Seed:
    seed = Seed()
    with tracklane.Client(uri) as client:
        seed.table_experiment = client.create_experiment("ui-bench-table")

        def one(i: int) -> None:
            params, metrics = seed_values(i)
            run_id = client.create_run(
                seed.table_experiment, start_time=T0 + i, run_name=run_name(i)
            ).info.run_id
            client.log_batch(
                run_id,
                metrics=[Metric(k, v, 0, T0 + i) for k, v in metrics.items()],
                params=[Param(k, v) for k, v in params.items()],
            )

        with ThreadPoolExecutor(8) as pool:
            list(pool.map(one, range(args.runs)))
        seed.newest_run_name = run_name(args.runs - 1)
        seed.chart_experiment = client.create_experiment("ui-bench-chart")
        seed.multi_experiment = client.create_experiment("ui-bench-multi")
        with client.metric_stream() as stream:
            seed.chart_run = client.create_run(seed.chart_experiment, run_name="million").info.run_id
            values, _ = curve(args.points, 0)
            stream.log_metric_array(seed.chart_run, KEY, values, np.arange(args.points), T0)
            for r in range(args.multi_runs):
                run_id = client.create_run(seed.multi_experiment, run_name=f"multi-{r:02d}").info.run_id
                values, _ = curve(args.multi_points, r + 1)
                stream.log_metric_array(run_id, KEY, values, np.arange(args.multi_points), T0)
                seed.multi_runs.append(run_id)
        for run_id in [seed.chart_run, *seed.multi_runs]:
            client.update_run(run_id, status="FINISHED")
    return seed


def _copy(
    conn: psycopg.Connection[Any], table: str, columns: list[str], rows: Iterator[tuple[Any, ...]]
) -> None:
    with conn.cursor().copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN") as copy:
        for row in rows:
            copy.write_row(row)


def seed_mlflow(python: str, db_uri: str, pg_uri: str, args: argparse.Namespace) -> Seed:
    """MLflow's experiments through its client (its own defaults), runs and points by COPY into its
    tables: its log_batch would take minutes for a million points (~6 k points/s)."""
    created = subprocess.run(
        [
            python,
            "-c",
            "import sys, mlflow.tracking as t; c = t.MlflowClient(sys.argv[1]); "
            "print(' '.join(c.create_experiment(n) for n in sys.argv[2:]))",
            db_uri,
            "ui-bench-table",
            "ui-bench-chart",
            "ui-bench-multi",
        ],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.split()
    seed = Seed(table_experiment=created[0], chart_experiment=created[1], multi_experiment=created[2])
    seed.newest_run_name = run_name(args.runs - 1)
    run_cols = ["run_uuid", "name", "source_type", "source_name", "entry_point_name", "user_id", "status"]
    run_cols += [
        "start_time",
        "end_time",
        "source_version",
        "lifecycle_stage",
        "artifact_uri",
        "experiment_id",
    ]
    runs: list[tuple[Any, ...]] = []
    tags: list[tuple[Any, ...]] = []
    params: list[tuple[Any, ...]] = []
    latest: list[tuple[Any, ...]] = []
    points: list[tuple[str, np.ndarray]] = []

    def add_run(experiment: str, name: str, start: int) -> str:
        run_id = uuid.uuid4().hex
        runs.append(
            (
                run_id,
                name,
                "LOCAL",
                "",
                "",
                "bench",
                "FINISHED",
                start,
                start + 1000,
                "",
                "active",
                "",
                int(experiment),
            )
        )
        tags.append(("mlflow.runName", name, run_id))
        return run_id

    for i in range(args.runs):
        run_id = add_run(seed.table_experiment, run_name(i), T0 + i)
        p, m = seed_values(i)
        params.extend((k, v, run_id) for k, v in p.items())
        latest.extend((k, v, T0 + i, 0, False, run_id) for k, v in m.items())
    seed.chart_run = add_run(seed.chart_experiment, "million", T0)
    points.append((seed.chart_run, curve(args.points, 0)[0]))
    for r in range(args.multi_runs):
        run_id = add_run(seed.multi_experiment, f"multi-{r:02d}", T0 + r)
        seed.multi_runs.append(run_id)
        points.append((run_id, curve(args.multi_points, r + 1)[0]))
    with psycopg.connect(pg_uri) as conn:
        _copy(conn, "runs", run_cols, iter(runs))
        _copy(conn, "tags", ["key", "value", "run_uuid"], iter(tags))
        _copy(conn, "params", ["key", "value", "run_uuid"], iter(params))
        for run_id, values in points:
            latest.append((KEY, float(values[-1]), T0, len(values) - 1, False, run_id))
            rows = ((KEY, float(v), T0, run_id, step, False) for step, v in enumerate(values.tolist()))
            _copy(conn, "metrics", ["key", "value", "timestamp", "run_uuid", "step", "is_nan"], rows)
        _copy(
            conn, "latest_metrics", ["key", "value", "timestamp", "step", "is_nan", "run_uuid"], iter(latest)
        )
    return seed


# -- measuring --------------------------------------------------------------------------------------


@dataclass
class Measure:
    seconds: float | None  # None: not ready in time
    heap_mb: float
    spike: bool | None  # None: unknown


def measure(
    browser: Any, url: str, ready: str, timeout: float, spike_of: Callable[[Any], bool | None]
) -> Measure:
    """Opens `url` in a fresh context (cold cache, as a first visit) and waits for `ready` (a JS
    expression) checked on every animation frame; then the heap after a collection."""
    context = browser.new_context(viewport={"width": 1280, "height": 800}, color_scheme="dark")
    page = context.new_page()
    fetched: list[Any] = []
    page.on("response", lambda r: fetched.append(r))
    cdp = context.new_cdp_session(page)
    page.goto("about:blank")
    started = time.perf_counter()
    seconds: float | None
    try:
        page.goto(url, wait_until="commit")
        # A function, not an expression string: the page's CSP forbids eval, which strings need.
        page.wait_for_function(f"() => {ready}", polling="raf", timeout=timeout * 1000)
        seconds = time.perf_counter() - started
    except Exception:  # a timeout: MLflow may not manage at all
        seconds = None
    spike = spike_of(page) if seconds is not None else None
    if spike is None and seconds is not None:
        spike = _spike_in_responses(fetched)
    cdp.send("HeapProfiler.collectGarbage")
    heap = cdp.send("Runtime.getHeapUsage")["usedSize"] / 2**20
    context.close()
    return Measure(seconds, heap, spike)


def _spike_in_responses(responses: list[Any]) -> bool | None:
    """Whether MLflow's page fetched the spike: its metric-history answers are JSON."""
    found: bool | None = None
    for r in responses:
        if "metrics/get-history" not in r.url:
            continue
        try:
            body = r.json()
        except Exception:
            continue
        values = [m.get("value", 0) for m in body.get("metrics", [])]
        found = bool(found) or any(v >= SPIKE for v in values)
    return found


def tracklane_spike(page: Any) -> bool:
    """The chart's drawn data holds the spike (uPlot draws every value it is given)."""
    top = page.evaluate(
        "() => Math.max(...[...document.querySelectorAll('[data-drawn-max]')].map(e => +e.dataset.drawnMax))"
    )
    return bool(top >= SPIKE)


TRACKLANE_TABLE = (
    "(() => [...document.querySelectorAll('[role=grid] [role=row] a[href^=\"/runs/\"]')]"
    ".some(a => a.textContent === NAME))()"
)
TRACKLANE_CHART = (
    "(() => { const e = document.querySelector('[data-drawn-points]');"
    " return !!e && +e.dataset.drawnPoints > 0; })()"
)
# MLflow's runs table and its metric page (Plotly: one trace per run when drawn).
MLFLOW_TABLE = "document.body.innerText.includes(NAME)"
MLFLOW_CHART = "document.querySelectorAll('.js-plotly-plot .scatterlayer .trace').length >= COUNT"


def mlflow_metric_url(base: str, experiment: str, runs: list[str]) -> str:
    q = {
        "runs": json.dumps(runs),
        "metric": json.dumps(KEY),
        "experiments": json.dumps([experiment]),
        "plot_metric_keys": json.dumps([KEY]),
        "plot_layout": "{}",
        "x_axis": "step",
        "y_axis_scale": "linear",
        "line_smoothness": "1",
        "show_point": "false",
        "deselected_curves": "[]",
        "last_linear_y_axis_range": "[]",
    }
    return f"{base}/#/metric?" + "&".join(f"{k}={quote(v)}" for k, v in q.items())


def scenarios(system: str, base: str, seed: Seed) -> dict[str, tuple[str, str, Callable[[Any], bool | None]]]:
    name = json.dumps(seed.newest_run_name)
    if system == "tracklane":
        return {
            "table": (
                f"{base}/experiments/{seed.table_experiment}",
                TRACKLANE_TABLE.replace("NAME", name),
                lambda p: None,
            ),
            "chart1": (f"{base}/runs/{seed.chart_run}?tab=charts", TRACKLANE_CHART, tracklane_spike),
            "chart50": (
                f"{base}/experiments/{seed.multi_experiment}?mode=charts&sel={','.join(seed.multi_runs)}",
                TRACKLANE_CHART,
                tracklane_spike,
            ),
        }
    return {
        "table": (
            f"{base}/#/experiments/{seed.table_experiment}/runs",
            MLFLOW_TABLE.replace("NAME", name),
            lambda p: None,
        ),
        "chart1": (
            mlflow_metric_url(base, seed.chart_experiment, [seed.chart_run]),
            MLFLOW_CHART.replace("COUNT", "1"),
            lambda p: None,
        ),
        "chart50": (
            mlflow_metric_url(base, seed.multi_experiment, seed.multi_runs),
            MLFLOW_CHART.replace("COUNT", str(len(seed.multi_runs))),
            lambda p: None,
        ),
    }


@contextmanager
def tracklane_ui(pg_admin: str) -> Iterator[tuple[str, str]]:
    """Tracklane's server on a scratch PostgreSQL database; yields (grpc uri, http url)."""
    http = free_port()
    with (
        scratch_database(pg_admin) as db,
        tracklane_server(["--backend-store-uri", db, "--http-bind", f"127.0.0.1:{http}"]) as uri,
    ):
        yield uri, f"http://127.0.0.1:{http}"


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--postgres-uri", default=os.environ.get("TRACKLANE_TEST_POSTGRES_URI", ""))
    parser.add_argument("--runs", type=int, default=10_000)
    parser.add_argument("--points", type=int, default=1_000_000)
    parser.add_argument("--multi-runs", type=int, default=50)
    parser.add_argument("--multi-points", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--timeout", type=float, default=60.0, help="seconds a page may take to be ready")
    parser.add_argument("--mlflow-python", default=MLFLOW_PYTHON)
    args = parser.parse_args()
    if not args.postgres_uri:
        parser.error("--postgres-uri (or TRACKLANE_TEST_POSTGRES_URI) is required")
    from playwright.sync_api import sync_playwright

    print(f"load average before: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    results: dict[str, dict[str, list[Measure]]] = {"tracklane": {}, "mlflow": {}}
    with ExitStack() as stack:
        uri, t_http = stack.enter_context(tracklane_ui(args.postgres_uri))
        started = time.perf_counter()
        t_seed = seed_tracklane(uri, args)
        print(f"Tracklane seeded in {time.perf_counter() - started:.1f} s")
        systems = {"tracklane": scenarios("tracklane", t_http, t_seed)}
        if Path(args.mlflow_python).exists():
            pg = stack.enter_context(scratch_database(args.postgres_uri))
            db = mlflow_db_uri(pg)
            started = time.perf_counter()
            m_http = stack.enter_context(mlflow_server(args.mlflow_python, db))
            m_seed = seed_mlflow(
                args.mlflow_python,
                db,
                sa.make_url(pg).set(drivername="postgresql").render_as_string(hide_password=False),
                args,
            )
            print(f"MLflow seeded in {time.perf_counter() - started:.1f} s (COPY)")
            systems["mlflow"] = scenarios("mlflow", m_http, m_seed)
        else:
            print(f"MLflow skipped: no virtualenv at {args.mlflow_python}")
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_FLAGS)
            for _ in range(args.rounds):
                for what in ("table", "chart1", "chart50"):
                    for system, pages in systems.items():
                        url, ready, spike = pages[what]
                        results[system].setdefault(what, []).append(
                            measure(browser, url, ready, args.timeout, spike)
                        )
            browser.close()
    report(results, args)


def _summary(ms: list[Measure]) -> tuple[float | None, float, bool | None]:
    done = [m.seconds for m in ms if m.seconds is not None]
    seconds = statistics.median(done) if len(done) == len(ms) else None
    spikes = [m.spike for m in ms if m.spike is not None]
    return seconds, statistics.median(m.heap_mb for m in ms), (all(spikes) if spikes else None)


def report(results: dict[str, dict[str, list[Measure]]], args: argparse.Namespace) -> None:
    labels = {
        "table": f"runs table, {args.runs:,} runs",
        "chart1": f"chart, 1 run x {args.points:,} points",
        "chart50": f"chart, {args.multi_runs} runs x {args.multi_points:,} points",
    }
    print(f"\nmedian of {args.rounds} rounds, fresh browser context each (Chromium, headless)")
    print(f"{'':38} {'Tracklane':>22} {'MLflow 3.17.2':>26} {'ratio':>8}")
    for what, label in labels.items():
        t = _summary(results["tracklane"][what])
        m = _summary(results["mlflow"][what]) if results["mlflow"] else None

        def cell(s: tuple[float | None, float, bool | None] | None) -> str:
            if s is None:
                return "skipped"
            seconds, heap, spike = s
            time_text = f"{seconds * 1000:,.0f} ms" if seconds is not None else "did not finish"
            spike_text = "" if spike is None else (", spike" if spike else ", NO spike")
            return f"{time_text}, {heap:.0f} MB{spike_text}"

        ratio = ""
        if m and t[0] and m[0]:
            ratio = f"{m[0] / t[0]:.1f}x"
        print(f"{label:38} {cell(t):>22} {cell(m):>26} {ratio:>8}")
    print(f"load average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
