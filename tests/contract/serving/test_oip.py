"""The Open Inference Protocol on `tracklane models serve`, called by Triton's own client.

tritonclient[grpc] pins its protobuf, so it runs from its own virtualenv (made once, cached); each
test runs a short script there and checks what it printed. gRPC health and reflection, and the
error details, are checked with grpcio here.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import grpc
import numpy as np
import pytest
from google.rpc import error_details_pb2
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_status import rpc_status

import tracklane
from tests.conftest import require_service
from tests.serving_helpers import IRIS_COLUMNS, ModelServer, echo_input, iris, triton_python
from tracklane.serving.oip import open_inference_pb2 as pb
from tracklane.serving.oip import open_inference_pb2_grpc as pb_grpc

CLIENT = r"""
import json, sys
import numpy as np
import tritonclient.grpc as grpcclient
from tritonclient.utils import InferenceServerException

target, model, scenario = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
client = grpcclient.InferenceServerClient(url=target)
out = {
    "live": client.is_server_live(),
    "ready": client.is_server_ready(),
    "model_ready": client.is_model_ready(model),
    "server": client.get_server_metadata(as_json=True),
    "metadata": client.get_model_metadata(model, as_json=True),
}
inputs = []
for name, spec in scenario["inputs"].items():
    if spec["datatype"] == "BYTES":
        array = np.array([v.encode() for v in spec["values"]], dtype=object)
    else:
        array = np.array(spec["values"], dtype=spec["dtype"])
    tensor = grpcclient.InferInput(name, list(array.shape), spec["datatype"])
    tensor.set_data_from_numpy(array)
    inputs.append(tensor)
result = client.infer(model, inputs, request_id="req-1", parameters=scenario.get("parameters"))
response = result.get_response(as_json=True)
out["id"] = response.get("id")
out["outputs"] = {}
for output in response["outputs"]:
    array = result.as_numpy(output["name"])
    values = [v.decode() if isinstance(v, bytes) else v for v in array.tolist()]
    shape = list(array.shape)
    out["outputs"][output["name"]] = {"datatype": output["datatype"], "shape": shape, "values": values}
try:
    client.infer("no-such-model", inputs)
except InferenceServerException as exc:
    out["unknown_model"] = [exc.status(), exc.message()]
