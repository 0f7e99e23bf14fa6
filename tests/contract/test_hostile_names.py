"""Names people read: no invisible characters, one normal form, on every backend.

Experiment, run and registered-model names with control characters (tabs, newlines, terminal
escapes), format characters (zero-width, bidi overrides, the BOM) or line separators are refused
with INVALID_ARGUMENT naming the field, wherever a name is set: they forge log lines and make
lookalikes ("prod" and "pro<ZWSP>d"). Names are stored and compared in Unicode NFC, so the same name
typed in two normal forms is one name: creating it again is ALREADY_EXISTS, and looking it up in
either form finds it. Keys (params, metrics, tags) already have a fixed visible alphabet.
"""

from __future__ import annotations

import unicodedata
import uuid
from collections.abc import Callable
from typing import Any

import grpc
import pytest

from tests.contract.hostile import Stubs, invalid, refused, tag
from tracklane.v1 import registry_pb2, tracking_pb2

pytestmark = pytest.mark.usefixtures("server_survives")

INVISIBLE = {
    "zero-width space": "pro\u200bd",
    "zero-width joiner": "prod\u200d",
    "zero-width non-joiner": "pr\u200cod",
    "word joiner": "pr\u2060od",
    "right-to-left override": "\u202edorp",
    "left-to-right isolate": "a\u2066b\u2069",
    "byte order mark": "\ufeffprod",
    "soft hyphen": "pro\u00add",
    "newline": "prod\nINFO forged log line",
    "carriage return": "prod\rforged",
    "tab": "prod\tv2",
    "terminal escape": "prod\x1b[31mred",
    "delete": "prod\x7f",
    "line separator": "prod\u2028forged",
    "paragraph separator": "prod\u2029forged",
}


def uuid_hex() -> str:
    return uuid.uuid4().hex[:10]


def nfd(text: str) -> str:
    return unicodedata.normalize("NFD", text)


@pytest.fixture(scope="module")
def targets(stubs: Stubs) -> dict[str, str]:
    """An experiment, a run and a model with visible names, to rename to hostile ones."""
    suffix = uuid_hex()
    experiment_id = stubs.tracking.CreateExperiment(
        tracking_pb2.CreateExperimentRequest(name=f"names-{suffix}")
    ).experiment.experiment_id
    run_id = stubs.tracking.CreateRun(
        tracking_pb2.CreateRunRequest(experiment_id=experiment_id, run_name="visible")
    ).run.info.run_id
    model = f"names-{suffix}"
    stubs.registry.CreateRegisteredModel(registry_pb2.CreateRegisteredModelRequest(name=model))
    stubs.registry.CreateModelVersion(
        registry_pb2.CreateModelVersionRequest(name=model, source=f"runs:/{run_id}/model", run_id=run_id)
    )
    return {"experiment_id": experiment_id, "run_id": run_id, "model": model}


def setters(stubs: Stubs, targets: dict[str, str]) -> dict[str, tuple[Callable[[str], Any], str]]:
    """Every call that sets a name, with the field it names: (call taking the name, field)."""
    t, r = stubs.tracking, stubs.registry
    return {
        "CreateExperiment": (
            lambda n: t.CreateExperiment(tracking_pb2.CreateExperimentRequest(name=n)),
            "name",
        ),
        "UpdateExperiment": (
            lambda n: t.UpdateExperiment(
                tracking_pb2.UpdateExperimentRequest(experiment_id=targets["experiment_id"], name=n)
            ),
            "name",
        ),
        "CreateRun": (
            lambda n: t.CreateRun(
                tracking_pb2.CreateRunRequest(experiment_id=targets["experiment_id"], run_name=n)
            ),
            "run_name",
        ),
        "UpdateRun": (
            lambda n: t.UpdateRun(tracking_pb2.UpdateRunRequest(run_id=targets["run_id"], run_name=n)),
            "run_name",
        ),
        "CreateRegisteredModel": (
            lambda n: r.CreateRegisteredModel(registry_pb2.CreateRegisteredModelRequest(name=n)),
            "name",
        ),
        "RenameRegisteredModel": (
            lambda n: r.RenameRegisteredModel(
                registry_pb2.RenameRegisteredModelRequest(name=targets["model"], new_name=n)
            ),
            "new_name",
        ),
        "CopyModelVersion": (
            lambda n: r.CopyModelVersion(
                registry_pb2.CopyModelVersionRequest(name=targets["model"], version=1, destination_name=n)
            ),
            "destination_name",
        ),
    }


NAME_SETTERS = [
    "CreateExperiment",
    "UpdateExperiment",
    "CreateRun",
    "UpdateRun",
    "CreateRegisteredModel",
    "RenameRegisteredModel",
    "CopyModelVersion",
]


