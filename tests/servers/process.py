"""The real ``tracklane server`` as a child process: start, wait for its log line, stop or kill, restart.

Every test that needs a server process uses this module (through :mod:`tests.servers`)::

    with start_server(data_dir=tmp_path) as server:    # --bind and --http-bind 127.0.0.1:0 by default
        call(server.address)
        server.kill()                                  # SIGKILL, no clean-up
    with start_server(data_dir=tmp_path, bind=server.bind) as again:   # same data and port
        ...

A test that expects the server to refuse to start runs :func:`server_argv` itself. The server's
stderr is read by a thread (so a chatty server never blocks on a full pipe), kept in
:attr:`ServerProcess.log_lines` and written to ``<log_dir>/server-N.log``; stdout goes to
``<log_dir>/server-N.stdout``. A test that fails inside ``with`` gets the log's last lines as a note.
"""

from __future__ import annotations

import contextlib
import os
import random
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import TracebackType

from tracklane_server.settings import env_names

__all__ = [
    "LISTENING",
    "ServerProcess",
    "ServerStartError",
    "clean_env",
    "fixed_bind",
    "fixed_port",
    "free_port",
    "serve",
    "server_argv",
    "start_server",
    "tracklane_executable",
    "tracklane_sync",
]

#: The one line the server logs when it is ready; group 1 is the host, group 2 the real port.
LISTENING = re.compile(r"listening on (\S+):(\d+)")
#: The same line's HTTP listener URL, when it is on.
HTTP_LISTENING = re.compile(r"HTTP \(web UI, Connect\) on (\S+)")

_counter = 0
_counter_lock = threading.Lock()


