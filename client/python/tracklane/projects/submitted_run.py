"""The handle of a submitted project run (MLflow's ``SubmittedRun``), and what ends the run.

Whatever runs the entry point (a local process group, a container, a Ray job), a monitor thread
waits for it, keeps its output as the run's ``project/output.log`` artifact and ends the run:
FINISHED on success (exit code 0), FAILED otherwise, KILLED when it was cancelled. The thread is
not a daemon: like MLflow, a process that submitted runs asynchronously waits for them at exit.
"""

from __future__ import annotations

import abc
import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import IO

from tracklane.client import Client
from tracklane.entities import RunStatus

__all__ = ["OUTPUT_ARTIFACT", "LocalSubmittedRun", "OutputLog", "SubmittedRun"]

OUTPUT_ARTIFACT = "project/output.log"
_KILL_GRACE_SECONDS = 10.0


class OutputLog:
    """The entry point's output: echoed to this process's stdout/stderr and kept in one file."""

    def __init__(self, path: Path, echo: bool = True) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._file = open(path, "ab")  # noqa: SIM115 - closed by close(), after the pumps end
        self._lock = threading.Lock()
        self._echo = echo

    def write(self, data: bytes, stream: str = "stdout") -> None:
        """Keeps ``data`` and echoes it to ``sys.stdout`` or ``sys.stderr`` (as they are now: a
        notebook's or a redirected stream too)."""
        with self._lock:
            self._file.write(data)
            self._file.flush()
            if self._echo:
                out = sys.stderr if stream == "stderr" else sys.stdout
                binary = getattr(out, "buffer", None)
                if binary is not None:
                    out.flush()
                    binary.write(data)
                    binary.flush()
                else:
                    out.write(data.decode(errors="replace"))
                    out.flush()

    def pump(self, source: IO[bytes], stream: str) -> threading.Thread:
        """Copies ``source`` (a pipe) here until it closes, chunk by chunk (no waiting for lines)."""

        def copy() -> None:
            fd = source.fileno()
            while chunk := os.read(fd, 65536):
                self.write(chunk, stream)
            source.close()

        thread = threading.Thread(target=copy, name="tracklane-project-output", daemon=True)
        thread.start()
        return thread

    def close(self) -> None:
        with self._lock:
            self._file.close()


class SubmittedRun(abc.ABC):
    """A project run in progress: ``wait()``, ``get_status()``, ``cancel()`` (MLflow's interface).

    Subclasses say how to wait for and stop what runs the entry point; this class ends the run.
    """

    def __init__(
        self, run_id: str, tracking_uri: str, output: OutputLog, before_end: Callable[[], None] | None = None
    ) -> None:
        self._run_id = run_id
        self._before_end = before_end
        self._tracking_uri = tracking_uri
        self._output = output
        self._cancelled = threading.Event()
        self._status: RunStatus | None = None
        # Waited on instead of Thread.join: a Ctrl-C that interrupts join() can leave the thread
        # looking finished (CPython's bpo-45274 handling), and cancel() would not wait for it.
        self._done = threading.Event()
        self._error: BaseException | None = None
        self._monitor = threading.Thread(target=self._finish, name=f"tracklane-run-{run_id[:8]}")

    @property
    def run_id(self) -> str:
        """The Tracklane (and MLflow) run id."""
        return self._run_id

    def _start_monitor(self) -> None:
        self._monitor.start()

    @abc.abstractmethod
    def _wait_job(self) -> bool:
        """Blocks until the entry point has ended and its output is drained; True on success."""

    @abc.abstractmethod
    def _stop_job(self) -> None:
        """Asks what runs the entry point to stop (returns without waiting)."""

    def _finish(self) -> None:
        try:
            ok = self._wait_job()
        except BaseException as exc:
            self._error, ok = exc, False
        if self._cancelled.is_set():
            status = RunStatus.KILLED
        else:
            status = RunStatus.FINISHED if ok else RunStatus.FAILED
        self._output.close()
        try:
            if self._before_end is not None:
                self._before_end()  # the tags and files the backend recorded land before the end
        except BaseException as exc:
            self._error = self._error or exc
        try:
            with Client(self._tracking_uri) as client:
                if self._output.path.stat().st_size:
                    client.log_artifact(self._run_id, self._output.path, os.path.dirname(OUTPUT_ARTIFACT))
                client.set_terminated(self._run_id, status)
        except BaseException as exc:
            self._error = self._error or exc
        self._status = status
        self._done.set()

    def _wait_done(self) -> None:
        while not self._done.wait(0.5):
            pass

    def wait(self) -> bool:
        """Waits until the run has ended and is recorded; True when it FINISHED."""
        self._wait_done()
        return self._status == RunStatus.FINISHED

    def get_status(self) -> str:
        """``RUNNING`` until the run is recorded as ended, then FINISHED, FAILED or KILLED."""
        return str(self._status or RunStatus.RUNNING)

    def cancel(self) -> None:
        """Stops the entry point (its whole process group, container or Ray job) and waits; the
        run ends KILLED."""
        if self._status is None:
            self._cancelled.set()
            self._stop_job()
        self._wait_done()


class LocalSubmittedRun(SubmittedRun):
    """An entry point running as a local process group (plain, or the client of a container)."""

    def __init__(
        self,
        run_id: str,
        tracking_uri: str,
        output: OutputLog,
        process: subprocess.Popen[bytes],
        stop_extra: list[str] | None = None,
        before_end: Callable[[], None] | None = None,
    ) -> None:
        super().__init__(run_id, tracking_uri, output, before_end)
        self.command_proc = process  # MLflow's attribute name
        assert process.stdout is not None
        assert process.stderr is not None
        self._pumps = [
            output.pump(process.stdout, "stdout"),
            output.pump(process.stderr, "stderr"),
        ]
        self._stop_extra = stop_extra  # e.g. `podman kill NAME` for a container
        self._start_monitor()

    def _wait_job(self) -> bool:
        code = self.command_proc.wait()
        for pump in self._pumps:
            pump.join(5.0)  # a grandchild that kept the pipe open must not hold the run
        return code == 0

    def _stop_job(self) -> None:
        if self._stop_extra:
            subprocess.run(self._stop_extra, capture_output=True, check=False, timeout=60)
        pid = self.command_proc.pid
        try:
            os.killpg(pid, signal.SIGTERM)  # the entry point and everything it started
        except ProcessLookupError:
            return
        deadline = time.monotonic() + _KILL_GRACE_SECONDS
        while self.command_proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        if self.command_proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pid, signal.SIGKILL)
