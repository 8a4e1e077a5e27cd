"""The createIpTunnel spool: requests come back in order, any number of times; what reaches the
disk is sealed (no key in clear); a changed file raises instead of returning other requests.

Run just this file: .venv/bin/python -m pytest tests/controller/test_spool.py -q
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from ctl_builders import ipsec_enc

from controller.spool import CHUNK_BYTES, RequestSpool, SpoolError


def _disk(spool: RequestSpool) -> bytes:
    """Everything the spool has written to its file (its descriptor: the file has no name)."""
    fd = spool._file.fileno()  # noqa: SLF001 - the bytes on disk are what this test is about
    return os.pread(fd, os.fstat(fd).st_size, 0)


def test_requests_come_back_in_order_from_every_pass(tmp_path: Path) -> None:
    requests = [os.urandom(size) for size in (0, 1, 100, CHUNK_BYTES, 3 * CHUNK_BYTES // 2)]
    requests += [bytes([index % 256]) * 90 for index in range(3000)]
    spool = RequestSpool(tmp_path)
    for request in requests:
        spool.append(request)
    assert list(spool) == requests
    assert list(spool) == requests  # a second pass reads the same
    assert (spool.count, spool.size) == (len(requests), sum(map(len, requests)))
    assert list(tmp_path.iterdir()) == []  # the file never has a name
    spool.close()


def test_keys_never_reach_the_disk_in_clear(tmp_path: Path) -> None:
    key = b"c0ffee" * 10 + b"abcd"  # 64 hex characters
    request = ipsec_enc(1, key=key).SerializeToString()
    spool = RequestSpool(tmp_path)
    for _ in range(2000):  # several chunks
        spool.append(request)
    assert list(spool)[0] == request
    disk = _disk(spool)
    assert len(disk) > 2000 * len(request)
    assert key not in disk and b"c0ffee" not in disk
    spool.close()


def test_a_changed_file_raises_instead_of_returning_other_requests(tmp_path: Path) -> None:
    spool = RequestSpool(tmp_path)
    for index in range(2000):
        spool.append(index.to_bytes(4, "big") * 20)
    list(spool)  # seals the last chunk
    fd = spool._file.fileno()  # noqa: SLF001 - tampering with the file on purpose
    os.pwrite(fd, bytes([os.pread(fd, 1, 100)[0] ^ 1]), 100)
    with pytest.raises(SpoolError, match="does not open"):
        list(spool)
    spool.close()


def test_close_gives_the_bytes_back_once_and_forgets_the_key(tmp_path: Path) -> None:
    released: list[int] = []
    spool = RequestSpool(tmp_path, on_close=released.append)
    spool.append(b"x" * 10)
    spool.close()
    spool.close()
    assert released == [10]
    with pytest.raises(SpoolError, match="closed"):
        list(spool)


def test_a_stream_shorter_than_a_chunk_makes_no_file_and_a_longer_one_does(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import controller.spool as spool_module
    made: list[object] = []
    real = spool_module.tempfile.TemporaryFile

    def counting(*args: object, **kwargs: object) -> object:
        made.append(1)
        return real(*args, **kwargs)  # type: ignore[call-overload]

    monkeypatch.setattr(spool_module.tempfile, "TemporaryFile", counting)
    short = RequestSpool(tmp_path)
    requests = [b"a" * 100, b"", b"b" * 7]
    for request in requests:
        short.append(request)
    assert list(short) == requests and list(short) == requests
    assert made == [] and short._file is None  # noqa: SLF001 - no file is the point
    short.append(b"c")  # appending after a pass still comes back in order
    assert list(short) == [*requests, b"c"]
    short.close()
    with pytest.raises(SpoolError, match="closed"):
        list(short)
    long = RequestSpool(tmp_path)
    long.append(b"x" * 10)
    long.append(b"y" * CHUNK_BYTES)  # crosses the chunk: sealed to a file
    assert made == [1]
    long.append(b"z")
    assert list(long) == [b"x" * 10, b"y" * CHUNK_BYTES, b"z"]
    assert b"y" * 64 not in _disk(long)
    long.close()
