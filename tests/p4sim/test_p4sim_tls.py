"""p4sim's P4Runtime TLS options (simple_switch_grpc's names): which combinations are refused,
precise errors for bad files (never their contents), and the two modes served for real —
TLS (any client that trusts the CA) and mutual TLS (only clients with a certificate of it).

Run: .venv/bin/python -m pytest tests/p4sim/test_p4sim_tls.py -q
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest

from controller.switch_pki import SwitchPki, ensure_switch_pki
from p4sim.cli import EXIT_START, EXIT_USAGE, main
from p4sim.p4runtime.device import Device
from p4sim.p4runtime.proto import p4r, p4r_grpc
from p4sim.p4runtime.server import ServerSettings, create_server
from p4sim.p4runtime.tls import ServerTls, TlsConfigError, server_credentials, server_tls


@pytest.fixture
def pki(tmp_path: Path) -> SwitchPki:
    return ensure_switch_pki(tmp_path / "pki")


def options(pki: SwitchPki, **overrides: object) -> dict[str, object]:
    return {"ssl": True, "cert": pki.switch_cert, "key": pki.switch_key,
            "cacert": pki.ca_cert, "client_auth": True, **overrides}


def test_without_ssl_the_server_is_plaintext() -> None:
    assert server_tls(ssl=False, cert=None, key=None, cacert=None, client_auth=False) is None


@pytest.mark.parametrize(("overrides", "message"), [
    ({"ssl": False}, "--grpc-server-cert, --grpc-server-key, --grpc-server-cacert, "
                     "--grpc-server-with-client-auth given without --grpc-server-ssl"),
    ({"ssl": False, "cert": None, "key": None, "cacert": None},
     "--grpc-server-with-client-auth given without --grpc-server-ssl"),
    ({"cert": None}, "--grpc-server-ssl needs --grpc-server-cert"),
    ({"key": None}, "--grpc-server-ssl needs --grpc-server-key"),
    ({"cacert": None}, "--grpc-server-with-client-auth needs --grpc-server-cacert"),
])
def test_option_combinations_that_are_refused(pki: SwitchPki, overrides: dict[str, object],
                                              message: str) -> None:
    with pytest.raises(TlsConfigError) as refused:
        server_tls(**options(pki, **overrides))  # type: ignore[arg-type]
    assert message in str(refused.value)


def test_bad_files_are_named_and_never_quoted(pki: SwitchPki, tmp_path: Path) -> None:
    missing = tmp_path / "nope.key"
    with pytest.raises(TlsConfigError, match=f"--grpc-server-key {missing}: No such file"):
        server_credentials(ServerTls(cert=pki.switch_cert, key=missing))
    with pytest.raises(TlsConfigError, match="is not the key of the certificate"):
        server_credentials(ServerTls(cert=pki.switch_cert, key=pki.controller_key))
    garbage = tmp_path / "garbage.key"
    garbage.write_text("-----BEGIN PRIVATE KEY-----\nc2VjcmV0LXNlY3JldA==\n"
                       "-----END PRIVATE KEY-----\n")
    garbage.chmod(0o600)
    with pytest.raises(TlsConfigError) as refused:
        server_credentials(ServerTls(cert=pki.switch_cert, key=garbage))
    assert "not an unencrypted PEM private key" in str(refused.value)
    assert "c2VjcmV0" not in str(refused.value)
    with pytest.raises(TlsConfigError, match="--grpc-server-cert .*: no PEM certificate"):
        server_credentials(ServerTls(cert=garbage, key=pki.switch_key))
    pki.switch_key.chmod(0o644)
    with pytest.raises(TlsConfigError, match="accessible by others .*chmod 600"):
        server_credentials(ServerTls(cert=pki.switch_cert, key=pki.switch_key))


def test_cli_exit_status_for_bad_options(pki: SwitchPki, capsys: pytest.CaptureFixture[str]
                                         ) -> None:
    assert main(["run", "--no-p4runtime", "--grpc-server-cert", str(pki.switch_cert)]) \
        == EXIT_USAGE
    assert "given without --grpc-server-ssl" in capsys.readouterr().err
    assert main(["run", "--grpc-addr", "127.0.0.1:0", "--grpc-server-ssl",
                 "--grpc-server-cert", str(pki.switch_cert),
                 "--grpc-server-key", str(pki.controller_key)]) == EXIT_START
    assert "cannot start: --grpc-server-key" in capsys.readouterr().err


def _serve(tls: ServerTls) -> Iterator[str]:
    server, port = create_server(Device(device_id=1, cpu_port=None, default_program=None),
                                 ServerSettings(address="127.0.0.1:0",
                                                credentials=server_credentials(tls)))
    server.start()
    try:
        yield f"127.0.0.1:{port}"
    finally:
        server.stop(grace=None).wait()


def capabilities(address: str, creds: grpc.ChannelCredentials | None) -> grpc.StatusCode:
    channel = (grpc.insecure_channel(address) if creds is None
               else grpc.secure_channel(address, creds))
    with channel:
        try:
            p4r_grpc.P4RuntimeStub(channel).Capabilities(p4r.CapabilitiesRequest(), timeout=5)
        except grpc.RpcError as error:
            return error.code()
    return grpc.StatusCode.OK


def test_tls_without_client_auth_admits_any_client_that_trusts_the_ca(pki: SwitchPki) -> None:
    for address in _serve(ServerTls(cert=pki.switch_cert, key=pki.switch_key)):
        trusting = grpc.ssl_channel_credentials(root_certificates=pki.ca_cert.read_bytes())
        assert capabilities(address, trusting) == grpc.StatusCode.OK
        assert capabilities(address, None) == grpc.StatusCode.UNAVAILABLE  # TLS, not plaintext


def test_mutual_tls_admits_only_certificates_of_the_ca(pki: SwitchPki, tmp_path: Path) -> None:
    other = ensure_switch_pki(tmp_path / "other")
    tls = ServerTls(cert=pki.switch_cert, key=pki.switch_key, cacert=pki.ca_cert,
                    client_auth=True)
    ca = pki.ca_cert.read_bytes()
    for address in _serve(tls):
        assert capabilities(address, grpc.ssl_channel_credentials(root_certificates=ca)) \
            == grpc.StatusCode.UNAVAILABLE
        assert capabilities(address, grpc.ssl_channel_credentials(
            root_certificates=ca, private_key=other.controller_key.read_bytes(),
            certificate_chain=other.controller_cert.read_bytes())) == grpc.StatusCode.UNAVAILABLE
        assert capabilities(address, grpc.ssl_channel_credentials(
            root_certificates=ca, private_key=pki.controller_key.read_bytes(),
            certificate_chain=pki.controller_cert.read_bytes())) == grpc.StatusCode.OK
