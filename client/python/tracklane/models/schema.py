"""Schemas of model inputs and outputs: named, typed columns or typed, shaped tensors.

Serialized as MLflow does, so an MLmodel reads the same in both tools: a schema is a JSON list of
``{"type": "double", "name": "x", "required": true}`` (columns) or
``{"type": "tensor", "tensor-spec": {"dtype": "float64", "shape": [-1, 4]}, "name": "x"}`` (tensors),
where ``-1`` is a dimension of any size (usually the rows).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from enum import Enum
from typing import Any

import numpy as np

__all__ = ["ColSpec", "DataType", "Schema", "TensorSpec"]


class DataType(Enum):
    """Column types; values are MLflow's names."""

    boolean = "boolean"
    integer = "integer"  # 32-bit
    long = "long"  # 64-bit
    float = "float"  # 32-bit
    double = "double"  # 64-bit
    string = "string"
    binary = "binary"
    datetime = "datetime"

    def to_numpy(self) -> np.dtype[Any]:
        """The numpy dtype values of this type take."""
        return _NUMPY[self]

    @classmethod
    def from_numpy(cls, dtype: Any) -> DataType:
        """The column type of a numpy (or pandas) dtype.

        Raises:
            TypeError: no column type holds it (complex numbers, timedeltas...).
        """
        kind = getattr(dtype, "kind", "O")
        itemsize = getattr(dtype, "itemsize", 8)
        if kind == "b":
            return cls.boolean
        if kind == "i":
            return cls.integer if itemsize <= 4 else cls.long
        if kind == "u":
            # uint32 does not fit a signed 32-bit integer.
            return cls.integer if itemsize <= 2 else cls.long
        if kind == "f":
            return cls.float if itemsize <= 4 else cls.double
        if kind == "M":
            return cls.datetime
        if kind == "S":
            return cls.binary
        if kind in "OU" or str(dtype) in ("string", "str"):
            return cls.string
        raise TypeError(f"no column type for dtype {dtype}")


_NUMPY: dict[DataType, np.dtype[Any]] = {
    DataType.boolean: np.dtype(np.bool_),
    DataType.integer: np.dtype(np.int32),
    DataType.long: np.dtype(np.int64),
    DataType.float: np.dtype(np.float32),
    DataType.double: np.dtype(np.float64),
    DataType.string: np.dtype(np.object_),
    DataType.binary: np.dtype(np.object_),
    DataType.datetime: np.dtype("datetime64[ns]"),
}


@dataclass(frozen=True)
class ColSpec:
    """A column: its type, its name (None for a positional column) and whether it may be missing."""

    type: DataType
    name: str | None = None
    required: bool = True

    def to_dict(self) -> dict[str, Any]:
        """MLflow's JSON form."""
        out: dict[str, Any] = {"type": self.type.value}
        if self.name is not None:
            out["name"] = self.name
        out["required"] = self.required
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ColSpec:
        """Reads the JSON form.

        Raises:
            ValueError: an unknown type.
        """
        try:
            kind = DataType(data["type"])
        except ValueError:
            names = ", ".join(t.value for t in DataType)
            raise ValueError(f"unknown column type {data['type']!r}; expected one of {names}") from None
        return cls(kind, data.get("name"), bool(data.get("required", True)))


@dataclass(frozen=True)
class TensorSpec:
    """A tensor: numpy dtype and shape (-1 for a dimension of any size), and an optional name."""

    dtype: np.dtype[Any]
    shape: tuple[int, ...]
    name: str | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "dtype", np.dtype(self.dtype))
        object.__setattr__(self, "shape", tuple(int(d) for d in self.shape))
        if self.dtype.kind == "O":
            raise TypeError("a tensor's dtype must be concrete, not object; use a column for strings")

    def to_dict(self) -> dict[str, Any]:
        """MLflow's JSON form."""
        out: dict[str, Any] = {
            "type": "tensor",
            "tensor-spec": {"dtype": str(self.dtype), "shape": list(self.shape)},
        }
        if self.name is not None:
            out["name"] = self.name
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TensorSpec:
        """Reads the JSON form."""
        spec = data["tensor-spec"]
        return cls(np.dtype(spec["dtype"]), tuple(spec["shape"]), data.get("name"))


Spec = ColSpec | TensorSpec


class Schema:
    """An ordered list of all-column or all-tensor specs.

    Raises:
        ValueError: columns and tensors mixed, or some specs named and others not.
    """

    def __init__(self, inputs: Iterable[Spec]) -> None:
        self.inputs: list[Spec] = list(inputs)
        if not self.inputs:
            raise ValueError("a schema needs at least one column or tensor")
        kinds = {type(spec) for spec in self.inputs}
        if len(kinds) > 1:
            raise ValueError("a schema is either all columns or all tensors, not both")
        named = {spec.name is not None for spec in self.inputs}
        if len(named) > 1:
            raise ValueError("either every column or tensor of a schema has a name, or none has")
        names = [spec.name for spec in self.inputs if spec.name is not None]
        if len(set(names)) != len(names):
            raise ValueError(f"duplicate names in schema: {sorted(names)}")

    @property
    def is_tensor_spec(self) -> bool:
        """True for tensors, False for columns."""
        return isinstance(self.inputs[0], TensorSpec)

    @property
    def has_input_names(self) -> bool:
        """True when the specs are named."""
        return self.inputs[0].name is not None

    def input_names(self) -> list[str]:
        """Names in order (positions as text when unnamed)."""
        return [spec.name if spec.name is not None else str(i) for i, spec in enumerate(self.inputs)]

    def required_input_names(self) -> list[str]:
        """Names that must be present."""
        return [
            name
            for name, spec in zip(self.input_names(), self.inputs, strict=True)
            if not isinstance(spec, ColSpec) or spec.required
        ]

    def to_dict(self) -> list[dict[str, Any]]:
        """The JSON form: a list of specs."""
        return [spec.to_dict() for spec in self.inputs]

    def to_json(self) -> str:
        """The JSON text stored in an MLmodel."""
        return json.dumps(self.to_dict())

    @classmethod
    def from_json(cls, text: str | Sequence[dict[str, Any]]) -> Schema:
        """Reads the JSON text (or already parsed list)."""
        items = json.loads(text) if isinstance(text, str) else text
        return cls(
            TensorSpec.from_dict(item) if item.get("type") == "tensor" else ColSpec.from_dict(item)
            for item in items
        )

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Schema) and self.inputs == other.inputs

    def __hash__(self) -> int:
        return hash(tuple(self.inputs))

    def __repr__(self) -> str:
        return f"Schema({self.inputs!r})"
