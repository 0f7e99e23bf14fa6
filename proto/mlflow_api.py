"""MLflow's REST API, from the descriptors MLflow publishes: imported once from a wheel, then generated.

MLflow's wheel and sdist ship its protos compiled (each ``mlflow/protos/*_pb2.py`` holds the
serialized FileDescriptorProto of its .proto file), not as .proto text. ``import_wheel`` copies
those descriptors, byte for byte, into ``proto/third_party/mlflow/descriptors.binpb`` (a
FileDescriptorSet) without running any of MLflow's code: the bytes are read from the modules'
syntax tree. ``generate`` then writes the server's package from that file:

- the route table: every HTTP endpoint MLflow's ``databricks.rpc`` options name, with its
  service, method, request and response message;
- what MLflow's server checks of each request ("Missing value for required parameter 'key'"),
  read from the request schemas of its handlers.py (kept as request_checks.json);
- the request and response messages, pruned to what the routes reach and stripped of MLflow's
  custom options, as a FileDescriptorSet the server loads into a pool of its own (so it can never
  clash with an ``mlflow`` package imported in the same process, and needs none at run time).
"""

from __future__ import annotations

import ast
import hashlib
import zipfile
from collections.abc import Iterable, Iterator
from pathlib import Path

from google.protobuf import descriptor_pb2, descriptor_pool
from google.protobuf.message_factory import GetMessageClass

THIRD_PARTY = Path(__file__).resolve().parent / "third_party" / "mlflow"
DESCRIPTORS = THIRD_PARTY / "descriptors.binpb"
CHECKS = THIRD_PARTY / "request_checks.json"
#: The services the REST API serves (tracking, registry, proxied artifacts), in MLflow's order.
SERVICES = ("mlflow.MlflowService", "mlflow.ModelRegistryService", "mlflow.artifacts.MlflowArtifactsService")
_ROOTS = ("service.proto", "model_registry.proto", "mlflow_artifacts.proto")
_WKT = "google/protobuf/"


def _serialized_files(wheel: Path) -> Iterator[bytes]:
    with zipfile.ZipFile(wheel) as archive:
        for name in sorted(archive.namelist()):
            if not (name.startswith("mlflow/protos/") and name.endswith("_pb2.py")):
                continue
            tree = ast.parse(archive.read(name))
            for node in ast.walk(tree):
                if isinstance(node, ast.Call) and getattr(node.func, "attr", "") == "AddSerializedFile":
                    yield ast.literal_eval(node.args[0])
                    break


def import_wheel(wheel: Path) -> descriptor_pb2.FileDescriptorSet:
    """The descriptors of the three service files and every MLflow file they import, from ``wheel``.

    Files MLflow imports from other packages (OpenTelemetry's trace.proto) are not in its wheel and
    are left out; :func:`generate` prunes what needs them.
    """
    files: dict[str, descriptor_pb2.FileDescriptorProto] = {}
    for raw in _serialized_files(wheel):
        proto = descriptor_pb2.FileDescriptorProto.FromString(raw)
        files[proto.name] = proto
    wanted: list[str] = []
    pending = list(_ROOTS)
    while pending:
        name = pending.pop()
        if name in wanted or name not in files:
            continue
        wanted.append(name)
        pending.extend(files[name].dependency)
    out = descriptor_pb2.FileDescriptorSet()
    out.file.extend(files[name] for name in sorted(wanted))
    return out


_VALIDATORS = {
    "_assert_required": "required",
    "_assert_string": "string",
    "_assert_intlike": "intlike",
    "_assert_floatlike": "floatlike",
    "_assert_bool": "bool",
    "_assert_array": "array",
    "_assert_dict": "dict",
    "_assert_item_type_string": "items_string",
    "_assert_map_key_present": "items_key_present",
}


def _nested_required(function: ast.FunctionDef) -> list[str]:
    """Keys a handler's own ``_assert_<x>_fields_present`` requires of each item
    (``_assert_required(m.get("key"), path=...)``)."""
    keys = []
    for node in ast.walk(function):
        if isinstance(node, ast.Call) and getattr(node.func, "id", "") == "_assert_required" and node.args:
            arg = node.args[0]
            if isinstance(arg, ast.Call) and getattr(arg.func, "attr", "") == "get" and arg.args:
                keys.append(ast.literal_eval(arg.args[0]))
    return keys


