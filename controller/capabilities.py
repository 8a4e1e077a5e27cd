"""What this device supports — the single source the validator checks against and the
Capabilities rpc reports, so the two can never disagree.

With the P4Runtime data plane, :func:`capabilities_for_pipeline` derives them from the loaded
P4Info (sizes) and the crypto worker's protocol (ciphers); :data:`DEFAULT_CAPABILITIES` (the
sizes of docs/dataplane.md) serves the detached data plane.
"""

from __future__ import annotations

from dataclasses import dataclass

from controller.model import Cipher, TunnelMode
from controller.pipeline import PipelineSizes


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
    max_tunnels: int = 1023  # tunnel indices 1 … 1023 (MAX_TUNNELS 1024, 0 = none)
    max_sas: int = 2047  # crypto worker SA indices 1 … 2047 (MAX_SAS 2048, 0 = none)
    max_ingress_port: int = 63  # front-panel ports 0 … 63


DEFAULT_CAPABILITIES = Capabilities()


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
