"""Time from `run` to the entry point starting: `tracklane run` next to `mlflow run`, same project, same run.

    python -m bench.projects [--warm-rounds 5] [--cold-rounds 2]

The project has a python_env.yaml (Python 3.11.x, one dependency) and an entry point whose first line
writes the time; each figure is that time minus the moment the command was started, as a user types
it. Rounds interleave the tools in a shuffled order (load swings between them otherwise).
  * tracklane uv, cold: a new environment cache (uv's own package cache stays warm, as on any
    machine that has used uv), warm: the cached environment; `--env-manager local`.
  * mlflow run (MLflow's virtualenv, ~/.cache/tracklane-bench/mlflow-venv): `--env-manager virtualenv`
    cold (new MLFLOW_ENV_ROOT) and warm, `--env-manager uv` warm, `--env-manager local`. MLflow's
    virtualenv manager needs pyenv and runs `pyenv install --skip-existing X.Y.Z`: it works here only
    because python_env.yaml names a version pyenv already has (a version it must download fails
    without internet). MLflow tracks into a SQLite file (its fastest local store, no server);
    Tracklane into a `tracklane server` on loopback.
Targets: tracklane warm start < 1 s and >= 5x faster than `mlflow run --env-manager virtualenv` warm.
"""

from __future__ import annotations

import argparse
import os
import platform
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from bench._harness import MLFLOW_PYTHON, free_port, process

MLPROJECT = """\
name: bench
python_env: python_env.yaml
entry_points:
  main:
    parameters:
      out: string
    command: "python start.py {out}"
"""
START_PY = "import sys, time\nopen(sys.argv[1], 'w').write(repr(time.time()))\n"


def _timed(argv: list[str], env: dict[str, str], cwd: Path, stamp: Path) -> float:
    stamp.unlink(missing_ok=True)
    started = time.time()
    done = subprocess.run(argv, env=env, cwd=cwd, capture_output=True, text=True, timeout=900, check=False)
    if done.returncode != 0 or not stamp.exists():
        raise RuntimeError(f"{' '.join(argv[:4])} failed ({done.returncode}):\n{done.stderr[-3000:]}")
    return float(stamp.read_text()) - started


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--warm-rounds", type=int, default=5)
    parser.add_argument("--cold-rounds", type=int, default=2)
    args = parser.parse_args()
    load_before = os.getloadavg()[0]
    mlflow = Path(MLFLOW_PYTHON).with_name("mlflow")
    have_mlflow = mlflow.exists()
    if not have_mlflow:
        print(f"note: no MLflow at {mlflow} (see bench/_harness.py): tracklane rows only")
    tracklane = shutil.which("tracklane", path=str(Path(sys.executable).parent)) or "tracklane"
    with tempfile.TemporaryDirectory(prefix="tracklane-bench-projects-") as tmp:
        root = Path(tmp)
        project = root / "project"
        project.mkdir()
        (project / "MLproject").write_text(MLPROJECT)
        (project / "python_env.yaml").write_text(
            f'python: "{platform.python_version()}"\ndependencies:\n  - six\n'
        )
        (project / "start.py").write_text(START_PY)
        stamp = root / "started"
        port = free_port()
        base = {k: v for k, v in os.environ.items() if not k.startswith(("TRACKLANE_", "MLFLOW_"))}
        tl_env = {**base, "TRACKLANE_TRACKING_URI": f"grpc://127.0.0.1:{port}"}
        warm_cache = root / "tl-warm"
        ml_env = {
            **base,
            "MLFLOW_TRACKING_URI": f"sqlite:///{root / 'mlflow.db'}",
            "PATH": f"{mlflow.parent}{os.pathsep}{base.get('PATH', '')}",
        }

        def tl(manager: str, cache: Path) -> Callable[[], float]:
            argv = [tracklane, "run", str(project), "-P", f"out={stamp}", "--env-manager", manager]
            return lambda: _timed(argv, {**tl_env, "TRACKLANE_PROJECTS_CACHE": str(cache)}, project, stamp)

        def ml(manager: str, env_root: Path) -> Callable[[], float]:
            argv = [str(mlflow), "run", str(project), "-P", f"out={stamp}", "--env-manager", manager]
            return lambda: _timed(argv, {**ml_env, "MLFLOW_ENV_ROOT": str(env_root)}, project, stamp)

        server = [tracklane, "server", "--bind", f"127.0.0.1:{port}", "--data-dir", str(root / "tl-data")]
        if (
            "--http-bind"
            in subprocess.run([tracklane, "server", "--help"], capture_output=True, text=True).stdout
        ):
            server += ["--http-bind", f"127.0.0.1:{free_port()}"]
        with process(server, port):
            cases: dict[str, Callable[[], float]] = {
                "tracklane run --env-manager uv, warm": tl("uv", warm_cache),
                "tracklane run --env-manager local": tl("local", warm_cache),
            }
            if have_mlflow:
                cases |= {
                    "mlflow run --env-manager virtualenv, warm": ml("virtualenv", root / "ml-warm"),
                    "mlflow run --env-manager uv, warm": ml("uv", root / "ml-warm"),
                    "mlflow run --env-manager local": ml("local", root / "ml-warm"),
                }
            for name, case in cases.items():  # the first use: databases, warm environments
                print(f"warming up: {name} ({case():.2f} s)", flush=True)
            times: dict[str, list[float]] = {name: [] for name in cases}
            cold: dict[str, list[float]] = {"tracklane run --env-manager uv, cold": []}
            if have_mlflow:
                cold["mlflow run --env-manager virtualenv, cold"] = []
            for i in range(args.cold_rounds):
                order = list(cold)
                random.shuffle(order)
                for name in order:
                    fresh = root / f"cold-{i}-{len(cold[name])}-{name.split()[0]}"
                    case = tl("uv", fresh) if name.startswith("tracklane") else ml("virtualenv", fresh)
                    cold[name].append(case())
            for _ in range(args.warm_rounds):
                order = list(cases)
                random.shuffle(order)
                for name in order:
                    times[name].append(cases[name]())
    load_after = os.getloadavg()[0]
    print(f"\nload average {load_before:.2f} before, {load_after:.2f} after ({os.cpu_count()} cores)")
    print(f"{'time from run to the entry point starting':<48} {'median':>8} {'min':>8} {'max':>8}")
    medians = {}
    for name, values in {**cold, **times}.items():
        medians[name] = statistics.median(values)
        print(f"{name:<48} {medians[name]:>7.2f}s {min(values):>7.2f}s {max(values):>7.2f}s")
    warm = medians["tracklane run --env-manager uv, warm"]
    print(f"\ntracklane warm start: {warm:.2f} s (target < 1 s)")
    baseline = medians.get("mlflow run --env-manager virtualenv, warm")
    if baseline is not None:
        print(f"mlflow virtualenv warm / tracklane uv warm: {baseline / warm:.1f}x (target >= 5x)")
        ours_local = medians["tracklane run --env-manager local"]
        ours_cold = medians["tracklane run --env-manager uv, cold"]
        for label, theirs, ours in (
            ("mlflow uv warm / tracklane uv warm", "mlflow run --env-manager uv, warm", warm),
            ("mlflow local / tracklane local", "mlflow run --env-manager local", ours_local),
            (
                "cold: mlflow virtualenv / tracklane uv",
                "mlflow run --env-manager virtualenv, cold",
                ours_cold,
            ),
        ):
            print(f"{label}: {medians[theirs] / ours:.1f}x")


if __name__ == "__main__":
    main()
