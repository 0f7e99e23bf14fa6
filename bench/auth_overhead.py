"""What authentication costs per call: the same unary call on a server without and with ``--auth``.

With auth every call carries a Bearer token that the server resolves (a cached lookup for all but
the first call in each 5 s window). Prints the median latency of sequential GetExperiment calls,
median of several rounds, and the ratio auth/no-auth measured in the same run.

    python -m bench.auth_overhead [--calls 2000]

Everything binds to 127.0.0.1 and stops by itself; SQLite in throw-away folders.
"""

from __future__ import annotations

import argparse
import os

import tracklane
from bench._harness import median_seconds, tracklane_server

TOKEN = "tlk_bench-bootstrap-token-0123456789abcdef"


def per_call_seconds(settings: list[str], token: str | None, calls: int) -> float:
    with tracklane_server(settings) as uri, tracklane.Client(uri, token=token) as client:

        def run() -> int:
            for _ in range(calls):
                client.get_experiment("0")
            return calls

        seconds, _ = median_seconds(run)
    return seconds / calls


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=2000)
    args = parser.parse_args()
    plain = per_call_seconds([], None, args.calls)
    with_auth = per_call_seconds(["--auth", "true", "--auth-bootstrap-token", TOKEN], TOKEN, args.calls)
    print(f"GetExperiment, {args.calls} sequential calls, median of rounds; load average {os.getloadavg()}")
    print(f"  auth off: {plain * 1e6:8.1f} us/call")
    print(f"  auth on:  {with_auth * 1e6:8.1f} us/call   ratio {with_auth / plain:.2f}")


if __name__ == "__main__":
    main()
