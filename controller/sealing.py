"""Encryption of SA key material at rest: the store never writes a key in clear.

A random 256-bit store key lives in ``<state-dir>/store.key`` (created 0600, refused if group- or
world-accessible). Each SA's key and salt are sealed with AES-256-GCM under it; the associated data
binds the ciphertext to its tunnel id and SPI, so a sealed key copied onto another row fails to
open instead of silently keying the wrong tunnel.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import os
import stat
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from controller.keys import SaKey

log = logging.getLogger(__name__)

STORE_KEY_FILE = "store.key"
_NONCE_LEN = 12
_AAD_LABEL = b"tunneloffload-sa-v1"
_FINGERPRINT_LABEL = b"tunneloffload-retired-key-v1"


class SealingError(Exception):
    """A sealed key could not be opened (wrong store key, or the row was tampered with)."""


def load_or_create_store_key(state_dir: Path) -> bytes:
    """Read the store key, creating it (0600, exclusively) on first start."""
    path = state_dir / STORE_KEY_FILE
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        mode = stat.S_IMODE(path.stat().st_mode)
        if mode & 0o077:
            raise PermissionError(
                f"{path} is accessible by group or others (mode {mode:o}); run chmod 600") from None
        key = path.read_bytes()
        if len(key) != 32:
            raise ValueError(f"{path} holds {len(key)} bytes, expected 32") from None
        return key
    key = AESGCM.generate_key(bit_length=256)
    with os.fdopen(fd, "wb") as handle:
        handle.write(key)
    log.info("created store key %s (mode 0600)", path)
    return key


class KeySealer:
    """Seals and opens SA secrets with the store key."""

    def __init__(self, store_key: bytes) -> None:
        self._aead = AESGCM(store_key)
        # A separate key for fingerprints, derived one way from the store key: the fingerprint
        # table is useless without store.key, and reveals nothing about the sealing key.
        self._fingerprint_key = hmac.new(store_key, _FINGERPRINT_LABEL, hashlib.sha256).digest()

    def __repr__(self) -> str:
        return "<KeySealer>"

    @staticmethod
    def _aad(tunnel_id: int, spi: int) -> bytes:
        return _AAD_LABEL + tunnel_id.to_bytes(8, "big") + spi.to_bytes(4, "big")

    def seal(self, secret: SaKey, *, tunnel_id: int, spi: int) -> bytes:
        """``nonce || AES-GCM(len(key) || key || salt)`` bound to (tunnel id, SPI)."""
        key = secret.reveal_key()
        plaintext = bytes([len(key)]) + key + secret.reveal_salt()
        nonce = os.urandom(_NONCE_LEN)
        return nonce + self._aead.encrypt(nonce, plaintext, self._aad(tunnel_id, spi))

    def fingerprint(self, secret: SaKey) -> bytes:
        """HMAC-SHA256 of key and salt under a key derived from the store key: equality only.

        Key and salt only: the SPI is not part of the AEAD nonce (salt || sequence number), so
        the same key under another SPI is the same nonce space."""
        return hmac.new(self._fingerprint_key, secret.reveal_key() + secret.reveal_salt(),
                        hashlib.sha256).digest()

    def open(self, sealed: bytes, *, tunnel_id: int, spi: int) -> SaKey:
        """Inverse of :meth:`seal`; raises :class:`SealingError` on any mismatch."""
        try:
            plaintext = self._aead.decrypt(sealed[:_NONCE_LEN], sealed[_NONCE_LEN:],
                                           self._aad(tunnel_id, spi))
        except InvalidTag:
            raise SealingError(
                f"sealed key of tunnel {tunnel_id} spi {spi} does not open") from None
        key_len = plaintext[0]
        return SaKey(key=plaintext[1:1 + key_len], salt=plaintext[1 + key_len:])
