"""A createIpTunnel stream held on disk while it is read and judged, sealed under a key that
exists only in this process's memory.

The API's capacity rule (a stream whose peak does not fit applies nothing) needs the whole
stream before the first write, so a stream must be kept until it ends; kept as messages in a
list it cost ~1 KB of heap per request. A :class:`RequestSpool` keeps the serialized requests
instead, length-prefixed, in an unnamed temporary file (``O_TMPFILE`` where the file system has
it: the file never has a name and disappears with its descriptor, even on a crash), so the
controller's memory per stream is one chunk (``CHUNK_BYTES``) however long the stream is.

Requests carry SA keys in clear. The file is written in chunks sealed with AES-256-GCM under a
key drawn for this spool alone and never written anywhere, the nonce being the chunk's number:
what reaches the disk (and stays on its blocks after the file is gone) is ciphertext that
nobody can open once the spool is closed. Reading checks every chunk's tag, the chunks' order
and the request count, so a spool comes back exactly as it was written or raises
:class:`SpoolError`.

The file and the key are made when the first chunk is sealed: a stream shorter than a chunk
(every single-request stream) stays in that chunk's buffer, in memory as it would be anyway,
and costs no file, no key and no AES pass (~0.1 ms of the controller per stream).
"""

from __future__ import annotations

import struct
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

CHUNK_BYTES = 64 << 10  # plaintext sealed per write (a larger request makes a larger chunk)
_LENGTH = struct.Struct(">I")  # a record's and a sealed chunk's length prefix


class SpoolError(Exception):
    """The spool file does not read back as written (the disk or someone changed it)."""


class RequestSpool:
    """Serialized requests appended in order, read back (any number of times) in order."""

    def __init__(self, directory: Path | None = None,
                 on_close: Callable[[int], None] | None = None) -> None:
        self._directory = directory
        self._file: IO[bytes] | None = None  # made with the first sealed chunk
        self._aead: AESGCM | None = None  # likewise
        self._closed = False
        self._pending = bytearray()  # records not yet sealed
        self._chunks = 0
        self._on_close = on_close
        self.count = 0  # requests appended
        self.size = 0  # their bytes (without framing)

    def __repr__(self) -> str:
        return f"<RequestSpool count={self.count} size={self.size}>"

    def append(self, request: bytes) -> None:
        """Add one serialized request at the end."""
        self._pending += _LENGTH.pack(len(request))
        self._pending += request
        self.count += 1
        self.size += len(request)
        if len(self._pending) >= CHUNK_BYTES:
            self._seal()

    def _seal(self) -> None:
        if not self._pending:
            return
        sealed = self._cipher().encrypt(self._nonce(self._chunks), bytes(self._pending), None)
        if self._file is None:
            self._file = tempfile.TemporaryFile(dir=self._directory)
        self._file.seek(0, 2)
        self._file.write(_LENGTH.pack(len(sealed)) + sealed)
        self._chunks += 1
        self._pending.clear()

    def __iter__(self) -> Iterator[bytes]:
        """The requests in the order they were appended (a fresh pass over the file)."""
        read = 0
        for plain in self._plaintexts():
            position = 0
            while position < len(plain):
                (size,) = _LENGTH.unpack_from(plain, position)
                position += _LENGTH.size
                yield bytes(plain[position:position + size])
                position += size
                read += 1
        if read != self.count:
            raise SpoolError(f"the spool holds {read} requests, {self.count} were written")

    def _plaintexts(self) -> Iterator[memoryview]:
        """Each chunk's records, opened and checked: the buffer alone while nothing was sealed
        (module doc), else every sealed chunk in order."""
        if self._closed:
            raise SpoolError("the spool is closed")
        if not self._chunks:
            yield memoryview(bytes(self._pending))
            return
        cipher = self._cipher()
        self._seal()
        assert self._file is not None
        self._file.flush()
        offset = 0
        for number in range(self._chunks):
            self._file.seek(offset)
            header = self._file.read(_LENGTH.size)
            if len(header) != _LENGTH.size:
                raise SpoolError(f"spool chunk {number} is missing")
            (length,) = _LENGTH.unpack(header)
            try:
                yield memoryview(cipher.decrypt(self._nonce(number),
                                                self._file.read(length), None))
            except InvalidTag:
                raise SpoolError(f"spool chunk {number} does not open") from None
            offset += _LENGTH.size + length

    def close(self) -> None:
        """Forget the key and drop the file (idempotent); the budget callback runs once."""
        if self._closed:
            return
        self._closed = True
        self._aead = None
        self._pending.clear()
        if self._file is not None:
            self._file.close()
        if self._on_close is not None:
            self._on_close(self.size)

    def _cipher(self) -> AESGCM:
        if self._closed:
            raise SpoolError("the spool is closed")
        if self._aead is None:
            self._aead = AESGCM(AESGCM.generate_key(bit_length=256))
        return self._aead

    @staticmethod
    def _nonce(number: int) -> bytes:
        return number.to_bytes(12, "big")
