"""The metric spool: framed, checksummed records; torn tails; the size cap; deletion once acked."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tracklane._metrics.batch_stream import Pending
from tracklane._metrics.spool import (
    SUFFIX,
    Spool,
    index_segment,
    lock_writer,
    read_segment,
    spool_dir,
    writer_uri,
)


def batch(seq: int, run: str = "run-1", size: int = 100) -> Pending:
    return Pending(run, "writer-0001", seq, points=size, payload=bytes([seq % 256]) * size, serial=seq)


def segments(directory: Path) -> list[Path]:
    return sorted(directory.glob(f"*{SUFFIX}"))


def test_records_read_back_in_order(tmp_path: Path) -> None:
    spool = Spool(tmp_path, "writer-0001", max_bytes=1 << 20)
    assert not tmp_path.joinpath("writer-0001.lock").exists()  # nothing on disk before the first spill
    assert spool.append([batch(1), batch(2, "run-2"), batch(3)], unsent=True) == []
    assert spool.has_unsent()
    assert spool.unsent_points == 300
    records = list(read_segment(segments(tmp_path)[0]))
    assert [(r.run_id, r.sequence) for r in records] == [("run-1", 1), ("run-2", 2), ("run-1", 3)]
    assert records[1].payload == bytes([2]) * 100
    first = spool.next_unsent()
    assert (first.run_id, first.sequence, first.serial, first.payload) == ("run-1", 1, 1, bytes([1]) * 100)
    spool.close()
    assert len(segments(tmp_path)) == 1  # unacknowledged records stay for `tracklane sync`


def test_torn_and_damaged_tails_stop_reading(tmp_path: Path) -> None:
    spool = Spool(tmp_path, "writer-0001", max_bytes=1 << 20)
    spool.append([batch(1), batch(2)], unsent=True)
    spool.close()
    path = segments(tmp_path)[0]
    size = path.stat().st_size
    with path.open("ab") as f:
        f.write(b"\x05\x00")  # a crash in the middle of a frame header
    assert [r.sequence for r in read_segment(path)] == [1, 2]
    data = bytearray(path.read_bytes()[:size])
    data[-1] ^= 0xFF  # flip a payload byte of the last record: CRC mismatch
    path.write_bytes(bytes(data))
    assert [r.sequence for r in read_segment(path)] == [1]


def test_the_cap_refuses_batches_and_keeps_the_rest(tmp_path: Path) -> None:
    spool = Spool(tmp_path, "writer-0001", max_bytes=8 + 3 * 150)
    refused = spool.append([batch(i) for i in range(1, 6)], unsent=True)
    assert [p.sequence for p in refused] == [4, 5]
    assert spool.bytes_on_disk <= 8 + 3 * 150
    assert [r.sequence for r in index_segment(segments(tmp_path)[0])] == [1, 2, 3]


def test_segments_are_deleted_once_all_acked(tmp_path: Path) -> None:
    spool = Spool(tmp_path, "writer-0001", max_bytes=1 << 20, segment_bytes=400)
    spool.append([batch(i) for i in range(1, 7)], unsent=True)  # 3 records per segment
    assert len(segments(tmp_path)) == 2
    sent = [spool.next_unsent() for _ in range(6)]
    for pending in sent[:3]:
        spool.release(pending)
    assert len(segments(tmp_path)) == 1  # the first, full segment is gone
    for pending in sent[3:]:
        spool.release(pending)
    spool.close()
    assert segments(tmp_path) == []
    assert not tmp_path.joinpath("writer-0001.lock").exists()


def test_window_copies_are_kept_but_not_read_back(tmp_path: Path) -> None:
    spool = Spool(tmp_path, "writer-0001", max_bytes=1 << 20)
    copies = [batch(1), batch(2)]
    spool.append(copies, unsent=False)
    assert not spool.has_unsent()
    assert [r.sequence for r in read_segment(segments(tmp_path)[0])] == [1, 2]
    for pending in copies:
        spool.release(pending)
    spool.close()
    assert segments(tmp_path) == []


def test_a_live_writer_holds_its_lock(tmp_path: Path) -> None:
    spool = Spool(tmp_path, "writer-0001", max_bytes=1 << 20)
    spool.append([batch(1)], unsent=True)
    assert lock_writer(tmp_path, "writer-0001") is None  # the spool's own process holds it
    spool.close()
    fd = lock_writer(tmp_path, "writer-0001")
    assert fd is not None
    os.close(fd)


def test_spool_dir_from_the_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("TRACKLANE_SPOOL_DIR", str(tmp_path))
    assert spool_dir() == tmp_path
    assert spool_dir(tmp_path / "x") == tmp_path / "x"
    monkeypatch.delenv("TRACKLANE_SPOOL_DIR")
    assert spool_dir() == Path.home() / ".cache/tracklane/spool"


# The child only closes descriptors and exits: safe even if other tests left threads running.
@pytest.mark.filterwarnings("ignore:This process .* is multi-threaded:DeprecationWarning")
def test_the_lock_file_names_the_tracking_uri_and_stays_held_after_a_fork(tmp_path: Path) -> None:
    spool = Spool(tmp_path, "writer-0001", max_bytes=1 << 20, tracking_uri="grpc://127.0.0.1:5")
    assert writer_uri(tmp_path, "writer-0001") is None  # no spill yet: no lock file
    spool.append([batch(1)], unsent=True)
    assert writer_uri(tmp_path, "writer-0001") == "grpc://127.0.0.1:5"
    assert lock_writer(tmp_path, "writer-0001") is None  # held by its writer
    pid = os.fork()
    if pid == 0:  # a child closes its copies of the descriptors: the parent's lock must survive
        spool.forget_after_fork()
        os._exit(0 if lock_writer(tmp_path, "writer-0001") is None else 1)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert lock_writer(tmp_path, "writer-0001") is None
    spool.close()
    fd = lock_writer(tmp_path, "writer-0001")  # its process is done with it: a replay may take it
    assert fd is not None
    os.close(fd)
