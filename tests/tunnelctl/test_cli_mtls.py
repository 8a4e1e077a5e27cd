"""tunnelctl --cert/--key against a controller started with --tls-client-ca (mutual TLS).

Run just this file: .venv/bin/python -m pytest tests/tunnelctl/test_cli_mtls.py -q
"""

from __future__ import annotations

from pathlib import Path

from tc_support import start_controller, stop, write_client_ca_and_cert


def test_mutual_tls_needs_the_client_certificate(tmp_path: Path) -> None:
    ca, cert, key = write_client_ca_and_cert(tmp_path)
    process, server = start_controller(tmp_path / "state", "--tls-client-ca", str(ca))
    try:
        ready = server.cli("--cert", str(cert), "--key", str(key), "health", "--wait", "30")
        assert ready.status == 0, ready.err + server.log.read_text()

        listed = server.cli("--cert", str(cert), "--key", str(key), "list")
        assert (listed.status, listed.out) == (0, "ID  KIND  MATCH  NEXT  DETAILS\n")

        refused = server.cli("--timeout", "3", "list")
        assert refused.status == 3
        assert refused.err == (
            f"error: cannot reach the controller at {server.address}: {server.address} closed "
            "the TLS handshake: it probably requires a client certificate (mutual TLS, "
            "--tls-client-ca): pass --cert and --key\n")

        half = server.cli("--cert", str(cert), "list")  # a bad argument: nothing is sent
        assert half.status == 2
        assert half.err == "error: --cert and --key go together (mutual TLS needs both)\n"
    finally:
        stop(process)
