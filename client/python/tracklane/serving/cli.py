"""``tracklane models serve | predict | generate-dockerfile | build-docker``.

``add_commands`` registers them on the ``models`` group's subparsers; each handler returns the exit
status (``standalone_command``: no shared client, no table output).
"""

from __future__ import annotations

import argparse
import dataclasses
import os
from typing import Any

from tracklane.serving.environments import ENV_MANAGERS

__all__ = ["add_commands"]

_MB = 1024 * 1024


def add_commands(models: Any) -> None:
    """Adds the serving commands to ``tracklane models``' subparsers."""
    serve = models.add_parser(
        "serve",
        help="serve a model over REST (MLflow's scoring protocol) and gRPC (Open Inference Protocol)",
        description="Serve a model: POST /invocations as MLflow's scoring server, the Open Inference "
        "Protocol's GRPCInferenceService on --grpc-port, Prometheus metrics on /metrics.",
    )
    _model_args(serve)
    serve.add_argument("-p", "--port", type=int, default=5000, help="REST port (0: any free one)")
    serve.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    serve.add_argument(
        "--grpc-port", type=int, default=8081, help="Open Inference Protocol gRPC port (0 disables it)"
    )
    serve.add_argument(
        "--name", default=None, help="model name the OIP serves (default: the registered or folder name)"
    )
    serve.add_argument("-w", "--workers", type=int, default=1, help="worker processes sharing the ports")
    serve.add_argument(
        "--max-batch-size",
        type=int,
        default=1,
        help="score up to this many queued table requests in one model call (1: no batching)",
    )
    serve.add_argument(
        "--max-batch-delay-ms",
        type=float,
        default=0.0,
        help="wait up to this long for a batch to fill (0: take what is queued)",
    )
    serve.add_argument(
        "--max-request-size", type=int, default=64 * _MB, help="largest request body in bytes (413 above it)"
    )
    serve.add_argument(
        "--timeout", type=float, default=30.0, help="seconds to finish accepted requests on SIGTERM"
    )
    serve.set_defaults(standalone_command=_serve)

    predict = models.add_parser("predict", help="score an input file with a model, as the server would")
    _model_args(predict)
    predict.add_argument("-i", "--input-path", default="-", help="input file (default stdin)")
    predict.add_argument("-o", "--output-path", default="-", help="output file (default stdout)")
    predict.add_argument("-t", "--content-type", choices=("json", "csv", "parquet"), default="json")
    predict.set_defaults(standalone_command=_predict)

    dockerfile = models.add_parser(
        "generate-dockerfile", help="write a Dockerfile (and build context) that serves the model"
    )
    _model_args(dockerfile, env=False)
    dockerfile.add_argument("-d", "--output-directory", default="tracklane-dockerfile")
    dockerfile.add_argument("--base-image", default=None, help="a Debian-like image with python3")
    dockerfile.set_defaults(standalone_command=_generate_dockerfile)

    build = models.add_parser("build-docker", help="build a container image that serves the model")
    _model_args(build, env=False)
    build.add_argument("-n", "--name", default="tracklane-pyfunc", help="image name")
    build.add_argument("--base-image", default=None, help="a Debian-like image with python3")
    build.set_defaults(standalone_command=_build_docker)


def _model_args(parser: argparse.ArgumentParser, env: bool = True) -> None:
    parser.add_argument(
        "-m",
        "--model-uri",
        required=True,
        help="models:/NAME/VERSION, models:/NAME@ALIAS, models:/NAME/STAGE, runs:/RUN_ID/PATH or a folder",
    )
    if env:
        parser.add_argument(
            "--env-manager",
            choices=ENV_MANAGERS,
            default="local",
            help="local: this interpreter; uv/virtualenv: an environment from the model's requirements",
        )
    parser.add_argument(
        "--tracking-uri", default=None, help="server, e.g. grpc://HOST:50051 [env TRACKLANE_TRACKING_URI]"
    )


def _use_tracking_uri(args: argparse.Namespace) -> None:
    if args.tracking_uri:  # the Client reads it from here
        os.environ["TRACKLANE_TRACKING_URI"] = args.tracking_uri


def _serve(args: argparse.Namespace) -> int:
    from tracklane.serving.environments import prepare_python
    from tracklane.serving.supervisor import resolve_model, serve

    model = resolve_model(args.model_uri, tracking_uri=args.tracking_uri)
    if args.name:
        model = dataclasses.replace(model, name=args.name)
    return serve(
        model,
        host=args.host,
        port=args.port,
        grpc_port=args.grpc_port,
        workers=args.workers,
        python=prepare_python(model.model_dir, args.env_manager),
        max_batch_size=args.max_batch_size,
        max_batch_delay_ms=args.max_batch_delay_ms,
        max_request_bytes=args.max_request_size,
        grace_seconds=args.timeout,
    )


def _predict(args: argparse.Namespace) -> int:
    import sys

    from tracklane.models.deploy import predict
    from tracklane.serving.payload import ScoringError

    _use_tracking_uri(args)
    try:
        predict(
            args.model_uri,
            input_path=args.input_path,
            content_type=args.content_type,
            output_path=args.output_path,
            env_manager=args.env_manager,
        )
    except ScoringError as exc:
        print(f"tracklane: error: {exc.error_code}: {exc.message}", file=sys.stderr)
        return 2
    return 0


def _generate_dockerfile(args: argparse.Namespace) -> int:
    from tracklane.serving.images import generate_dockerfile

    out = generate_dockerfile(args.model_uri, args.output_directory, args.base_image, args.tracking_uri)
    print(f"wrote {os.path.join(out, 'Dockerfile')} and its build context")
    return 0


def _build_docker(args: argparse.Namespace) -> int:
    from tracklane.serving.images import build_image

    build_image(args.model_uri, args.name, args.base_image, args.tracking_uri)
    return 0
