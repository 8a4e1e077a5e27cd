"""Key material: the :class:`SaKey` wrapper and the parser for ``encryptionKey`` bytes.

Accepted layouts for an AES-``n`` key (``n`` = 16 or 32 bytes) with an AEAD salt of ``s`` bytes
(4 for GCM / RFC 4106, 3 for CCM / RFC 4309): raw ``key``, raw ``key || salt``, or the ASCII hex
text of either (twice as long). A key given without salt gets an all-zero salt — the reference
client sends 64 hex characters (a bare AES-256 key), see docs/api.md.
"""

from __future__ import annotations

import hmac
import string
from typing import NoReturn

from controller.errors import ErrorCode, RequestError

_HEX_DIGITS = string.hexdigits.encode()  # bytes.translate deletes them: what is left is not hex


class SaKey:
    """An AES key and its salt; ``repr``/``str`` show only the length, never the bytes.

    Only code that must hand the key to the crypto worker (the data plane) and the store's sealer
    call :meth:`reveal_key` / :meth:`reveal_salt`.
    """

    __slots__ = ("_key", "_salt")

    def __init__(self, *, key: bytes, salt: bytes) -> None:
        self._key = bytes(key)
        self._salt = bytes(salt)

    def __repr__(self) -> str:
        return f"<secret len={len(self._key) + len(self._salt)}>"

    __str__ = __repr__

    def __format__(self, format_spec: str) -> str:
        return repr(self)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, SaKey):
            return NotImplemented
        return hmac.compare_digest(self._key + self._salt, other._key + other._salt)

    __hash__ = None  # type: ignore[assignment]

    def __reduce__(self) -> NoReturn:
        raise TypeError("SaKey is not picklable")

    @property
    def key_len(self) -> int:
        """Length of the AES key in bytes (16 or 32)."""
        return len(self._key)

    @property
    def salt_len(self) -> int:
        """Length of the salt in bytes (4 for GCM, 3 for CCM)."""
        return len(self._salt)

    def reveal_key(self) -> bytes:
        """The AES key bytes; only for the crypto path and the store's sealer."""
        return self._key

    def reveal_salt(self) -> bytes:
        """The salt bytes; only for the crypto path and the store's sealer."""
        return self._salt


def parse_key(raw: bytes, *, key_len: int, salt_len: int, cipher_name: str, field: str) -> SaKey:
    """Split ``raw`` into key and salt for a cipher, or raise INVALID_KEY naming the sizes.

    The error text names the field, the received length and the accepted lengths — never any
    byte of the key.
    """
    if not raw:
        raise RequestError(ErrorCode.INVALID_KEY, field, f"missing; {cipher_name} needs a key")
    raw_sizes = (key_len, key_len + salt_len)
    material: bytes | None = None
    if len(raw) in raw_sizes:
        material = raw
    elif len(raw) in (2 * size for size in raw_sizes):
        if raw.translate(None, _HEX_DIGITS):  # something is left: not all hex digits
            raise RequestError(
                ErrorCode.INVALID_KEY,
                field,
                f"{len(raw)} bytes is the length of hex text for {cipher_name}, "
                "but the bytes are not all hex digits",
            )
        material = bytes.fromhex(raw.decode("ascii"))
    if material is None:
        raise RequestError(
            ErrorCode.INVALID_KEY,
            field,
            f"{len(raw)} bytes do not fit {cipher_name}: it takes {raw_sizes[0]} or "
            f"{raw_sizes[1]} raw bytes (key, or key + {salt_len}-byte salt) or "
            f"{2 * raw_sizes[0]} or {2 * raw_sizes[1]} hex characters",
        )
    key, salt = material[:key_len], material[key_len:]
    if not any(key):
        raise RequestError(ErrorCode.INVALID_KEY, field, "an all-zero AES key is refused")
    return SaKey(key=key, salt=salt if salt else bytes(salt_len))
