"""Recipes next to MLflow 2.x Recipes: full run, re-run with nothing changed, re-run after editing train.

    python -m bench.recipes [--rounds 2] [--rows 6000]

The same recipe (tests/data/recipes/nyc-taxi: MLflow's regression template layout, LinearRegression,
a StandardScaler and one-hot encoders, one custom metric) on the same generated taxi data, run by
``tracklane recipes run`` against a ``tracklane server`` (embedded SQLite) and by ``mlflow recipes run``
from MLflow 2.x's own virtualenv (its profile's SQLite tracking store), as commands, as a user runs
them. Rounds interleave the two systems so load swings hit both alike; each round starts from fresh
copies. Also timed: the no-change re-run through ``Recipe.run()`` in a warm process (a notebook).

MLflow 2.x (the last 2.x release) lives in ~/.cache/tracklane-bench/mlflow2-venv:
``python3 -m venv VENV && VENV/bin/pip install "mlflow<3" pyarrow "sqlalchemy<2.1"``. Its steps run
through ``make``, which calls ``python`` from PATH, so its bin folder goes first on PATH.
Targets: no-change re-run under 1 s and at least 10x faster than MLflow's; full run not slower.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench._harness import tracklane_server

RECIPE = Path(__file__).resolve().parents[1] / "tests" / "data" / "recipes" / "nyc-taxi"
MLFLOW2_VENV = Path(
    os.environ.get("TRACKLANE_BENCH_MLFLOW2_VENV", Path.home() / ".cache/tracklane-bench/mlflow2-venv")
)
PHASES = ("full run", "no change", "train edited")


def _copy(work: Path, name: str, rows: int) -> Path:
    folder = work / name
    shutil.copytree(RECIPE, folder)
    sys.path.insert(0, str(RECIPE.parent))
    from make_taxi_data import taxi_trips

    (folder / "data").mkdir(exist_ok=True)
    taxi_trips(rows).to_parquet(folder / "data" / "sample.parquet", index=False)
    return folder


def _timed(argv: list[str], cwd: Path, env: dict[str, str]) -> float:
    started = time.perf_counter()
    done = subprocess.run(
        argv, cwd=cwd, env={**os.environ, **env}, capture_output=True, text=True, timeout=1800
    )
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(argv)} failed in {cwd}:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}")
    return seconds


def _edit_train(folder: Path) -> None:
    path = folder / "steps" / "train.py"
    path.write_text(path.read_text() + "\n# edited by the benchmark\n")


def _tracklane_round(folder: Path, uri: str) -> dict[str, float]:
    env = {"TRACKLANE_TRACKING_URI": uri}
    argv = [sys.executable, "-m", "tracklane_server.cli", "recipes", "run", "--profile", "local"]
    out = {"full run": _timed(argv, folder, env), "no change": _timed(argv, folder, env)}
    _edit_train(folder)
    out["train edited"] = _timed(argv, folder, env)
    out["command start-up"] = _timed([sys.executable, "-m", "tracklane_server.cli", "--help"], folder, env)
    return out


def _mlflow_round(folder: Path) -> dict[str, float]:
    bin_dir = MLFLOW2_VENV / "bin"
    env = {
        "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}",
        "MLFLOW_RECIPES_EXECUTION_DIRECTORY": str(folder / ".mlflow-execution"),
        "BROWSER": "true",
    }
    argv = [str(bin_dir / "mlflow"), "recipes", "run", "--profile", "local"]
    out = {"full run": _timed(argv, folder, env), "no change": _timed(argv, folder, env)}
    _edit_train(folder)
    out["train edited"] = _timed(argv, folder, env)
    return out


def _warm_rerun(folder: Path, uri: str) -> float:
    code = (
        "import time, os; from tracklane.recipes import Recipe; r = Recipe(profile='local');"
        "t = time.perf_counter(); out = r.run(); s = time.perf_counter() - t;"
        "assert all(o.status == 'cached' for o in out), out; print(s)"
    )
    done = subprocess.run(
        [sys.executable, "-c", code],
        cwd=folder,
        env={**os.environ, "TRACKLANE_TRACKING_URI": uri},
        capture_output=True,
        text=True,
        check=True,
    )
    return float(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--rows", type=int, default=6000)
    args = parser.parse_args()
    have_mlflow = (MLFLOW2_VENV / "bin" / "mlflow").is_file()
    if not have_mlflow:
        print(f"MLflow 2.x not found in {MLFLOW2_VENV}: Tracklane only (see the module docstring)")
    ours: dict[str, list[float]] = {p: [] for p in (*PHASES, "command start-up")}
    theirs: dict[str, list[float]] = {p: [] for p in PHASES}
    warm: list[float] = []
    loads = [os.getloadavg()[0]]
    with tempfile.TemporaryDirectory(prefix="tracklane-bench-recipes-") as tmp, tracklane_server([]) as uri:
        work = Path(tmp)
        for index in range(args.rounds):
            order = ["tracklane", "mlflow"] if index % 2 == 0 else ["mlflow", "tracklane"]
            for system in order:
                if system == "tracklane":
                    folder = _copy(work, f"tracklane-{index}", args.rows)
                    for phase, seconds in _tracklane_round(folder, uri).items():
                        ours[phase].append(seconds)
                    warm.append(_warm_rerun(folder, uri))
                elif have_mlflow:
                    folder = _copy(work, f"mlflow-{index}", args.rows)
                    for phase, seconds in _mlflow_round(folder).items():
                        theirs[phase].append(seconds)
                loads.append(os.getloadavg()[0])
            mlflow = _fmt(theirs, index) if have_mlflow else "-"
            print(f"round {index + 1}: tracklane {_fmt(ours, index)} | mlflow {mlflow}")
    print(f"\n{args.rows} rows, {args.rounds} rounds, load average {min(loads):.2f}-{max(loads):.2f}")
    print(f"{'':<14}{'tracklane':>12}{'mlflow 2.x':>12}{'ratio':>8}")
    for phase in PHASES:
        a = statistics.median(ours[phase])
        b = statistics.median(theirs[phase]) if theirs[phase] else float("nan")
        print(f"{phase:<14}{a:>11.2f}s{b:>11.2f}s{b / a:>7.1f}x")
    print(f"{'no change, warm Recipe.run()':<30}{statistics.median(warm) * 1000:.1f} ms")
    startup = statistics.median(ours["command start-up"])
    print(f"{'tracklane --help (start-up)':<30}{startup:.2f} s: the floor under every tracklane command")
    print("targets: no-change re-run < 1 s and >= 10x MLflow's; full run not slower (ratio >= 1)")


def _fmt(values: dict[str, list[float]], index: int) -> str:
    return " ".join(f"{p}={values[p][index]:.2f}s" for p in PHASES if len(values[p]) > index)


if __name__ == "__main__":
    main()