def request_checks(wheel: Path, fds: descriptor_pb2.FileDescriptorSet) -> dict[str, dict[str, list[str]]]:
    """What MLflow's server checks of each request, read from its handlers.py (not run).

    Its handlers call ``_get_request_message(LogBatch(), schema={"run_id": [_assert_string,
    _assert_required], ...})``: the schema, not the protos' ``validate_required``, decides what
    MLflow refuses (it accepts an empty tag value the proto marks required, and requires a
    ``run_id`` the proto does not). Returns {request message: {field: [check, ...]}}, the checks
    named by :data:`_VALIDATORS` or ``items_required:<key>,...``; others (limits in lambdas) are
    left to the servicers.
    """
    packages = {f.name.removesuffix(".proto").replace("/", ".") + "_pb2": f.package for f in fds.file}
    with zipfile.ZipFile(wheel) as archive:
        tree = ast.parse(archive.read("mlflow/server/handlers.py"))
    classes: dict[str, str] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("mlflow.protos."):
            package = packages.get(node.module.removeprefix("mlflow.protos."))  # type: ignore[union-attr]
            if package:
                for alias in node.names:
                    classes[alias.asname or alias.name] = f"{package}.{alias.name}"
    checks: dict[str, dict[str, list[str]]] = {}
    for function in (n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef)):
        nested = {f.name: _nested_required(f) for f in function.body if isinstance(f, ast.FunctionDef)}
        for node in ast.walk(function):
            if not (isinstance(node, ast.Call) and getattr(node.func, "id", "") == "_get_request_message"):
                continue
            message = node.args[0] if node.args else None
            schema = next((k.value for k in node.keywords if k.arg == "schema"), None)
            if not (isinstance(message, ast.Call) and isinstance(message.func, ast.Name)):
                continue
            name = classes.get(message.func.id)
            if name is None or not isinstance(schema, ast.Dict):
                continue
            fields: dict[str, list[str]] = {}
            for key, value in zip(schema.keys, schema.values, strict=True):
                if not (isinstance(key, ast.Constant) and isinstance(value, ast.List)):
                    continue
                found = []
                for item in value.elts:
                    ident = getattr(item, "id", "")
                    if ident in _VALIDATORS:
                        found.append(_VALIDATORS[ident])
                    elif nested.get(ident):
                        found.append("items_required:" + ",".join(nested[ident]))
                fields[key.value] = found
            checks.setdefault(name, fields)
    return dict(sorted(checks.items()))


def wheel_sha256(wheel: Path) -> str:
    return hashlib.sha256(wheel.read_bytes()).hexdigest()


def _load(fds: descriptor_pb2.FileDescriptorSet) -> descriptor_pool.DescriptorPool:
    """A pool holding the well-known types, descriptor.proto itself and whatever of ``fds`` resolves,
    so MLflow's custom options read as extensions of this pool's own *Options classes."""
    from google.protobuf import duration_pb2, field_mask_pb2, struct_pb2, timestamp_pb2

    pool = descriptor_pool.DescriptorPool()
    added: set[str] = set()
    for module in (descriptor_pb2, duration_pb2, field_mask_pb2, struct_pb2, timestamp_pb2):
        proto = descriptor_pb2.FileDescriptorProto.FromString(module.DESCRIPTOR.serialized_pb)
        pool.Add(proto)
        added.add(proto.name)
    pending = list(fds.file)
    while progress := [f for f in pending if all(d in added for d in f.dependency)]:
        for f in progress:
            pool.Add(f)
            added.add(f.name)
            pending.remove(f)
    return pool


def _options(pool: descriptor_pool.DescriptorPool, kind: str, raw: bytes) -> object:
    return GetMessageClass(pool.FindMessageTypeByName(f"google.protobuf.{kind}")).FromString(raw)


class _Index:
    """Top-level messages and enums of the committed files, by full name, with their file."""

    def __init__(self, fds: descriptor_pb2.FileDescriptorSet) -> None:
        self.files = {f.name: f for f in fds.file}
        self.messages: dict[str, tuple[str, descriptor_pb2.DescriptorProto]] = {}
        self.enums: dict[str, tuple[str, descriptor_pb2.EnumDescriptorProto]] = {}
        for f in fds.file:
            prefix = f".{f.package}." if f.package else "."
            for m in f.message_type:
                self.messages[prefix + m.name] = (f.name, m)
            for e in f.enum_type:
                self.enums[prefix + e.name] = (f.name, e)

    def top_level(self, type_name: str) -> str | None:
        """The top-level message or enum that holds ``type_name`` (itself when top-level)."""
        name = type_name
        while name and name not in self.messages and name not in self.enums:
            name = name.rpartition(".")[0]
        return name or None

    def closure(self, roots: Iterable[str]) -> set[str] | None:
        """Every top-level type ``roots`` reach; None when one lives outside the committed files."""
        seen: set[str] = set()
        pending = list(roots)
        while pending:
            type_name = pending.pop()
            if type_name.startswith(f".{_WKT.replace('/', '.')}"):
                continue
            top = self.top_level(type_name)
            if top is None:
                return None
            if top in seen:
                continue
            seen.add(top)
            if top in self.messages:
                pending.extend(_field_types(self.messages[top][1]))
        return seen


def _field_types(message: descriptor_pb2.DescriptorProto) -> Iterator[str]:
    for field in message.field:
        if field.type_name:
            yield field.type_name
    for nested in message.nested_type:
        yield from _field_types(nested)


def _strip_options(message: descriptor_pb2.DescriptorProto) -> None:
    for field in message.field:
        field.options.DiscardUnknownFields()
        if not field.options.ListFields():
            field.ClearField("options")
    message.options.DiscardUnknownFields()
    for nested in message.nested_type:
        _strip_options(nested)


