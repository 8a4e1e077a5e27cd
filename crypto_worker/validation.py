"""Checks an SA request field by field; every error names the field and the bad value.

Key material is never echoed: errors about a key or salt state only its length.
"""

from __future__ import annotations

from dataclasses import dataclass

from crypto_worker.ciphers import CipherSuite
from crypto_worker.replay import DEFAULT_WINDOW, MAX_WINDOW
from crypto_worker.sa import Direction, EspMode, SaConfig, SaKeys
from crypto_worker.secret import Secret
from crypto_worker.shim import MAX_SA_INDEX as SHIM_MAX_SA_INDEX

# The worker holds any SA its shim can name; how many the switch holds (decrypt_sas, MAX_SAS in
# p4src/include/sizes.p4) is the controller's check, read from the P4Info, so no P4 size is
# repeated here.
MAX_SA_INDEX = SHIM_MAX_SA_INDEX


class SaValidationError(ValueError):
    """A field of an SA request is invalid; `field` names it."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.detail = message


@dataclass(frozen=True, kw_only=True)
class SaRequest:
    """An SA as it arrives from the service, before validation (suite/direction may be None)."""

    sa_index: int
    spi: int
    direction: Direction | None
    suite: CipherSuite | None
    mode: EspMode | None
    nat_traversal: bool
    esn: bool
    replay_window: int
    key: Secret
    salt: Secret


def validate_sa(request: SaRequest) -> tuple[SaConfig, SaKeys]:
    """Returns the SA's config and keys, or raises SaValidationError for the first bad field."""
    if not 1 <= request.sa_index <= MAX_SA_INDEX:
        raise SaValidationError("sa_index", f"{request.sa_index}, must be 1 … {MAX_SA_INDEX}")
    if not 256 <= request.spi <= 0xFFFFFFFF:
        # RFC 4303 §2.1: SPIs 1 … 255 are reserved by IANA, 0 is for local use only.
        raise SaValidationError("spi", f"{request.spi}, must be 256 … 4294967295")
    if request.direction is None:
        raise SaValidationError("direction", "unspecified, must be ENCRYPT or DECRYPT")
    if request.suite is None:
        raise SaValidationError("cipher", "unspecified, must be one of the 12 AES-GCM/CCM suites")
    if request.mode is None:
        raise SaValidationError("mode", "unspecified, must be TRANSPORT or TUNNEL")
    suite = request.suite
    if len(request.key) != suite.key_bytes:
        raise SaValidationError(
            "key", f"{len(request.key)} bytes, {suite.label} needs {suite.key_bytes}"
        )
    if len(request.salt) != suite.salt_bytes:
        raise SaValidationError(
            "salt", f"{len(request.salt)} bytes, {suite.label} needs {suite.salt_bytes}"
        )
    window = request.replay_window or DEFAULT_WINDOW
    if not 1 <= window <= MAX_WINDOW:
        raise SaValidationError(
            "replay_window", f"{request.replay_window}, must be 0 (default {DEFAULT_WINDOW}) "
            f"or 1 … {MAX_WINDOW}"
        )
    config = SaConfig(
        sa_index=request.sa_index,
        spi=request.spi,
        direction=request.direction,
        suite=suite,
        mode=request.mode,
        nat_traversal=request.nat_traversal,
        esn=request.esn,
        replay_window=window,
    )
    return config, SaKeys(key=request.key, salt=request.salt)