def free_port() -> int:
    """A port free right now on 127.0.0.1 (in the ephemeral range)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def fixed_port() -> int:
    """A free port below the ephemeral range, for a server restarted on the same address.

    A client redialling a dead ephemeral port can end up connected to itself on it (a TCP
    self-connect), and the restarted server then cannot bind.
    """
    low = int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    for port in random.sample(range(max(1024, low - 8000), low), 200):
        with socket.socket() as probe:
            try:
                probe.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError("no free port below the ephemeral range")


def fixed_bind() -> str:
    """A loopback address below the ephemeral range, for a server restarted on the same port."""
    return f"127.0.0.1:{fixed_port()}"


class ServerStartError(AssertionError):
    """The server exited or stayed silent instead of logging its ``listening on`` line."""


def tracklane_executable() -> str:
    """The ``tracklane`` console script of the interpreter running the tests, else the one on PATH."""
    beside = Path(sys.executable).with_name("tracklane")
    if beside.is_file() and os.access(beside, os.X_OK):
        return str(beside)
    found = shutil.which("tracklane")
    if found is None:
        raise FileNotFoundError("the `tracklane` console script is not installed: pip install -e '.[dev]'")
    return found


def clean_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """This process's environment without any variable the server reads, plus ``extra``.

    A developer's own TRACKLANE_* (or AWS_*) settings must not leak into the server under test.
    """
    env = {k: v for k, v in os.environ.items() if k not in env_names()}
    env.update(extra or {})
    return env


class ServerProcess:
    """A running ``tracklane server``; a context manager that kills it on exit if it still runs."""

    def __init__(self, proc: subprocess.Popen[bytes], log_path: Path, started_at: float) -> None:
        self.proc = proc
        self.log_path = log_path
        #: ``time.monotonic()`` just before the process was spawned.
        self.started_at = started_at
        #: Everything the server wrote to stderr so far, one entry per line.
        self.log_lines: list[str] = []
        self.host = ""
        self.port = 0
        #: ``http://HOST:PORT`` of the HTTP listener ("" when it is off).
        self.http_url = ""
        #: Seconds from spawning the process to the ``listening on`` line.
        self.ready_after = 0.0
        self._ready = threading.Event()
        self._lock = threading.Lock()
        self._reader = threading.Thread(target=self._read_stderr, name=f"stderr-{proc.pid}", daemon=True)
        self._reader.start()

    @property
    def pid(self) -> int:
        return self.proc.pid

    @property
    def address(self) -> str:
        """``HOST:PORT`` to dial, e.g. ``127.0.0.1:43567`` (``[::1]:43567`` for IPv6)."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"

    @property
    def bind(self) -> str:
        """The same address as a ``--bind`` value, to restart a server on this port."""
        return self.address

    @property
    def log(self) -> str:
        """The server's stderr so far."""
        with self._lock:
            return "\n".join(self.log_lines)

    def _read_stderr(self) -> None:
        assert self.proc.stderr is not None
        with self.proc.stderr as stderr, self.log_path.open("w", encoding="utf-8") as out:
            for raw in stderr:
                line = raw.decode("utf-8", "replace").rstrip("\r\n")
                out.write(line + "\n")
                out.flush()
                with self._lock:
                    self.log_lines.append(line)
                match = LISTENING.search(line)
                if match and not self._ready.is_set():
                    self.ready_after = time.monotonic() - self.started_at
                    self.host, self.port = match.group(1).strip("[]"), int(match.group(2))
                    http = HTTP_LISTENING.search(line)
                    self.http_url = http.group(1) if http else ""
                    self._ready.set()

    def wait_ready(self, timeout: float) -> None:
        """Waits for the ``listening on`` line.

        Raises:
            ServerStartError: the process exited first, or ``timeout`` seconds passed.
        """
        deadline = time.monotonic() + timeout
        while not self._ready.wait(0.05):
            if self.proc.poll() is not None:
                self._reader.join(timeout=5)  # the whole log, for the message
                if self._ready.is_set():
                    return
                raise ServerStartError(
                    f"tracklane server exited with {self.proc.returncode} before listening:\n{self.log}"
                )
            if time.monotonic() > deadline:
                raise ServerStartError(f"tracklane server not listening after {timeout:.0f} s:\n{self.log}")

    def listening_lines(self) -> list[str]:
        """The log lines that announce the listening address (there should be exactly one)."""
        with self._lock:
            return [line for line in self.log_lines if LISTENING.search(line)]

    def send_signal(self, signum: signal.Signals) -> None:
        """Sends a signal without waiting, e.g. to watch what the server does while it stops."""
        if self.proc.poll() is None:
            self.proc.send_signal(signum)

    def wait(self, timeout: float = 30.0) -> int:
        """Waits for the process to exit and returns its exit code.

        Raises:
            subprocess.TimeoutExpired: still running after ``timeout`` seconds (it is then killed).
        """
        return self._signal_and_wait(None, timeout)

    def terminate(self, timeout: float = 30.0) -> int:
        """SIGTERM (graceful stop), then waits; returns the exit code.

        Raises:
            subprocess.TimeoutExpired: still running after ``timeout`` seconds (it is then killed).
        """
        return self._signal_and_wait(signal.SIGTERM, timeout)

    def kill(self, timeout: float = 10.0) -> int:
        """SIGKILL: the crash case, no clean-up in the server. Returns the exit code (-9)."""
        return self._signal_and_wait(signal.SIGKILL, timeout)

    def _kill_group(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGKILL)

    def _signal_and_wait(self, signum: signal.Signals | None, timeout: float) -> int:
        if signum is signal.SIGKILL:
            self._kill_group()
        elif signum is not None:
            self.send_signal(signum)
        try:
            code = self.proc.wait(timeout)
        except subprocess.TimeoutExpired as exc:
            self._kill_group()
            self.proc.wait()
            # pytest prints notes: what the server was doing when it did not stop (the log file
            # itself may be gone with pytest's older temp folders by the time someone looks).
            with self._lock:
                tail = "\n".join(self.log_lines[-40:])
            exc.add_note(
                f"server still running {timeout:.0f} s after the signal; its last log lines:\n{tail}"
            )
            raise
        finally:
            self._reader.join(timeout=5)
        return code

    def __enter__(self) -> ServerProcess:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc is not None:
            with self._lock:
                tail = "\n".join(self.log_lines[-40:])
            exc.add_note(f"tracklane server (pid {self.pid}) log, last lines:\n{tail}")
        if self.proc.poll() is None:
            self.kill()
        else:
            self._kill_group()  # workers a killed parent left behind


