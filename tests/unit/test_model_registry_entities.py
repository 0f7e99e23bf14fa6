"""Registry entities survive the proto round trip; stage names parse the way MLflow users write them."""

from __future__ import annotations

from types import MappingProxyType

import pytest

from tracklane import exceptions
from tracklane.entities.model_registry import (
    ModelEvent,
    ModelStage,
    ModelVersion,
    ModelVersionStatus,
    RegisteredModel,
)
from tracklane.v1 import registry_pb2


def test_version_and_model_round_trip() -> None:
    version = ModelVersion(
        name="fraud",
        version=3,
        creation_timestamp=1_700_000_000_123,
        last_updated_timestamp=1_700_000_000_456,
        description="d",
        user_id="ana",
        current_stage=ModelStage.STAGING,
        source="runs:/abc/model",
        run_id="abc",
        status=ModelVersionStatus.FAILED_REGISTRATION,
        status_message="copy failed",
        tags=MappingProxyType({"a": "1", "b": "2"}),
        aliases=("champion", "latest-good"),
    )
    assert ModelVersion.from_proto(version.to_proto()) == version
    model = RegisteredModel(
        name="fraud",
        creation_timestamp=1,
        last_updated_timestamp=2,
        description="m",
        latest_versions=(version,),
        tags=MappingProxyType({"team": "risk"}),
        aliases=MappingProxyType({"champion": 3}),
    )
    assert RegisteredModel.from_proto(model.to_proto()) == model
    assert [a.alias for a in model.to_proto().aliases] == ["champion"]
    event = ModelEvent("fraud", 3, "alias_set", "champion", "2", "3", "ana", 5)
    assert ModelEvent.from_proto(event.to_proto()) == event


def test_unset_times_stay_none() -> None:
    assert ModelVersion.from_proto(registry_pb2.ModelVersion(name="m", version=1)).creation_timestamp is None
    assert ModelEvent.from_proto(registry_pb2.ModelEvent(name="m")).timestamp is None


@pytest.mark.parametrize(
    ("text", "stage"),
    [("Production", ModelStage.PRODUCTION), ("staging", ModelStage.STAGING), (" NONE ", ModelStage.NONE)],
)
def test_stage_parse(text: str, stage: ModelStage) -> None:
    assert ModelStage.parse(text) is stage
    assert ModelStage.from_proto(stage.to_proto()) is stage


def test_stage_parse_rejects_unknown_names() -> None:
    with pytest.raises(exceptions.InvalidArgument) as err:
        ModelStage.parse("prod", field="stages[1]")
    assert err.value.field == "stages[1]"
    assert "Production" in err.value.message
