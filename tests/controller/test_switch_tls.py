"""The switch channel's PKI (controller.switch_pki) and the controller's --switch-ca/-cert/-key:
what is generated, what is refused at start-up, and how gRPC's TLS failures are explained.
The real handshakes are in tests/controller_dp/test_dp_switch_tls.py.

Run: .venv/bin/python -m pytest tests/controller/test_switch_tls.py -q
"""

from __future__ import annotations

import ipaddress
import stat
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID

from controller.settings import Settings, parse_settings
from controller.switch_pki import DEFAULT_SWITCH_NAMES, ensure_switch_pki
from controller.tls import SwitchChannelTls, explain_switch_failure, switch_channel_tls


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def load(path: Path) -> x509.Certificate:
    return x509.load_pem_x509_certificate(path.read_bytes())


def test_pki_is_one_ca_signing_a_server_and_a_client_certificate(tmp_path: Path) -> None:
    pki = ensure_switch_pki(tmp_path / "switch-tls")
    assert mode(tmp_path / "switch-tls") == 0o700
    assert mode(pki.switch_key) == mode(pki.controller_key) == 0o600
    # The CA's key is not kept: only the two leaf keys exist.
    assert sorted(p.name for p in (tmp_path / "switch-tls").iterdir()) == [
        "ca.crt", "controller.crt", "controller.key", "switch.crt", "switch.key"]
    ca, switch, controller = (load(p) for p in (pki.ca_cert, pki.switch_cert,
                                                 pki.controller_cert))
    switch.verify_directly_issued_by(ca)
    controller.verify_directly_issued_by(ca)
    assert ca.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    usage = x509.ExtendedKeyUsage
    assert list(switch.extensions.get_extension_for_class(usage).value) == [
        ExtendedKeyUsageOID.SERVER_AUTH]
    assert list(controller.extensions.get_extension_for_class(usage).value) == [
        ExtendedKeyUsageOID.CLIENT_AUTH]
    san = switch.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert set(san.get_values_for_type(x509.DNSName)) == {"localhost", "switch"}
    assert set(san.get_values_for_type(x509.IPAddress)) == {
        ipaddress.ip_address("127.0.0.1"), ipaddress.ip_address("::1")}
    assert set(DEFAULT_SWITCH_NAMES) == {"localhost", "switch", "127.0.0.1", "::1"}


def test_pki_is_kept_and_regenerated_whole_when_a_file_is_lost(tmp_path: Path) -> None:
    first = ensure_switch_pki(tmp_path)
    ca_pem = first.ca_cert.read_bytes()
    assert ensure_switch_pki(tmp_path).ca_cert.read_bytes() == ca_pem
    first.controller_key.unlink()
    second = ensure_switch_pki(tmp_path)
    assert second.ca_cert.read_bytes() != ca_pem
    load(second.switch_cert).verify_directly_issued_by(load(second.ca_cert))
    load(second.controller_cert).verify_directly_issued_by(load(second.ca_cert))


def test_pki_refuses_a_key_others_can_read(tmp_path: Path) -> None:
    pki = ensure_switch_pki(tmp_path)
    pki.controller_key.chmod(0o640)
    with pytest.raises(PermissionError, match="chmod 600"):
        ensure_switch_pki(tmp_path)


def test_switch_flags_parse_and_go_together(tmp_path: Path) -> None:
    settings = parse_settings(["--switch-ca", "ca.crt", "--switch-cert", "c.crt",
                               "--switch-key", "c.key"])
    assert (settings.switch_ca, settings.switch_cert, settings.switch_key) == (
        Path("ca.crt"), Path("c.crt"), Path("c.key"))
    with pytest.raises(ValueError, match="--switch-cert and --switch-key go together"):
        Settings(switch_ca=Path("ca"), switch_cert=Path("c"))
    with pytest.raises(ValueError, match="--switch-cert needs --switch-ca"):
        Settings(switch_cert=Path("c"), switch_key=Path("k"))
    assert switch_channel_tls(Settings(state_dir=tmp_path)) is None  # plaintext by default


