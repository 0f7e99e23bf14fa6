"""What authorization costs: the same calls by an admin (never checked) and by a user whose
permission is looked up on every call, on one server with ``--auth``.

Prints the median latency of sequential GetRun calls (one permission lookup each) and of a
SearchExperiments page over N experiments of which the user may read half (the restriction is a
subquery in the search), median of several rounds, with the ratio user/admin from the same run.

    python -m bench.permissions_overhead [--calls 1000] [--experiments 2000]

Everything binds to 127.0.0.1 and stops by itself; SQLite in a throw-away folder.
"""

from __future__ import annotations

import argparse
import os

import tracklane
from bench._harness import median_seconds, tracklane_server
from tracklane import _channel
from tracklane.v1 import auth_pb2, auth_pb2_grpc

TOKEN = "tlk_bench-bootstrap-token-0123456789abcdef"


def _user_token(uri: str, name: str) -> str:
    with _channel.make_channel(uri, token=TOKEN) as channel:
        stub = auth_pb2_grpc.AuthServiceStub(channel)
        stub.CreateUser(auth_pb2.CreateUserRequest(user=auth_pb2.User(name=name)))
        return str(stub.CreateToken(auth_pb2.CreateTokenRequest(user_name=name)).secret)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=1000)
    parser.add_argument("--experiments", type=int, default=2000)
    args = parser.parse_args()
    with tracklane_server(["--auth", "true", "--auth-bootstrap-token", TOKEN]) as uri:
        token = _user_token(uri, "bench-reader")
        with tracklane.Client(uri, token=TOKEN) as admin, tracklane.Client(uri, token=token) as reader:
            ids = [admin.create_experiment(f"bench-{i}") for i in range(args.experiments)]
            for experiment_id in ids[::2]:
                admin.set_experiment_permission(experiment_id, "bench-reader", "READ")
            run_id = admin.create_run(ids[0]).info.run_id

            def gets(client: tracklane.Client) -> float:
                def run() -> int:
                    for _ in range(args.calls):
                        client.get_run(run_id)
                    return args.calls

                return median_seconds(run)[0] / args.calls

            def search(client: tracklane.Client) -> float:
                def run() -> int:
                    return len(
                        client.search_experiments(max_results=100, filter_string="name LIKE 'bench-%'")
                    )

                return median_seconds(run)[0]

            results = {
                "GetRun": (gets(admin), gets(reader)),
                "SearchExperiments (100 of them)": (search(admin), search(reader)),
            }
    print(
        f"{args.experiments} experiments, user reads half; median of rounds; load average "
        f"{tuple(round(x, 2) for x in os.getloadavg())}"
    )
    for name, (as_admin, as_user) in results.items():
        print(
            f"  {name:32} admin {as_admin * 1e3:8.3f} ms   user {as_user * 1e3:8.3f} ms   "
            f"ratio {as_user / as_admin:.2f}"
        )


if __name__ == "__main__":
    main()