print(json.dumps(out))
"""


@pytest.fixture(scope="module")
def tritonclient_python() -> str:
    try:
        return triton_python()
    except (subprocess.CalledProcessError, subprocess.TimeoutExpired, OSError) as exc:
        require_service(f"a tritonclient virtualenv ({exc})", "network access to PyPI")
        raise


def _run(python: str, server: ModelServer, model: str, scenario: dict[str, Any]) -> dict[str, Any]:
    done = subprocess.run(
        [python, "-c", CLIENT, server.grpc_target, model, json.dumps(scenario)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    result: dict[str, Any] = json.loads(done.stdout)
    return result


def test_tritonclient_live_ready_metadata_and_infer(
    tritonclient_python: str, iris_server: ModelServer, iris_model: tuple[Path, Any]
) -> None:
    X, _ = iris()
    rows = X.iloc[[0, 50, 100, 149]].reset_index(drop=True)
    expected = tracklane.pyfunc.load_model(str(iris_model[0])).predict(rows)
    scenario = {
        "inputs": {
            c: {"datatype": "FP64", "dtype": "float64", "values": rows[c].tolist()} for c in IRIS_COLUMNS
        }
    }
    out = _run(tritonclient_python, iris_server, "iris", scenario)
    assert out["live"] is True
    assert out["ready"] is True
    assert out["model_ready"] is True
    assert out["server"]["name"] == "tracklane"
    assert out["server"]["version"] == tracklane.__version__
    metadata = out["metadata"]
    assert metadata["name"] == "iris"
    assert metadata["platform"] == "sklearn"
    assert [(t["name"], t["datatype"], t["shape"]) for t in metadata["inputs"]] == [
        (c, "FP64", ["-1"]) for c in IRIS_COLUMNS
    ]
    assert [(t["name"], t["datatype"]) for t in metadata["outputs"]] == [("output-1", "INT64")]
    assert out["id"] == "req-1"
    assert out["outputs"] == {"output-1": {"datatype": "INT64", "shape": [4], "values": expected.tolist()}}
    assert out["unknown_model"][0] == "StatusCode.NOT_FOUND"
    assert "'no-such-model' is not served here" in out["unknown_model"][1]


def test_dataframes_round_trip_with_content_types(
    tritonclient_python: str, echo_server: ModelServer, echo_model: Path
) -> None:
    frame = echo_input()
    expected = tracklane.pyfunc.load_model(str(echo_model)).predict(frame, params={"n": 3})
    scenario = {
        "inputs": {
            "name": {"datatype": "BYTES", "values": frame["name"].tolist()},
            "value": {"datatype": "FP64", "dtype": "float64", "values": frame["value"].tolist()},
        },
        "parameters": {"content_type": "pd", "n": 3},
    }
    out = _run(tritonclient_python, echo_server, "echo", scenario)
    assert [(t["name"], t["datatype"]) for t in out["metadata"]["inputs"]] == [
        ("name", "BYTES"),
        ("value", "FP64"),
    ]
    assert out["outputs"] == {
        "name": {"datatype": "BYTES", "shape": [3], "values": expected["name"].tolist()},
        "value": {"datatype": "FP64", "shape": [3], "values": expected["value"].tolist()},
        "n": {"datatype": "INT64", "shape": [3], "values": [3, 3, 3]},
    }
    assert out["outputs"]["name"]["values"] == ["A", "BÉ", "C"]


def _stub(server: ModelServer) -> tuple[grpc.Channel, pb_grpc.GRPCInferenceServiceStub]:
    channel = grpc.insecure_channel(server.grpc_target)
    return channel, pb_grpc.GRPCInferenceServiceStub(channel)


def test_tensor_content_type_str_and_response_content_type(echo_server: ModelServer) -> None:
    channel, stub = _stub(echo_server)
    with channel:
        request = pb.ModelInferRequest(model_name="echo")
        name = request.inputs.add(name="name", datatype="BYTES", shape=[2])
        name.parameters["content_type"].string_param = "str"
        name.contents.bytes_contents.extend([b"x", b"y"])
        value = request.inputs.add(name="value", datatype="FP64", shape=[2, 1])
        value.contents.fp64_contents.extend([1.0, 2.0])
        response = stub.ModelInfer(request)
    assert response.parameters["content_type"].string_param == "pd"
    outputs = {o.name: o for o in response.outputs}
    assert outputs["name"].parameters["content_type"].string_param == "str"
    value_index = [o.name for o in response.outputs].index("value")
    assert np.frombuffer(response.raw_output_contents[value_index], "<f8").tolist() == [2.0, 4.0]


@pytest.mark.parametrize(
    ("build", "field", "fragment"),
    [
        (
            lambda r: r.inputs.add(
                name="sepal length (cm)", datatype="FP64", shape=[1]
            ).contents.fp64_contents.append(1.0),
            "inputs",
            "missing inputs",
        ),
        (
            lambda r: r.inputs.add(name="x", datatype="FP64", shape=[3]).contents.fp64_contents.append(1.0),
            "x",
            "1 elements for shape [3]",
        ),
        (lambda r: r.inputs.add(name="x", datatype="COMPLEX", shape=[1]), "x", "unsupported datatype"),
        (
            lambda r: (
                r.inputs.add(name="x", datatype="FP64", shape=[2]),
                r.raw_input_contents.append(b"123"),
            ),
            "x",
            "3 raw bytes",
        ),
    ],
)
def test_bad_tensors_get_invalid_argument_naming_the_field(
    iris_server: ModelServer, build: Any, field: str, fragment: str
) -> None:
    channel, stub = _stub(iris_server)
    with channel:
        request = pb.ModelInferRequest(model_name="iris")
        build(request)
        with pytest.raises(grpc.RpcError) as caught:
            stub.ModelInfer(request)
        assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert fragment in caught.value.details()
        status = rpc_status.from_call(caught.value)
        assert status is not None
        violations = []
        for detail in status.details:
            bad = error_details_pb2.BadRequest()
            if detail.Unpack(bad):
                violations += [v.field for v in bad.field_violations]
        assert violations == [field]
        # The server goes on serving.
        assert stub.ServerReady(pb.ServerReadyRequest()).ready


def test_request_over_the_size_limit_is_resource_exhausted(iris_server: ModelServer) -> None:
    channel, stub = _stub(iris_server)
    with channel:
        request = pb.ModelInferRequest(model_name="iris")
        request.inputs.add(name="x", datatype="FP64", shape=[20000]).contents.fp64_contents.extend(
            [1.0] * 20000
        )
        with pytest.raises(grpc.RpcError) as caught:
            stub.ModelInfer(request)
        assert caught.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED


def test_grpc_health_and_reflection(iris_server: ModelServer) -> None:
    from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

    with grpc.insecure_channel(iris_server.grpc_target) as channel:
        health = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(service=""))
        assert health.status == health_pb2.HealthCheckResponse.SERVING
        reflection = reflection_pb2_grpc.ServerReflectionStub(channel)
        [answer] = reflection.ServerReflectionInfo(
            iter([reflection_pb2.ServerReflectionRequest(list_services="")])
        )
        names = {s.name for s in answer.list_services_response.service}
        assert "inference.GRPCInferenceService" in names
        assert "grpc.health.v1.Health" in names