def test_switch_files_are_checked_at_start_up(tmp_path: Path) -> None:
    pki = ensure_switch_pki(tmp_path / "pki")
    good = Settings(state_dir=tmp_path, switch_ca=pki.ca_cert, switch_cert=pki.controller_cert,
                    switch_key=pki.controller_key)
    assert switch_channel_tls(good) == SwitchChannelTls(
        ca=pki.ca_cert, cert=pki.controller_cert, key=pki.controller_key)
    missing = tmp_path / "missing.crt"
    with pytest.raises(ValueError, match=f"--switch-ca {missing}: No such file"):
        switch_channel_tls(Settings(state_dir=tmp_path, switch_ca=missing))
    with pytest.raises(ValueError, match="--switch-ca .*: no PEM certificate"):
        switch_channel_tls(Settings(state_dir=tmp_path, switch_ca=pki.controller_key))
    with pytest.raises(ValueError, match="is not the key of the certificate in --switch-cert"):
        switch_channel_tls(Settings(state_dir=tmp_path, switch_ca=pki.ca_cert,
                                    switch_cert=pki.controller_cert, switch_key=pki.switch_key))
    pki.controller_key.chmod(0o604)
    with pytest.raises(PermissionError, match="accessible by others"):
        switch_channel_tls(good)


def test_credentials_carry_paths_so_no_key_is_in_any_repr(tmp_path: Path) -> None:
    pki = ensure_switch_pki(tmp_path)
    tls = SwitchChannelTls(ca=pki.ca_cert, cert=pki.controller_cert, key=pki.controller_key)
    body = pki.controller_key.read_text().splitlines()[1]
    assert body not in repr(tls.credentials()) and body not in repr(tls)
    assert tls.credentials().private_key == pki.controller_key


TLS = SwitchChannelTls(ca=Path("/s/ca.crt"), cert=Path("/s/controller.crt"),
                       key=Path("/s/controller.key"))
NO_CERT = SwitchChannelTls(ca=Path("/s/ca.crt"))
PREFIX = "failed to connect to all addresses; last error: "
VERIFY = (PREFIX + "UNKNOWN: ipv4:127.0.0.1:1: Tls handshake failed (TSI_PROTOCOL_FAILURE): "
          "SSL_ERROR_SSL: error:1000007d:SSL routines:OPENSSL_internal:CERTIFICATE_VERIFY_FAILED:"
          " unable to get local issuer certificate: OK")
PLAIN_SERVER = (PREFIX + "UNKNOWN: ipv4:127.0.0.1:1: Tls handshake failed "
                "(TSI_PROTOCOL_FAILURE): SSL_ERROR_SSL: error:100000f7:SSL routines:"
                "OPENSSL_internal:WRONG_VERSION_NUMBER: Invalid certificate verification context")
CLOSED = PREFIX + "UNAVAILABLE: ipv4:127.0.0.1:1: Socket closed"
REFUSED = PREFIX + "UNAVAILABLE: ipv4:127.0.0.1:1: Connection refused"


@pytest.mark.parametrize(("tls", "message", "expected"), [
    (TLS, VERIFY, "the switch's certificate does not verify against --switch-ca /s/ca.crt "
                  "(unable to get local issuer certificate)"),
    (TLS, PLAIN_SERVER, "the switch does not speak TLS"),
    (TLS, CLOSED, "it refused the client certificate --switch-cert /s/controller.crt"),
    (NO_CERT, CLOSED, "it requires a client certificate; give --switch-cert and --switch-key"),
    (None, CLOSED, "it likely requires TLS; give --switch-ca"),
])
def test_tls_failures_are_explained(tls: SwitchChannelTls | None, message: str,
                                    expected: str) -> None:
    explained = explain_switch_failure(tls, f"UNAVAILABLE {message}")
    assert explained is not None and expected in explained


@pytest.mark.parametrize("tls", [TLS, None])
def test_a_switch_that_is_down_is_not_a_tls_problem(tls: SwitchChannelTls | None) -> None:
    assert explain_switch_failure(tls, f"UNAVAILABLE {REFUSED}") is None
