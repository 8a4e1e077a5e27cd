"""``tunnelctl stats --reasons``: drops by reason, read from the controller's metrics endpoint.

Why the metrics endpoint and not the API: neither ``tunneloffload.v1alpha1`` nor ``v2`` has a
field for drops by reason (``Counters`` has four drop totals), v2 must keep v1alpha1's field
numbers and types, and adding a field to the public definitions would make this server's API
differ from every other implementation's. The controller already exports the figures for
Prometheus (``--metrics-addr``, controller/metrics.py): the switch's drops by reason
(switch-wide; the switch does not count reasons per tunnel), its parser errors by kind, and the
crypto worker's drops by tunnel and reason. tunnelctl scrapes the same text and parses it with
prometheus-client's own parser, so what it prints is exactly what Prometheus would store.
(docs/cli.md, "Drops by reason"; docs/api.md, "Counters".)
"""

from __future__ import annotations

import urllib.error
import urllib.request
from dataclasses import dataclass, field
from typing import Any

from prometheus_client.parser import text_string_to_metric_families

__all__ = ["DropReasons", "MetricsUnavailable", "metrics_url", "read_drop_reasons"]

PREFIX = "tunneloffload"
SWITCH_DROPS = f"{PREFIX}_switch_drops"
PARSER_ERRORS = f"{PREFIX}_switch_parser_errors"
WORKER_DROPS = f"{PREFIX}_worker_drops"
SCRAPE_ERRORS = f"{PREFIX}_scrape_errors"


class MetricsUnavailable(RuntimeError):
    """The endpoint cannot be read, or the scrape carried no data-plane figures."""


def metrics_url(address: str) -> str:
    """``HOST:PORT`` (the controller's ``--metrics-addr``) or a full URL -> the scrape URL."""
    if address.startswith(("http://", "https://")):
        return address if address.rstrip("/").endswith("/metrics") else (
            address.rstrip("/") + "/metrics")
    return f"http://{address}/metrics"


@dataclass(frozen=True, kw_only=True)
class DropReasons:
    """One scrape's drop figures (packets)."""

    switch: dict[str, int] = field(default_factory=dict)           # reason -> packets
    parser_errors: dict[str, int] = field(default_factory=dict)    # kind -> packets
    worker: dict[tuple[int | None, str], int] = field(default_factory=dict)  # (tunnel, reason)

    def rows(self, tunnel_ids: list[int], *, zeros: bool = False) -> list[list[object]]:
        """SOURCE, TUNNEL, REASON, PACKETS rows; worker rows only of ``tunnel_ids`` when given
        (switch rows are switch-wide, always shown)."""
        rows: list[list[object]] = []
        for reason, packets in sorted(self.switch.items()):
            if packets or zeros:
                rows.append(["switch", "-", reason, packets])
        for kind, packets in sorted(self.parser_errors.items()):
            if packets or zeros:
                rows.append(["switch", "-", f"parser_error: {kind}", packets])
        for (tunnel, reason), packets in sorted(self.worker.items(),
                                                key=lambda item: (item[0][0] or 0, item[0][1])):
            if tunnel_ids and tunnel not in tunnel_ids:
                continue
            if packets or zeros:
                rows.append(["worker", "-" if tunnel is None else tunnel, reason, packets])
        return rows

    def readable(self, tunnel_ids: list[int]) -> dict[str, Any]:
        """The figures for ``-o yaml|json`` (zeros included, so a script sees every reason)."""
        return {
            "switch": dict(sorted(self.switch.items())),
            "switchParserErrors": dict(sorted(self.parser_errors.items())),
            "worker": [{"tunnelId": tunnel, "reason": reason, "packets": packets}
                       for (tunnel, reason), packets in sorted(
                           self.worker.items(), key=lambda item: (item[0][0] or 0, item[0][1]))
                       if not tunnel_ids or tunnel in tunnel_ids],
        }


def parse_drop_reasons(text: str) -> DropReasons:
    """The drop families of a Prometheus text exposition (prometheus-client's parser)."""
    switch: dict[str, int] = {}
    parser_errors: dict[str, int] = {}
    worker: dict[tuple[int | None, str], int] = {}
    families = {family.name: family for family in text_string_to_metric_families(text)}
    for sample in (families[SWITCH_DROPS].samples if SWITCH_DROPS in families else ()):
        if sample.name.endswith("_total"):
            switch[sample.labels["reason"]] = int(sample.value)
    for sample in (families[PARSER_ERRORS].samples if PARSER_ERRORS in families else ()):
        if sample.name.endswith("_total"):
            parser_errors[sample.labels["error"]] = int(sample.value)
    for sample in (families[WORKER_DROPS].samples if WORKER_DROPS in families else ()):
        if sample.name.endswith("_total"):
            tunnel = sample.labels.get("tunnel", "")
            worker[(int(tunnel) if tunnel else None, sample.labels["reason"])] = int(sample.value)
    if WORKER_DROPS not in families:
        # The collector leaves every data-plane family out of a scrape whose read failed.
        raise MetricsUnavailable("the controller could not read the data plane for this scrape "
                                 f"({SCRAPE_ERRORS} counts them; see its log)")
    return DropReasons(switch=switch, parser_errors=parser_errors, worker=worker)


def read_drop_reasons(address: str, *, timeout: float) -> DropReasons:
    """Scrape ``address`` and return its drop figures; one-line MetricsUnavailable otherwise."""
    url = metrics_url(address)
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:  # noqa: S310 - http(s)
            text = response.read().decode("utf-8")
    except urllib.error.HTTPError as error:
        raise MetricsUnavailable(f"{url}: HTTP {error.code} {error.reason} (is this the "
                                 "controller's --metrics-addr?)") from None
    except (urllib.error.URLError, OSError) as error:
        reason = getattr(error, "reason", None) or error
        raise MetricsUnavailable(f"cannot read {url}: {reason} (is the controller running with "
                                 "--metrics-addr at that address? fix it with --metrics "
                                 "HOST:PORT)") from None
    try:
        return parse_drop_reasons(text)
    except (ValueError, KeyError) as error:
        raise MetricsUnavailable(f"{url}: not the controller's metrics ({error})") from None
