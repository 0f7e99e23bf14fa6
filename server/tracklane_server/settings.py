"""One Settings object: command-line flags > TRACKLANE_* environment variables > defaults.

Every setting is declared once, in SETTINGS below, with its flag, variable and doc line; the CLI's
``--help``, the README's table and the docker-compose test all read that one list.
"""

from __future__ import annotations

import argparse
import dataclasses
import ipaddress
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from tracklane.exceptions import InvalidArgument
from tracklane_server.identity.principal import Permission

__all__ = ["SETTINGS", "Setting", "Settings", "add_arguments", "default_data_dir", "load"]


def default_data_dir(environ: Mapping[str, str] | None = None) -> Path:
    """``$XDG_DATA_HOME/tracklane``, i.e. ``~/.local/share/tracklane`` on most machines."""
    environ = os.environ if environ is None else environ
    base = environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "tracklane"


@dataclass(frozen=True)
class Settings:
    """Everything the server reads at start. Build with :func:`load`."""

    data_dir: Path = dataclasses.field(default_factory=default_data_dir)
    backend_store_uri: str = ""
    artifact_root: str = ""
    allowed_artifact_roots: tuple[str, ...] = ()
    bind: str = "127.0.0.1:50051"
    http_bind: str = "127.0.0.1:5000"
    ui_dir: str = ""
    workers: int = 1
    threads: int = 16
    max_message_bytes: int = 4 * 1024 * 1024 + 64 * 1024  # an upload's largest chunk and its header
    max_decoding_bytes: int = 32 * 1024 * 1024
    shutdown_grace_seconds: float = 10.0
    max_streams_per_client: int = 64
    max_streams_per_user: int = 256
    handshake_timeout_seconds: float = 10.0
    connection_idle_seconds: float = 300.0
    max_connection_age_seconds: float = 3600.0
    upload_idle_timeout_seconds: float = 60.0
    max_token_days: int = 0
    s3_endpoint_url: str = ""
    s3_access_key_id: str = ""
    s3_secret_access_key: str = ""
    s3_region: str = ""
    s3_public_endpoint_url: str = ""
    max_artifact_bytes: int = 0
    artifact_multipart_max_age_seconds: float = 24 * 3600.0
    log_level: str = "INFO"
    log_format: str = "text"
    auto_migrate: bool = True
    auth: bool = False
    auth_bootstrap_token: str = dataclasses.field(default="", repr=False)
    allow_public_without_auth: bool = False
    auth_default_permission: str = "NONE"
    tls_cert_file: str = ""
    tls_key_file: str = ""
    tls_client_ca_file: str = ""

    @property
    def resolved_backend_store_uri(self) -> str:
        """The backend store URI, defaulting to SQLite in the data folder."""
        return self.backend_store_uri or f"sqlite:///{self.data_dir / 'tracklane.db'}"

    @property
    def resolved_artifact_root(self) -> str:
        """The default artifact root, defaulting to a folder in the data folder."""
        return self.artifact_root or (self.data_dir / "artifacts").as_uri()

    @property
    def host_port(self) -> tuple[str, int]:
        """``bind`` split into host and port."""
        return _host_port(self.bind)

    @property
    def http_host_port(self) -> tuple[str, int] | None:
        """``http_bind`` split into host and port; None when the HTTP listener is off."""
        return None if self.http_bind.strip().lower() == "none" else _host_port(self.http_bind)


def _host_port(address: str) -> tuple[str, int]:
    host, _, port = address.rpartition(":")
    return host.strip("[]"), int(port)


@dataclass(frozen=True)
class Setting:
    """One setting: its field in Settings, flag, environment variable and doc line."""

    name: str
    help: str
    parse: Callable[[str], Any] = str

    @property
    def env(self) -> str:
        return f"TRACKLANE_{self.name.upper()}"

    @property
    def flag(self) -> str:
        return "--" + self.name.replace("_", "-")


def _bool(text: str) -> bool:
    lowered = text.strip().lower()
    if lowered in {"1", "true", "yes", "on"}:
        return True
    if lowered in {"0", "false", "no", "off"}:
        return False
    raise ValueError(f"expected true or false, got {text!r}")


def _uri_list(text: str) -> tuple[str, ...]:
    return tuple(item.strip() for item in text.split(",") if item.strip())


def _permission_name(text: str) -> str:
    name = text.strip().upper()
    if name != "NONE" and name not in Permission.__members__:
        raise ValueError(f"expected NONE, {', '.join(Permission.__members__)}, got {text!r}")
    return name


