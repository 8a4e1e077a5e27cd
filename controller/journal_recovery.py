"""Start-up resolution of the request journal a crashed controller left behind.

The service journals each request before its data-plane writes ('applying') and marks it
'applied' in the commit of its store change (:mod:`controller.store`). After a crash:

- 'applied' rows: the store, the switch and the worker hold the request; it stays, and the store
  logs it as applied but never acknowledged.
- 'applying' CREATE or UPDATE rows: the store never committed; reconciliation puts the switch and
  the worker back to the store (what the request added is removed), so the request did not
  happen.
- 'applying' DELETE rows: they cannot be undone once the data plane has gone past the removal of
  the tunnel's SAs — the worker retires a removed encrypt key (re-adding it would restart its
  sequence numbers: nonce reuse) and forgets a removed decrypt SA's replay mark (re-adding it
  would accept old frames), so "undoing" would leave the tunnel back in the store but dark,
  ``degraded`` for good. An interrupted DELETE is therefore *finished* here, before anything is
  reconciled: the tunnel, its allocation and its counter baselines leave the store, its encrypt
  keys are retired (as the data plane does on delete), and the journal row becomes 'applied' —
  all in one transaction, so a crash during this start-up leaves either the row 'applying' (and
  the next start finishes it) or the work done. Reconciliation then removes whatever of the
  tunnel is still on the switch or the worker. The client never got an answer either way; the
  request is applied whole, and the log says so.
"""

from __future__ import annotations

import logging

from controller.dataplane import TunnelChange
from controller.model import IpsecEncrypt, Operation, Tunnel
from controller.store import TunnelStore

log = logging.getLogger(__name__)


class RecoveringStore(TunnelStore):
    """The tunnel store, opened the way start-up needs it: interrupted DELETEs are finished
    (module doc) before the store reports (and clears) the journal."""

    def _report_journal(self) -> None:
        rows = self._db.execute(
            "SELECT seq, stream, request_index, tunnel_id FROM journal "
            "WHERE state = 'applying' AND operation = ? ORDER BY seq",
            (Operation.DELETE.name,)).fetchall()
        for seq, stream, index, tunnel_id in rows:
            tunnel = self.tunnels.get(int(tunnel_id))
            if tunnel is not None:
                self._finish_delete(seq, tunnel)
                log.warning("stream %s request %d (DELETE tunnel %s) was interrupted by the "
                            "stop; finished at start-up: the tunnel is deleted (its SAs may "
                            "already have left the crypto worker, and a removed SA never comes "
                            "back)", stream, index, tunnel_id)
        super()._report_journal()

    def _finish_delete(self, seq: int, tunnel: Tunnel) -> None:
        """One transaction: the tunnel and everything kept for it go, the journal row says
        'applied'."""
        staged = self.stage(TunnelChange(operation=Operation.DELETE, before=tunnel, after=None))
        try:
            self.save_allocation(tunnel.tunnel_id, None)
            self.save_baselines({tunnel.tunnel_id: None})
            if isinstance(tunnel.body, IpsecEncrypt):
                for sa in tunnel.security_associations:
                    self.retire(self.fingerprint(sa.secret))
            self._db.execute("UPDATE journal SET state = 'applied' WHERE seq = ?", (seq,))
        except BaseException:
            staged.rollback()  # no journal row passed: the row stays 'applying'
            raise
        staged.commit()
