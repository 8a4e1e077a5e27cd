"""Seals and opens ESP payloads with the `cryptography` AEAD primitives.

One `EspAead` is built per SA, so the key schedule is set up once, not per packet. GCM with a
16-byte ICV and all CCM sizes use the one-shot `AESGCM` / `AESCCM` calls. GCM with a truncated ICV
(8 or 12 bytes, RFC 4106 §6) seals with `AESGCM` and keeps the leading ICV bytes; it opens with the
GCM mode object, which verifies a truncated tag (`min_tag_length=8`) — `AESGCM` itself accepts only
16-byte tags.
"""

from __future__ import annotations

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
        self._gcm: AESGCM | None = None
        self._ccm: AESCCM | None = None
        if suite.algorithm is AeadAlgorithm.GCM:
            self._gcm = AESGCM(self._key)
        else:
            self._ccm = AESCCM(self._key, tag_length=suite.icv_bytes)
        # Per-packet fast path of seal(), chosen once here: the one-shot call and how many tag
        # bytes to cut (GCM with a truncated ICV), instead of branching on the suite per packet.
        self._encrypt = (self._ccm or self._gcm).encrypt  # type: ignore[union-attr]
        self._icv_cut = _FULL_GCM_TAG - suite.icv_bytes if self._gcm is not None else 0

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
