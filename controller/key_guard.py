"""No encrypt key twice: the request errors for key reuse and retired keys, decided while planning.

An AES-GCM/CCM encrypt SA numbers its packets from 1; the nonce is salt || sequence number. A
key (with its salt) may therefore drive one encrypt SA, once: never two live encrypt SAs at the
same time, and never again after its SA left the worker (retired). Both are the client's
mistakes and come back as request errors (``INVALID_KEY`` on the SA's key field, naming SPI and
tunnel), never as an outage.

Keys are compared by :meth:`KeyGuard.fingerprint` (a keyed HMAC, see
:meth:`controller.sealing.KeySealer.fingerprint`); retired fingerprints persist in the store, so
a controller restart forgets none. :class:`StreamKeys` sees the live keys of one stream's view
as the store's own index of committed live keys (kept per commit) overlaid with what the
stream's accepted requests add and retire: no scan of the tunnels, per request or per stream.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Protocol

from controller.dataplane import TunnelChange
from controller.errors import ErrorCode, RequestError
from controller.keys import SaKey
from controller.model import IpsecEncrypt, Tunnel

KEY_FIELD = "ipsecTunnel.ipsecEnc.ipsecSA.encryptionKey"


class RetiredKeys(Protocol):
    """Where retired fingerprints and the committed live keys live (the tunnel store)."""

    def fingerprint(self, secret: SaKey) -> bytes: ...

    def is_retired(self, fingerprint: bytes) -> bool: ...

    @property
    def live_keys(self) -> Mapping[bytes, tuple[int, int]]: ...


def _encrypt_sa(tunnel: Tunnel | None) -> IpsecEncrypt | None:
    return tunnel.body if tunnel is not None and isinstance(tunnel.body, IpsecEncrypt) else None


def keeps_sa(before: Tunnel | None, after: Tunnel | None) -> bool:
    """True when a change keeps the encrypt SA as it is on the worker (same SPI, key, cipher and
    mode): the SA goes on numbering; any other change installs a fresh SA."""
    old, new = _encrypt_sa(before), _encrypt_sa(after)
    return (old is not None and new is not None and old.sa == new.sa
            and old.cipher == new.cipher and old.mode == new.mode)


def key_of_this_tunnel(spi: int, current_spi: int) -> str:
    """Why a new encrypt SA may not take the key of its tunnel's current one."""
    return (f"the key of spi {spi} is the key of this tunnel's current encrypt SA spi "
            f"{current_spi}; a new SA (new spi, cipher or tunnelType) numbers packets from 1 "
            "again, which under the same key reuses AES nonces: send a new key")


def key_in_use(spi: int, owner: tuple[int, int]) -> str:
    """Why an encrypt SA may not take the key of another tunnel's live SA (tunnel id, spi)."""
    return (f"the key of spi {spi} is in use by the encrypt SA spi {owner[1]} of tunnel "
            f"{owner[0]}; a second SA numbering packets from 1 under that key would reuse "
            "AES nonces: send a new key")


def key_retired(spi: int) -> str:
    """Why an encrypt SA may not take a retired key."""
    return (f"the key of spi {spi} has already protected traffic in an encrypt SA that is "
            "gone (retired key); using it again would restart the sequence numbers under "
            "it (AES nonce reuse): send a new key")


class StreamKeys:
    """The live encrypt keys of a stream's view; :meth:`check` refuses reuse, :meth:`accept`
    moves the view on."""

    def __init__(self, store: RetiredKeys) -> None:
        self._store = store
        self._added: dict[bytes, tuple[int, int]] = {}  # keys this stream makes live
        self._leaving: set[bytes] = set()  # keys this stream retires

    def _owner(self, fingerprint: bytes) -> tuple[int, int] | None:
        """(tunnel id, spi) of the live SA under this key in the stream's view, if any."""
        owner = self._added.get(fingerprint)
        if owner is None and fingerprint not in self._leaving:
            owner = self._store.live_keys.get(fingerprint)
        return owner

    def check(self, change: TunnelChange) -> None:
        """Raise the request error if ``change`` would install an encrypt key again."""
        new = _encrypt_sa(change.after)
        if new is None or keeps_sa(change.before, change.after):
            return
        fingerprint = self._store.fingerprint(new.sa.secret)
        spi, tunnel_id = new.sa.spi, change.tunnel_id
        owner = self._owner(fingerprint)
        if owner is not None and owner[0] == tunnel_id:
            raise RequestError(ErrorCode.INVALID_KEY, KEY_FIELD, key_of_this_tunnel(spi, owner[1]))
        if owner is not None:
            raise RequestError(ErrorCode.INVALID_KEY, KEY_FIELD, key_in_use(spi, owner))
        if fingerprint in self._leaving or self._store.is_retired(fingerprint):
            raise RequestError(ErrorCode.INVALID_KEY, KEY_FIELD, key_retired(spi))

    def accept(self, change: TunnelChange) -> None:
        """The change is part of the plan: its old key leaves, its new key is live."""
        old, new = _encrypt_sa(change.before), _encrypt_sa(change.after)
        if keeps_sa(change.before, change.after) or (old is None and new is None):
            return
        if old is not None:
            fingerprint = self._store.fingerprint(old.sa.secret)
            self._added.pop(fingerprint, None)
            self._leaving.add(fingerprint)
        if new is not None:
            self._added[self._store.fingerprint(new.sa.secret)] = (change.tunnel_id, new.sa.spi)