SETTINGS: tuple[Setting, ...] = (
    Setting(
        "data_dir",
        "Folder of the embedded default (SQLite file, artifacts). "
        "Default: $XDG_DATA_HOME/tracklane or ~/.local/share/tracklane.",
        Path,
    ),
    Setting(
        "backend_store_uri",
        "Metadata database: sqlite:///PATH or "
        "postgresql+psycopg://USER:PASSWORD@HOST:PORT/DB. Default: SQLite in the data folder.",
    ),
    Setting(
        "artifact_root",
        "Default artifact root for new experiments: file:///PATH or "
        "s3://BUCKET/PREFIX. Default: the data folder's artifacts/.",
    ),
    Setting(
        "allowed_artifact_roots",
        "Other roots (comma-separated file:///PATH or s3://BUCKET/PREFIX) that experiments may name "
        "as their artifact_location; anything outside them and --artifact-root is refused. "
        "Default: none.",
        _uri_list,
    ),
    Setting("bind", "Address to listen on, HOST:PORT. Default: 127.0.0.1:50051."),
    Setting(
        "http_bind",
        "Address of the HTTP listener (web UI, browser RPC over Connect), HOST:PORT, or none to "
        "turn it off. Default: 127.0.0.1:5000.",
    ),
    Setting(
        "ui_dir",
        "Folder of a web UI build (index.html, assets/) to serve instead of the one installed with "
        "the server, e.g. ui/dist while developing the UI. Default: the installed one.",
    ),
    Setting("workers", "Server processes sharing the port (SO_REUSEPORT). Default: 1.", int),
    Setting("threads", "Threads per process for database and object-store calls. Default: 16.", int),
    Setting(
        "max_message_bytes",
        "Largest request message accepted, in bytes; bulk data goes over the streams "
        "(StreamMetrics, UploadArtifact) in smaller messages. Default: 4259840 (4 MiB + 64 KiB: the "
        "largest artifact chunk, 4 MiB, and its header).",
        int,
    ),
    Setting(
        "max_decoding_bytes",
        "Bytes of large (64 KiB or more) unary requests decoded and handled at once, server-wide; as "
        "many more wait, the rest are refused with RESOURCE_EXHAUSTED. At least --max-message-bytes. "
        "Default: 33554432 (32 MiB).",
        int,
    ),
    Setting(
        "max_streams_per_client",
        "StreamMetrics calls one client process may have open at once; more are refused with "
        "RESOURCE_EXHAUSTED. Default: 64.",
        int,
    ),
    Setting(
        "max_streams_per_user",
        "StreamMetrics and WatchRun calls one user (without auth: one peer address) may have open at "
        "once on a server process; more are refused with RESOURCE_EXHAUSTED. Default: 256.",
        int,
    ),
    Setting(
        "handshake_timeout_seconds",
        "A new connection must finish its TLS handshake and HTTP/2 preface within this, or it is "
        "closed. Default: 10.",
        float,
    ),
    Setting(
        "connection_idle_seconds",
        "A connection with no call for this long is closed (clients reconnect when needed). Default: 300.",
        float,
    ),
    Setting(
        "max_connection_age_seconds",
        "A connection this old takes no new calls (GOAWAY: clients reconnect, across replicas too); "
        "its open calls finish. 0: no limit. Default: 3600.",
        float,
    ),
    Setting(
        "upload_idle_timeout_seconds",
        "An artifact upload that sends no message for this long is ended with DEADLINE_EXCEEDED. "
        "Default: 60.",
        float,
    ),
    Setting(
        "shutdown_grace_seconds",
        "On SIGTERM/SIGINT, how long in-flight calls may finish before they are cancelled. Default: 10.",
        float,
    ),
    Setting(
        "s3_endpoint_url",
        "S3 endpoint for s3:// artifact roots, e.g. http://127.0.0.1:9000 for MinIO. Default: AWS.",
    ),
    Setting("s3_access_key_id", "S3 access key. Default: $AWS_ACCESS_KEY_ID."),
    Setting("s3_secret_access_key", "S3 secret key. Default: $AWS_SECRET_ACCESS_KEY."),
    Setting("s3_region", "S3 region. Default: $AWS_REGION, else none."),
    Setting(
        "s3_public_endpoint_url",
        "S3 endpoint as clients reach it, for presigned URLs (direct transfers), when it differs "
        "from --s3-endpoint-url. Default: the same.",
    ),
    Setting(
        "max_artifact_bytes",
        "Largest artifact file accepted, in bytes (uploads over it are refused). Default: 0 (no limit).",
        int,
    ),
    Setting(
        "artifact_multipart_max_age_seconds",
        "Incomplete multipart uploads (and local temporary files) under the artifact roots older than "
        "this are aborted at start and hourly: what a killed server left. Must exceed the longest "
        "upload. Default: 86400 (24 h).",
        float,
    ),
    Setting("log_level", "DEBUG, INFO, WARNING or ERROR. Default: INFO."),
    Setting("log_format", "text (human) or json (one object per line). Default: text."),
    Setting("auto_migrate", "Upgrade the database schema at start. Default: true.", _bool),
    Setting(
        "auth",
        "Require an API token (authorization: Bearer) on every call but health and reflection. "
        "Default: false.",
        _bool,
    ),
    Setting(
        "auth_bootstrap_token",
        "With --auth, the token of the `admin` user created on first start (for automation; prefer "
        "the variable, flags show in `ps`). Default: generated into DATA_DIR/admin-token.",
    ),
    Setting(
        "max_token_days",
        "With --auth, the longest lifetime of a token made by CreateToken, in days; one asked "
        "without expiry gets this. 0: no limit. Default: 0.",
        int,
    ),
    Setting(
        "auth_default_permission",
        "With --auth, what users may do with experiments and registered models they have no "
        "explicit permission on: NONE, READ, EDIT or MANAGE. Default: NONE.",
        _permission_name,
    ),
    Setting(
        "allow_public_without_auth",
        "Serve a non-loopback --bind without --auth (behind your own gate). Default: false.",
        _bool,
    ),
    Setting("tls_cert_file", "PEM certificate chain: serve TLS (grpcs://). Default: plaintext."),
    Setting("tls_key_file", "PEM private key of --tls-cert-file."),
    Setting(
        "tls_client_ca_file",
        "PEM CA bundle: require client certificates it signed (mutual TLS). Default: none asked.",
    ),
)

