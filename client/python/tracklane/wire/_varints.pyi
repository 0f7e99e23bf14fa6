from typing import Any

import numpy.typing as npt

_Buffer = bytes | bytearray | memoryview | npt.NDArray[Any]

def encode_varints(values: _Buffer, /) -> bytes: ...
def decode_varints(data: _Buffer, /) -> bytes: ...