def server_argv(
    *args: str,
    data_dir: Path,
    bind: str = "127.0.0.1:0",
    http_bind: str | None = "127.0.0.1:0",
    command: Sequence[str] = ("server",),
) -> list[str]:
    """``tracklane server --data-dir DATA_DIR --bind BIND --http-bind HTTP_BIND ARGS...``.

    Args:
        *args: Further flags.
        data_dir: The server's data folder (always given, so nothing lands in the user's home).
        bind: ``HOST:PORT`` of the gRPC listener; port 0 picks a free port.
        http_bind: The HTTP listener's ``HOST:PORT``, ``none``, or None to leave the flag out (the
            server's default, 127.0.0.1:5000, for tests of what it refuses before binding).
        command: The subcommand, for tests of other entry points (only ``server`` has --http-bind).
    """
    argv = [tracklane_executable(), *command, "--data-dir", str(data_dir), "--bind", bind]
    if command == ("server",) and http_bind is not None:
        argv += ["--http-bind", http_bind]
    return [*argv, *args]


def start_server(
    *args: str,
    data_dir: Path,
    bind: str = "127.0.0.1:0",
    http_bind: str = "127.0.0.1:0",
    env: Mapping[str, str] | None = None,
    log_dir: Path | None = None,
    ready_timeout: float = 30.0,
    command: Sequence[str] = ("server",),
) -> ServerProcess:
    """Starts ``tracklane server --data-dir DATA_DIR --bind BIND ARGS...`` and waits until it listens.

    Args:
        *args: Further flags, e.g. ``"--backend-store-uri", uri``.
        data_dir: The server's data folder (always given, so nothing lands in the user's home).
        bind: ``HOST:PORT``; port 0 picks a free port, read back from the log line.
        http_bind: The HTTP listener's ``HOST:PORT`` (port 0: a free one, as :attr:`ServerProcess.http_url`),
            or ``none``.
        env: Extra environment variables; the caller's own TRACKLANE_* settings are removed first.
        log_dir: Where ``server-N.log`` is written; defaults to ``data_dir``'s parent.
        ready_timeout: Seconds to wait for the ``listening on`` line.
        command: The subcommand, for tests of other entry points.

    Raises:
        ServerStartError: the server exited or did not log its address in time (it is killed).
    """
    global _counter
    with _counter_lock:
        _counter += 1
        number = _counter
    log_dir = log_dir or data_dir.parent
    log_dir.mkdir(parents=True, exist_ok=True)
    argv = server_argv(*args, data_dir=data_dir, bind=bind, http_bind=http_bind, command=command)
    started_at = time.monotonic()
    with (log_dir / f"server-{number}.stdout").open("wb") as stdout:
        # A session of its own, so SIGKILL can take the whole group: the workers of `--workers N`
        # outlive a killed parent otherwise (a failed start left three serving for most of an hour).
        proc = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=stdout,
            stderr=subprocess.PIPE,
            env=clean_env(env),
            start_new_session=True,
        )
    server = ServerProcess(proc, log_dir / f"server-{number}.log", started_at)
    try:
        server.wait_ready(ready_timeout)
    except BaseException:
        if proc.poll() is None:
            server.kill()  # with any workers it started
        else:
            server._kill_group()
        raise
    return server


def serve(
    tmp_path: Path, *args: str, bind: str = "127.0.0.1:0", env: Mapping[str, str] | None = None
) -> ServerProcess:
    """:func:`start_server` on ``tmp_path/data``; a start that fails (a busy shared machine) is tried
    again, twice. For the fault suite, whose servers are started many times."""
    for attempt in range(3):
        try:
            return start_server(*args, data_dir=tmp_path / "data", bind=bind, env=env)
        except ServerStartError:
            if attempt == 2:
                raise
            time.sleep(2)
    raise AssertionError("unreachable")


def tracklane_sync(address: str, spool: Path) -> subprocess.CompletedProcess[str]:
    """``tracklane sync`` of ``spool`` to the server at ``address``, its report as JSON on stdout."""
    command = [tracklane_executable(), "sync", "--tracking-uri", f"grpc://{address}"]
    return subprocess.run(
        [*command, "--spool-dir", str(spool), "--output", "json"],
        capture_output=True,
        text=True,
        env=clean_env(),
        timeout=120,
    )