_AWS_FALLBACKS = {
    "s3_access_key_id": "AWS_ACCESS_KEY_ID",
    "s3_secret_access_key": "AWS_SECRET_ACCESS_KEY",
    "s3_region": "AWS_REGION",
}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Adds one flag per setting, documented with its variable."""
    for setting in SETTINGS:
        parser.add_argument(
            setting.flag,
            dest=setting.name,
            default=None,
            metavar=setting.name.split("_")[-1].upper(),
            help=f"{setting.help} [env {setting.env}]",
        )


def load(
    flags: argparse.Namespace | Mapping[str, Any] | None = None,
    environ: Mapping[str, str] | None = None,
) -> Settings:
    """Builds Settings from flags, then ``TRACKLANE_*`` variables, then defaults.

    Raises:
        InvalidArgument: a value does not parse; ``field`` is the variable or flag name.
    """
    environ = os.environ if environ is None else environ
    given = vars(flags) if isinstance(flags, argparse.Namespace) else dict(flags or {})
    values: dict[str, Any] = {}
    for setting in SETTINGS:
        raw = given.get(setting.name)
        source = setting.flag
        if raw is None:
            raw = environ.get(setting.env) or environ.get(_AWS_FALLBACKS.get(setting.name, ""))
            source = setting.env
        if raw is None or raw == "":
            continue
        try:
            values[setting.name] = setting.parse(raw) if isinstance(raw, str) else raw
        except ValueError as exc:
            raise InvalidArgument(f"{source}: {exc}", field=source) from None
    values.setdefault("data_dir", default_data_dir(environ))
    settings = Settings(**values)
    _validate(settings)
    return settings


def _validate(settings: Settings) -> None:
    try:
        host, port = settings.host_port
    except ValueError:
        raise InvalidArgument(f"--bind: expected HOST:PORT, got {settings.bind!r}", field="bind") from None
    if not host or not 0 <= port <= 65535:
        raise InvalidArgument(f"--bind: expected HOST:PORT, got {settings.bind!r}", field="bind")
    _check_http_bind(settings)
    scheme = urlsplit(settings.resolved_backend_store_uri).scheme
    if scheme.split("+")[0] not in {"sqlite", "postgresql"}:
        raise InvalidArgument(
            f"--backend-store-uri: unsupported scheme {scheme!r}; use sqlite:/// or postgresql+psycopg://",
            field="backend_store_uri",
        )
    if urlsplit(settings.resolved_artifact_root).scheme not in {"file", "s3"}:
        raise InvalidArgument(
            f"--artifact-root: unsupported URI {settings.resolved_artifact_root!r}; use file:/// or s3://",
            field="artifact_root",
        )
    # Imported here: the artifact stores need the `server` extra, and `tracklane --help` must not.
    from tracklane_server.artifacts.allowed_roots import AllowedRoots

    AllowedRoots(settings.resolved_artifact_root, settings.allowed_artifact_roots)  # each must parse
    public = urlsplit(settings.s3_public_endpoint_url)
    if settings.s3_public_endpoint_url and (public.scheme not in {"http", "https"} or not public.hostname):
        raise InvalidArgument(
            "--s3-public-endpoint-url: expected http://HOST:PORT or https://HOST",
            field="s3_public_endpoint_url",
        )
    _check_tls(settings)
    _check_exposure(settings, host)
    _positive(settings.workers, "workers")
    _positive(settings.threads, "threads")
    _positive(settings.max_message_bytes, "max_message_bytes")
    if settings.max_decoding_bytes < settings.max_message_bytes:
        raise InvalidArgument(
            f"--max-decoding-bytes: must be at least --max-message-bytes ({settings.max_message_bytes}), "
            f"got {settings.max_decoding_bytes}",
            field="max_decoding_bytes",
        )
    _positive(settings.artifact_multipart_max_age_seconds, "artifact_multipart_max_age_seconds")
    if settings.max_artifact_bytes < 0:
        raise InvalidArgument(
            f"--max-artifact-bytes: must be 0 (no limit) or positive, got {settings.max_artifact_bytes}",
            field="max_artifact_bytes",
        )
    _positive(settings.max_streams_per_client, "max_streams_per_client")
    _positive(settings.max_streams_per_user, "max_streams_per_user")
    _positive(settings.handshake_timeout_seconds, "handshake_timeout_seconds")
    _positive(settings.connection_idle_seconds, "connection_idle_seconds")
    _positive(settings.upload_idle_timeout_seconds, "upload_idle_timeout_seconds")
    for name in ("max_connection_age_seconds", "max_token_days"):
        if getattr(settings, name) < 0:
            raise InvalidArgument(f"--{name.replace('_', '-')}: must be 0 (no limit) or positive", field=name)
    if settings.log_format not in {"text", "json"}:
        raise InvalidArgument("--log-format: expected text or json", field="log_format")
    if settings.log_level.upper() not in {"DEBUG", "INFO", "WARNING", "ERROR"}:
        raise InvalidArgument("--log-level: expected DEBUG, INFO, WARNING or ERROR", field="log_level")


def _check_tls(settings: Settings) -> None:
    if bool(settings.tls_cert_file) != bool(settings.tls_key_file):
        missing = "tls_key_file" if settings.tls_cert_file else "tls_cert_file"
        raise InvalidArgument("--tls-cert-file and --tls-key-file go together; give both", field=missing)
    if settings.tls_client_ca_file and not settings.tls_cert_file:
        raise InvalidArgument(
            "--tls-client-ca-file needs --tls-cert-file and --tls-key-file (mutual TLS is TLS first)",
            field="tls_client_ca_file",
        )
    for name in ("tls_cert_file", "tls_key_file", "tls_client_ca_file"):
        path = getattr(settings, name)
        if path and not Path(path).is_file():
            raise InvalidArgument(f"--{name.replace('_', '-')}: no such file: {path}", field=name)


def _check_http_bind(settings: Settings) -> None:
    try:
        http = settings.http_host_port
    except ValueError:
        http = ("", -1)
    if http is None:
        return
    if not http[0] or not 0 <= http[1] <= 65535:
        raise InvalidArgument(
            f"--http-bind: expected HOST:PORT or none, got {settings.http_bind!r}", field="http_bind"
        )
    _check_exposure(settings, http[0], flag="--http-bind", value=settings.http_bind)


def _check_exposure(settings: Settings, host: str, *, flag: str = "--bind", value: str = "") -> None:
    """Without auth, only this machine may connect unless the operator says otherwise."""
    if settings.auth or settings.allow_public_without_auth or is_loopback(host):
        return
    raise InvalidArgument(
        f"{flag} {value or settings.bind} is reachable from other machines and auth is off: "
        "add --auth true (TRACKLANE_AUTH), or --allow-public-without-auth true "
        "(TRACKLANE_ALLOW_PUBLIC_WITHOUT_AUTH) if something in front of the server checks callers",
        field=flag.removeprefix("--").replace("-", "_"),
    )


def is_loopback(host: str) -> bool:
    """``localhost``, 127.0.0.0/8 or ::1; every other name or address may be reached from outside."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _positive(value: float, name: str) -> None:
    if value <= 0:
        raise InvalidArgument(f"--{name.replace('_', '-')}: must be positive, got {value}", field=name)


def env_names(settings: Sequence[Setting] = SETTINGS) -> set[str]:
    """Every environment variable the server reads."""
    return {s.env for s in settings} | set(_AWS_FALLBACKS.values())
