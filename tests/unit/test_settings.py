"""Settings: flags beat TRACKLANE_* variables beat defaults; bad values name the setting."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from tracklane.exceptions import InvalidArgument
from tracklane_server import settings as settings_module
from tracklane_server.settings import SETTINGS, Settings, load


def test_defaults_are_the_embedded_default(tmp_path: Path) -> None:
    s = load({}, environ={"XDG_DATA_HOME": str(tmp_path)})
    assert s.bind == "127.0.0.1:50051"
    assert s.http_host_port == ("127.0.0.1", 5000)
    assert s.resolved_backend_store_uri == f"sqlite:///{tmp_path / 'tracklane' / 'tracklane.db'}"
    assert s.resolved_artifact_root == (tmp_path / "tracklane" / "artifacts").as_uri()


def test_flags_beat_environment_beat_defaults() -> None:
    env = {"TRACKLANE_BIND": "127.0.0.1:6000", "TRACKLANE_WORKERS": "3", "TRACKLANE_LOG_FORMAT": "json"}
    s = load({"bind": "127.0.0.1:7000"}, environ=env)
    assert s.bind == "127.0.0.1:7000"
    assert s.workers == 3
    assert s.log_format == "json"


def test_the_http_listener_binds_ipv6_or_is_off() -> None:
    assert load({"http_bind": "[::1]:0"}, environ={}).http_host_port == ("::1", 0)
    assert load({}, environ={"TRACKLANE_HTTP_BIND": "none"}).http_host_port is None
    assert load({"http_bind": "0.0.0.0:5000", "auth": "true"}, environ={}).http_host_port == ("0.0.0.0", 5000)


def test_aws_variables_are_fallbacks_for_s3_keys() -> None:
    s = load({}, environ={"AWS_ACCESS_KEY_ID": "aws", "TRACKLANE_S3_SECRET_ACCESS_KEY": "mine"})
    assert (s.s3_access_key_id, s.s3_secret_access_key) == ("aws", "mine")
    assert (
        load({}, environ={"AWS_ACCESS_KEY_ID": "aws", "TRACKLANE_S3_ACCESS_KEY_ID": "t"}).s3_access_key_id
        == "t"
    )


@pytest.mark.parametrize(
    ("given", "field"),
    [
        ({"bind": "nonsense"}, "bind"),
        ({"bind": "127.0.0.1:99999"}, "bind"),
        ({"http_bind": "5000"}, "http_bind"),
        ({"http_bind": "[::1]:70000"}, "http_bind"),
        ({"http_bind": "0.0.0.0:5000"}, "http_bind"),  # reachable from outside, without auth
        ({"backend_store_uri": "mysql://x/y"}, "backend_store_uri"),
        ({"artifact_root": "ftp://x"}, "artifact_root"),
        ({"workers": "0"}, "workers"),
        ({"workers": "two"}, "--workers"),
        ({"log_format": "xml"}, "log_format"),
        ({"auto_migrate": "maybe"}, "--auto-migrate"),
    ],
)
def test_bad_values_name_the_setting(given: dict[str, str], field: str) -> None:
    with pytest.raises(InvalidArgument) as err:
        load(given, environ={})
    assert err.value.field == field


def test_every_settings_field_is_declared_once_with_a_flag() -> None:
    declared = [s.name for s in SETTINGS]
    assert sorted(declared) == sorted(f.name for f in Settings.__dataclass_fields__.values())
    assert len(set(declared)) == len(declared)
    parser = argparse.ArgumentParser()
    settings_module.add_arguments(parser)
    help_text = parser.format_help()
    for setting in SETTINGS:
        assert setting.flag in help_text
        assert setting.env in help_text
