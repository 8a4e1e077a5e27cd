"""The twelve ESP cipher suites of the API's ENC_TYPE: AES-128/256 x GCM/CCM x ICV 8/12/16.

Each suite knows its key, salt and ICV sizes, so validation and the AEAD set-up read them from one
place. The suites are listed in the API's ENC_TYPE order (`_aes256gcm64` = 0 ... `_aes128ccm128` =
11); the worker's own proto enum `Cipher` uses the same order shifted by one (0 = unspecified).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass


class AeadAlgorithm(enum.Enum):
    """The AEAD construction of a suite."""

    GCM = "GCM"  # RFC 4106: 4-byte salt, 8-byte explicit IV, 12-byte nonce
    CCM = "CCM"  # RFC 4309: 3-byte salt, 8-byte explicit IV, 11-byte nonce


ESP_IV_BYTES = 8
"""Both RFC 4106 and RFC 4309 carry an 8-byte explicit IV in every packet."""


@dataclass(frozen=True, kw_only=True)
class CipherSuite:
    """One ENC_TYPE: the API name, the AEAD, key and ICV sizes."""

    enc_type_name: str
    enc_type_value: int
    algorithm: AeadAlgorithm
    key_bytes: int
    icv_bytes: int

    @property
    def salt_bytes(self) -> int:
        """RFC 4106 §8.1 (GCM) takes a 4-byte salt, RFC 4309 §7.1 (CCM) a 3-byte one."""
        return 4 if self.algorithm is AeadAlgorithm.GCM else 3

    @property
    def label(self) -> str:
        """A human name, e.g. `AES-256-GCM/ICV16`, for errors and docs."""
        return f"AES-{self.key_bytes * 8}-{self.algorithm.value}/ICV{self.icv_bytes}"

    @property
    def proto_name(self) -> str:
        """The worker proto's `Cipher` enum name, e.g. `CIPHER_AES256_GCM_ICV16`."""
        return f"CIPHER_AES{self.key_bytes * 8}_{self.algorithm.value}_ICV{self.icv_bytes}"


def _build_suites() -> tuple[CipherSuite, ...]:
    suites = []
    value = 0
    for algorithm in (AeadAlgorithm.GCM, AeadAlgorithm.CCM):
        for key_bytes in (32, 16):
            for icv_bytes in (8, 12, 16):
                name = f"_aes{key_bytes * 8}{algorithm.value.lower()}{icv_bytes * 8}"
                suites.append(
                    CipherSuite(
                        enc_type_name=name,
                        enc_type_value=value,
                        algorithm=algorithm,
                        key_bytes=key_bytes,
                        icv_bytes=icv_bytes,
                    )
                )
                value += 1
    return tuple(suites)


SUITES: tuple[CipherSuite, ...] = _build_suites()
SUITE_BY_ENC_TYPE_NAME: dict[str, CipherSuite] = {s.enc_type_name: s for s in SUITES}
SUITE_BY_PROTO_NAME: dict[str, CipherSuite] = {s.proto_name: s for s in SUITES}
