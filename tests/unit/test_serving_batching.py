"""The serving batcher: queued table requests scored together, answers unchanged, errors kept apart."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import numpy as np
import pandas as pd
import pytest

from tracklane.serving.batching import Batcher


def _run(coro: Any) -> Any:
    return asyncio.run(coro)


async def _score_all(batcher: Batcher, frames: list[Any], params: list[Any] | None = None) -> list[Any]:
    batcher.start()
    try:
        calls = [batcher.predict(f, (params or [None] * len(frames))[i]) for i, f in enumerate(frames)]
        return list(await asyncio.gather(*calls, return_exceptions=True))
    finally:
        await batcher.close()


def test_queued_requests_share_one_call_and_get_their_own_rows() -> None:
    calls: list[int] = []
    busy, release = threading.Event(), threading.Event()

    def predict(data: Any, params: Any) -> Any:
        busy.set()
        release.wait(5)  # the first call holds the model while the others queue
        calls.append(len(data))
        return data["x"].to_numpy() * 10

    batcher = Batcher(predict, max_batch_size=8)
    sizes: list[int] = []
    batcher.on_batch = sizes.append
    frames = [pd.DataFrame({"x": [i, i + 100]}) for i in range(6)]

    async def go() -> list[Any]:
        batcher.start()
        first = asyncio.ensure_future(batcher.predict(frames[0]))
        await asyncio.to_thread(busy.wait, 5)  # the model thread is inside predict
        rest = [asyncio.ensure_future(batcher.predict(f)) for f in frames[1:]]
        await asyncio.sleep(0.05)
        release.set()
        results = [await first, *[await r for r in rest]]
        await batcher.close()
        return results

    results = _run(go())
    assert [r.tolist() for r in results] == [[10 * i, 10 * (i + 100)] for i in range(6)]
    assert calls == [2, 10]  # the first alone, the five queued behind it in one call
    assert sizes == [1, 5]


def test_no_batching_with_size_one_and_params_never_merged() -> None:
    seen: list[tuple[int, Any]] = []

    def predict(data: Any, params: Any) -> Any:
        seen.append((len(data), params))
        return np.zeros(len(data))

    _run(_score_all(Batcher(predict, max_batch_size=1), [pd.DataFrame({"x": [1]})] * 3))
    assert seen == [(1, None)] * 3
    seen.clear()
    _run(_score_all(Batcher(predict, max_batch_size=4), [pd.DataFrame({"x": [1]})] * 2, [{"k": 1}, {"k": 2}]))
    assert sorted(p["k"] for _, p in seen) == [1, 2]


def test_a_bad_request_fails_alone_and_the_batch_is_recomputed() -> None:
    release = threading.Event()

    def predict(data: Any, params: Any) -> Any:
        release.wait(5)
        if (data["x"] < 0).any():
            raise ValueError("negative x")
        return data["x"].to_numpy() + 1

    frames = [
        pd.DataFrame({"x": [1]}),
        pd.DataFrame({"x": [2]}),
        pd.DataFrame({"x": [-3]}),
        pd.DataFrame({"x": [4]}),
    ]

    async def go() -> list[Any]:
        task = asyncio.ensure_future(_score_all(Batcher(predict, max_batch_size=8), frames))
        await asyncio.sleep(0.1)
        release.set()
        return await task

    results = _run(go())
    assert results[0].tolist() == [2]
    assert results[1].tolist() == [3]
    assert isinstance(results[2], ValueError)
    assert results[3].tolist() == [5]


def test_a_result_that_is_not_one_row_per_row_is_recomputed_per_request() -> None:
    release = threading.Event()

    def predict(data: Any, params: Any) -> Any:
        release.wait(5)
        return float(data["x"].sum())  # one number for the whole input: batching must not merge

    async def go() -> list[Any]:
        frames = [pd.DataFrame({"x": [i, i]}) for i in range(1, 5)]
        task = asyncio.ensure_future(_score_all(Batcher(predict, max_batch_size=8), frames))
        await asyncio.sleep(0.1)
        release.set()
        return await task

    assert _run(go()) == [2.0, 4.0, 6.0, 8.0]


def test_settings_are_checked() -> None:
    with pytest.raises(ValueError, match="max_batch_size"):
        Batcher(lambda d, p: d, max_batch_size=0)
    with pytest.raises(ValueError, match="max_batch_delay"):
        Batcher(lambda d, p: d, max_batch_delay=-1)