@pytest.mark.parametrize("call", NAME_SETTERS)
@pytest.mark.parametrize("kind", INVISIBLE)
def test_invisible_characters_in_names_are_refused(
    stubs: Stubs, targets: dict[str, str], call: str, kind: str
) -> None:
    setter, field = setters(stubs, targets)[call]
    name = f"{uuid_hex()}-{INVISIBLE[kind]}"
    message = invalid(lambda _request, timeout: setter(name), None, field)
    assert "\n" not in message  # the message cannot forge a log line either
    assert "\x1b" not in message
    # Nothing was created or renamed.
    t, r = stubs.tracking, stubs.registry
    experiment = t.GetExperiment(tracking_pb2.GetExperimentRequest(experiment_id=targets["experiment_id"]))
    assert experiment.experiment.name.startswith("names-")
    assert t.GetRun(tracking_pb2.GetRunRequest(run_id=targets["run_id"])).run.info.run_name == "visible"
    r.GetRegisteredModel(registry_pb2.GetRegisteredModelRequest(name=targets["model"]))
    for lookup in (
        lambda: t.GetExperimentByName(tracking_pb2.GetExperimentByNameRequest(name=name)),
        lambda: r.GetRegisteredModel(registry_pb2.GetRegisteredModelRequest(name=name)),
    ):
        with pytest.raises(grpc.RpcError) as missing:
            lookup()
        assert missing.value.code() == grpc.StatusCode.NOT_FOUND


def test_experiment_names_in_two_normal_forms_are_one_name(stubs: Stubs) -> None:
    t = stubs.tracking
    composed = f"café-{uuid_hex()}"  # é as one code point (NFC)
    assert nfd(composed) != composed
    created = t.CreateExperiment(tracking_pb2.CreateExperimentRequest(name=nfd(composed))).experiment
    assert created.name == composed  # stored in NFC
    refused(
        t.CreateExperiment,
        tracking_pb2.CreateExperimentRequest(name=composed),
        grpc.StatusCode.ALREADY_EXISTS,
        "name",
    )
    for form in (composed, nfd(composed)):
        found = t.GetExperimentByName(tracking_pb2.GetExperimentByNameRequest(name=form)).experiment
        assert found.experiment_id == created.experiment_id
    other = t.CreateExperiment(tracking_pb2.CreateExperimentRequest(name=f"other-{uuid_hex()}")).experiment
    refused(
        t.UpdateExperiment,
        tracking_pb2.UpdateExperimentRequest(experiment_id=other.experiment_id, name=nfd(composed)),
        grpc.StatusCode.ALREADY_EXISTS,
        "name",
    )


def test_model_names_in_two_normal_forms_are_one_name(stubs: Stubs) -> None:
    r = stubs.registry
    composed = f"Ångström-{uuid_hex()}"
    created = r.CreateRegisteredModel(registry_pb2.CreateRegisteredModelRequest(name=nfd(composed)))
    assert created.registered_model.name == composed
    refused(
        r.CreateRegisteredModel,
        registry_pb2.CreateRegisteredModelRequest(name=composed),
        grpc.StatusCode.ALREADY_EXISTS,
        "name",
    )
    for form in (composed, nfd(composed)):
        got = r.GetRegisteredModel(registry_pb2.GetRegisteredModelRequest(name=form)).registered_model
        assert got.name == composed
    renamed = f"Ärger-{uuid_hex()}"
    r.RenameRegisteredModel(
        registry_pb2.RenameRegisteredModelRequest(name=nfd(composed), new_name=nfd(renamed))
    )
    assert (
        r.GetRegisteredModel(registry_pb2.GetRegisteredModelRequest(name=renamed)).registered_model.name
        == renamed
    )


def test_run_names_are_stored_in_nfc(stubs: Stubs) -> None:
    t = stubs.tracking
    run = t.CreateRun(tracking_pb2.CreateRunRequest(run_name=nfd("éclair"))).run
    assert run.info.run_name == "éclair"
    t.UpdateRun(tracking_pb2.UpdateRunRequest(run_id=run.info.run_id, run_name=nfd("crème")))
    assert t.GetRun(tracking_pb2.GetRunRequest(run_id=run.info.run_id)).run.info.run_name == "crème"


@pytest.mark.parametrize("kind", INVISIBLE)
def test_invisible_characters_in_tag_keys_are_refused(
    stubs: Stubs, targets: dict[str, str], kind: str
) -> None:
    key = f"k{INVISIBLE[kind]}"
    invalid(
        stubs.tracking.LogBatch,
        tracking_pb2.LogBatchRequest(run_id=targets["run_id"], tags=[tag(key, "v")]),
        "tags[0].key",
    )
    invalid(
        stubs.tracking.CreateExperiment,
        tracking_pb2.CreateExperimentRequest(name=f"tagged-{uuid_hex()}", tags=[tag(key, "v")]),
        "tags[0].key",
    )
