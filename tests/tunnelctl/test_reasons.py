"""tunnelctl/reasons.py: the scrape text -> drops by reason (prometheus-client's parser), the rows
and filters `stats --reasons` prints, and one-line failures for a scrape without data-plane
figures and for an HTTP endpoint that is not the controller's. (The real controller end to end:
tests/examples/test_drop_reasons.py.)

Run: .venv/bin/python -m pytest tests/tunnelctl/test_reasons.py -q
"""

from __future__ import annotations

import http.server
import threading
from collections.abc import Iterator

import pytest

from tunnelctl.reasons import MetricsUnavailable, metrics_url, parse_drop_reasons, read_drop_reasons

SCRAPE = """\
# TYPE tunneloffload_worker_drops_total counter
tunneloffload_worker_drops_total{reason="icv_failure",tunnel="40000"} 2.0
tunneloffload_worker_drops_total{reason="replay",tunnel="30000"} 1.0
tunneloffload_worker_drops_total{reason="unknown_sa",tunnel=""} 4.0
# TYPE tunneloffload_switch_drops_total counter
tunneloffload_switch_drops_total{reason="route_miss"} 3.0
tunneloffload_switch_drops_total{reason="pass_limit"} 0.0
# TYPE tunneloffload_switch_parser_errors_total counter
tunneloffload_switch_parser_errors_total{error="no_match"} 1.0
"""


def test_rows_and_filters() -> None:
    reasons = parse_drop_reasons(SCRAPE)
    assert reasons.rows([]) == [
        ["switch", "-", "route_miss", 3], ["switch", "-", "parser_error: no_match", 1],
        ["worker", "-", "unknown_sa", 4], ["worker", 30000, "replay", 1],
        ["worker", 40000, "icv_failure", 2]]
    # IDs keep their worker rows only; switch rows are switch-wide and stay.
    assert [row[:3] for row in reasons.rows([40000])] == [
        ["switch", "-", "route_miss"], ["switch", "-", "parser_error: no_match"],
        ["worker", 40000, "icv_failure"]]
    assert reasons.readable([30000])["worker"] == [
        {"tunnelId": 30000, "reason": "replay", "packets": 1}]
    assert reasons.readable([])["switch"] == {"pass_limit": 0, "route_miss": 3}


def test_a_scrape_without_data_plane_figures_is_an_error() -> None:
    failed = ("# TYPE tunneloffload_scrape_errors_total counter\n"
              "tunneloffload_scrape_errors_total 1\n")
    with pytest.raises(MetricsUnavailable, match="could not read the data plane"):
        parse_drop_reasons(failed)


def test_urls() -> None:
    assert metrics_url("localhost:9464") == "http://localhost:9464/metrics"
    assert metrics_url("http://gw:9464") == "http://gw:9464/metrics"
    assert metrics_url("https://gw/metrics") == "https://gw/metrics"


@pytest.fixture
def not_found_server() -> Iterator[str]:
    class NotFound(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - the stdlib's name
            self.send_error(404)

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.HTTPServer(("127.0.0.1", 0), NotFound)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_an_endpoint_that_is_not_the_controllers(not_found_server: str) -> None:
    with pytest.raises(MetricsUnavailable, match=r"HTTP 404 .*--metrics-addr"):
        read_drop_reasons(not_found_server, timeout=5)
