"""The AEAD of an SA is built at its first packet, not when the SA is added (crypto_worker/
aead.py: about 2.4 KB of OpenSSL contexts per cipher object), and behaves exactly as the
one-shot `cryptography` calls it wraps, whichever call comes first.

Run just this file: .venv/bin/python -m pytest tests/crypto_worker/test_aead_lazy.py -q
"""

from __future__ import annotations

import os

import pytest
from cryptography.hazmat.primitives.ciphers.aead import AESCCM, AESGCM

from crypto_worker.aead import EspAead, IcvMismatch
from crypto_worker.ciphers import SUITES
from crypto_worker.secret import Secret


def _reference(suite, key: bytes):  # type: ignore[no-untyped-def]
    if suite.algorithm.value == "GCM":
        return AESGCM(key)
    return AESCCM(key, tag_length=suite.icv_bytes)


@pytest.mark.parametrize("suite", SUITES, ids=lambda s: s.label)
@pytest.mark.parametrize("first", ["seal", "open"])
def test_cipher_object_built_at_first_use_and_matches_cryptography(suite, first: str) -> None:
    key, salt, iv = os.urandom(suite.key_bytes), os.urandom(4), os.urandom(8)
    plaintext, aad = os.urandom(61), os.urandom(8)
    expected = _reference(suite, key).encrypt(salt + iv, plaintext, aad)
    if suite.algorithm.value == "GCM":
        expected = expected[:len(expected) - (16 - suite.icv_bytes)]
    aead = EspAead(suite, Secret(key), Secret(salt))
    assert aead._gcm is None and aead._ccm is None  # nothing built for an idle SA
    if first == "seal":
        assert aead.seal(iv, plaintext, aad) == expected
        assert aead.open(iv, expected, aad) == plaintext
    else:
        assert aead.open(iv, expected, aad) == plaintext
        assert aead.seal(iv, plaintext, aad) == expected
    assert (aead._gcm or aead._ccm) is not None
    with pytest.raises(IcvMismatch):
        aead.open(iv, expected[:-1] + bytes([expected[-1] ^ 1]), aad)


def test_wrong_key_length_refused_when_the_sa_is_added() -> None:
    suite = SUITES[0]
    with pytest.raises(ValueError, match=f"must be {suite.key_bytes} bytes"):
        EspAead(suite, Secret(os.urandom(suite.key_bytes - 1)), Secret(os.urandom(4)))