def generate(
    fds: descriptor_pb2.FileDescriptorSet, version: str, checks: dict[str, dict[str, list[str]]]
) -> str:
    """The Python module of the REST API's endpoints, required fields and pruned descriptors."""
    pool = _load(fds)
    rpc = pool.FindExtensionByName("mlflow.rpc")
    index = _Index(fds)
    endpoints: list[tuple[str, str, str, str, str, str]] = []
    keep: set[str] = set()
    services: dict[str, list[descriptor_pb2.MethodDescriptorProto]] = {}
    for file in fds.file:
        for service in file.service:
            full = f"{file.package}.{service.name}"
            if full not in SERVICES:
                continue
            for method in service.method:
                types = index.closure([method.input_type, method.output_type])
                if types is None:  # needs a file MLflow takes from another package
                    continue
                options = _options(pool, "MethodOptions", method.options.SerializeToString())
                for ep in options.Extensions[rpc].endpoints:  # type: ignore[attr-defined]
                    endpoints.append(
                        (
                            ep.method,
                            f"/api/{ep.since.major}.0{ep.path}",
                            full,
                            method.name,
                            method.input_type.lstrip("."),
                            method.output_type.lstrip("."),
                        )
                    )
                keep |= types
                services.setdefault(full, []).append(method)
    pruned: dict[str, descriptor_pb2.FileDescriptorProto] = {}
    for name in sorted(keep):
        file_name, proto = index.messages[name] if name in index.messages else index.enums[name]
        source = index.files[file_name]
        if file_name not in pruned:
            pruned[file_name] = descriptor_pb2.FileDescriptorProto(name=file_name, package=source.package)
            if source.HasField("syntax"):
                pruned[file_name].syntax = source.syntax
        out = pruned[file_name]
        if name in index.messages:
            copy = descriptor_pb2.DescriptorProto()
            copy.CopyFrom(proto)  # type: ignore[arg-type]
            _strip_options(copy)
            out.message_type.append(copy)
        else:
            enum = descriptor_pb2.EnumDescriptorProto()
            enum.CopyFrom(proto)  # type: ignore[arg-type]
            enum.options.DiscardUnknownFields()
            for value in enum.value:
                value.options.DiscardUnknownFields()
                if not value.options.ListFields():
                    value.ClearField("options")
            if not enum.options.ListFields():
                enum.ClearField("options")
            out.enum_type.append(enum)
    result = descriptor_pb2.FileDescriptorSet()
    for file_name in sorted(pruned):
        out = pruned[file_name]
        refs = {t for m in out.message_type for t in _field_types(m)}
        deps = set()
        for ref in refs:
            top = index.top_level(ref)
            if top is not None:
                owner = (index.messages.get(top) or index.enums[top])[0]
                if owner != file_name:
                    deps.add(owner)
            else:
                deps.add(
                    {
                        ".google.protobuf.Timestamp": "google/protobuf/timestamp.proto",
                        ".google.protobuf.Duration": "google/protobuf/duration.proto",
                        ".google.protobuf.FieldMask": "google/protobuf/field_mask.proto",
                        ".google.protobuf.Struct": "google/protobuf/struct.proto",
                        ".google.protobuf.Value": "google/protobuf/struct.proto",
                    }[ref]
                )
        out.dependency.extend(sorted(deps))
        result.file.append(out)
    return _module(version, endpoints, checks, result.SerializeToString())


def _module(
    version: str,
    endpoints: list[tuple[str, str, str, str, str, str]],
    checks: dict[str, dict[str, list[str]]],
    descriptors: bytes,
) -> str:
    lines = [
        f'"""MLflow {version}\'s REST API: generated by proto/generate.py from proto/third_party/mlflow.',
        "",
        "Do not edit. ENDPOINTS come from the ``databricks.rpc`` options of MLflow's service.proto,",
        "model_registry.proto and mlflow_artifacts.proto, CHECKS from its server's request schemas;",
        "DESCRIPTORS is a FileDescriptorSet of the messages they use, without MLflow's custom options.",
        '"""',
        "",
        f"MLFLOW_VERSION = {version!r}",
        "",
        "#: (HTTP method, path under the site root, service, method, request type, response type)",
        "ENDPOINTS: tuple[tuple[str, str, str, str, str, str], ...] = (",
    ]
    lines += [f"    {ep!r}," for ep in endpoints]
    lines += [
        ")",
        "",
        "#: What MLflow's handlers check of each request (its handlers.py ``schema=``), by message:",
        "#: field -> checks (required, string, intlike, floatlike, bool, array, items_string...).",
        "CHECKS: dict[str, dict[str, tuple[str, ...]]] = {",
    ]
    for name, fields in checks.items():
        lines.append(f"    {name!r}: {{")
        lines += [f"        {field!r}: {tuple(found)!r}," for field, found in fields.items()]
        lines.append("    },")
    lines += ["}", "", "DESCRIPTORS = ("]
    for start in range(0, len(descriptors), 64):
        lines.append(f"    {descriptors[start : start + 64]!r}")
    lines += [")", ""]
    return "\n".join(lines)
