"""Seals and opens ESP payloads with the `cryptography` AEAD primitives.

One `EspAead` is built per SA, so the key schedule is set up once, not per packet. GCM with a
16-byte ICV and all CCM sizes use the one-shot `AESGCM` / `AESCCM` calls. GCM with a truncated ICV
(8 or 12 bytes, RFC 4106 §6) seals with `AESGCM` and keeps the leading ICV bytes; it opens with the
GCM mode object, which verifies a truncated tag (`min_tag_length=8`) — `AESGCM` itself accepts only
16-byte tags.

The `AESGCM`/`AESCCM` object is built at the SA's first packet, not when the SA is added: each
holds about 2.4 KB of OpenSSL cipher contexts outside Python's heap, so 65,536 idle SAs would
cost about 150 MiB of RSS for contexts no packet has used (docs/operations.md, "Capacity and
speed"). The key length is checked when the SA is added, as the constructor would.
"""

from __future__ import annotations

from collections.abc import Callable

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.ciphers.aead import AESCCM, AESGCM

from crypto_worker.ciphers import AeadAlgorithm, CipherSuite
from crypto_worker.secret import Secret

_FULL_GCM_TAG = 16


class IcvMismatch(Exception):
    """The ICV did not verify: the packet was forged, corrupted, or made with another key."""


class EspAead:
    """The AEAD of one SA: nonce = salt ‖ explicit IV, ciphertext followed by the ICV."""

    __slots__ = ("_suite", "_salt", "_key", "_gcm", "_ccm", "_encrypt", "_icv_cut")

    def __init__(self, suite: CipherSuite, key: Secret, salt: Secret) -> None:
        self._suite = suite
        self._salt = salt.reveal()
        self._key = key.reveal()
        if len(self._key) != suite.key_bytes or len(self._key) not in (16, 24, 32):
            raise ValueError(f"{suite.label}: the key must be {suite.key_bytes} bytes")
        self._gcm: AESGCM | None = None
        self._ccm: AESCCM | None = None
        # Per-packet fast path of seal(), chosen once: the one-shot call and how many tag bytes
        # to cut (GCM with a truncated ICV), instead of branching on the suite per packet. Until
        # the first packet it is `_first_seal`, which builds the cipher object.
        self._encrypt: Callable[[bytes, bytes, bytes], bytes] = self._first_seal
        gcm = suite.algorithm is AeadAlgorithm.GCM
        self._icv_cut = _FULL_GCM_TAG - suite.icv_bytes if gcm else 0

    def _build(self) -> None:
        """Builds the cipher object (first packet of the SA)."""
        if self._suite.algorithm is AeadAlgorithm.GCM:
            self._gcm = AESGCM(self._key)
        else:
            self._ccm = AESCCM(self._key, tag_length=self._suite.icv_bytes)
        self._encrypt = (self._ccm or self._gcm).encrypt  # type: ignore[union-attr]

    def _first_seal(self, nonce: bytes, plaintext: bytes, aad: bytes) -> bytes:
        self._build()
        return self._encrypt(nonce, plaintext, aad)

    def __repr__(self) -> str:
        return f"<EspAead {self._suite.label}>"

    def seal(self, iv: bytes, plaintext: bytes, aad: bytes) -> bytes:
        """Returns ciphertext ‖ ICV for one ESP payload (plaintext includes the trailer)."""
        sealed = self._encrypt(self._salt + iv, plaintext, aad)
        if self._icv_cut:
            return sealed[: len(sealed) - self._icv_cut]
        return sealed

    def open(self, iv: bytes, sealed: bytes, aad: bytes) -> bytes:
        """Returns the plaintext of ciphertext ‖ ICV, or raises IcvMismatch."""
        nonce = self._salt + iv
        if self._gcm is None and self._ccm is None:
            self._build()
        try:
            if self._ccm is not None:
                return self._ccm.decrypt(nonce, sealed, aad)
            assert self._gcm is not None
            icv_bytes = self._suite.icv_bytes
            if icv_bytes == _FULL_GCM_TAG:
                return self._gcm.decrypt(nonce, sealed, aad)
            split = len(sealed) - icv_bytes
            decryptor = Cipher(
                algorithms.AES(self._key),
                modes.GCM(nonce, sealed[split:], min_tag_length=icv_bytes),
            ).decryptor()
            decryptor.authenticate_additional_data(aad)
            plaintext = decryptor.update(sealed[:split])
            decryptor.finalize()
            return plaintext
        except InvalidTag as error:
            raise IcvMismatch("ICV check failed") from error
