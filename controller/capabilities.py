"""What this device supports — the single source the validator checks against and the
Capabilities rpc reports, so the two can never disagree.

Sizes are never typed here: with the P4Runtime data plane, :func:`capabilities_for_pipeline`
derives them from the loaded P4Info (sizes) and the crypto worker's protocol (ciphers); the
detached data plane reports the sizes of the P4Info it would program
(:func:`capabilities_for_p4info`, the checked-in p4src/tunnel_offload.p4info.txtpb by default).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from pathlib import Path

from controller.model import Cipher, TunnelMode
from controller.pipeline import Pipeline, PipelineSizes
from controller.settings import DEFAULT_P4INFO


@functools.cache
def checked_in_sizes(p4info: Path = DEFAULT_P4INFO) -> PipelineSizes:
    """The sizes of a P4Info file, read once (the checked-in one by default)."""
    return Pipeline.load(p4info).sizes


def _max_tunnels() -> int:
    return checked_in_sizes().max_tunnels


def _max_sas() -> int:
    return checked_in_sizes().max_sas


@dataclass(frozen=True, kw_only=True)
class Capabilities:
    """Supported matches, tunnel types, ciphers and table sizes."""

    ingress_interface_matching: bool = True
    vxlan_matching: bool = True
    geneve_matching: bool = True
    tunnel_matching: bool = True
    spi_matching: bool = True
    tunnel_modes: frozenset[TunnelMode] = frozenset(TunnelMode)
    ciphers: frozenset[Cipher] = frozenset(Cipher)
    nat_supported: bool = False
    max_geneve_options: int = 4
    max_geneve_option_data: int = 16  # bytes per option (length <= 4 words)
    # tunnel indices 1 … MAX_TUNNELS - 1 and SA indices 1 … MAX_SAS - 1 (0 = none), from the
    # checked-in P4Info unless given
    max_tunnels: int = field(default_factory=_max_tunnels)
    max_sas: int = field(default_factory=_max_sas)
    max_ingress_port: int = 63  # front-panel ports 0 … 63


def capabilities_for_pipeline(sizes: PipelineSizes, *,
                              ciphers: frozenset[Cipher]) -> Capabilities:
    """What the loaded pipeline and the crypto worker support (no worker: no ciphers, so every
    IPsec request is refused as unsupported instead of failing in the data plane)."""
    return Capabilities(
        ciphers=ciphers,
        tunnel_modes=frozenset(TunnelMode) if ciphers else frozenset(),
        max_geneve_options=sizes.max_geneve_options,
        max_geneve_option_data=sizes.max_geneve_option_data,
        max_tunnels=sizes.max_tunnels,
        max_sas=sizes.max_sas,
    )


def capabilities_for_p4info(p4info: Path) -> Capabilities:
    """The detached data plane's: the sizes of the P4Info it would program, every cipher."""
    return capabilities_for_pipeline(checked_in_sizes(p4info), ciphers=frozenset(Cipher))
