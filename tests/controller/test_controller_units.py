"""Unit tests of the pure pieces: key layouts, address encodings, cipher properties.

Run just this file: .venv/bin/python -m pytest tests/controller/test_controller_units.py -q
"""

from __future__ import annotations

from ipaddress import IPv4Address

import pytest

from controller.encodings import ipv4_from_fixed32, ipv4_to_fixed32, parse_ipv6, parse_mac
from controller.errors import API_ERRORS, ErrorCode, RequestError
from controller.keys import parse_key
from controller.model import Cipher

KEY32 = bytes(range(1, 33))


@pytest.mark.parametrize(("cipher", "raw", "key", "salt"), [
    (Cipher.AES256_GCM64, KEY32, KEY32, bytes(4)),
    (Cipher.AES256_GCM128, KEY32 + b"SALT", KEY32, b"SALT"),
    (Cipher.AES256_GCM96, (KEY32 + b"SALT").hex().encode(), KEY32, b"SALT"),
    (Cipher.AES256_CCM64, KEY32.hex().upper().encode(), KEY32, bytes(3)),
    (Cipher.AES256_CCM128, KEY32 + b"SAL", KEY32, b"SAL"),
    (Cipher.AES128_GCM64, KEY32[:16] + b"SALT", KEY32[:16], b"SALT"),
    (Cipher.AES128_CCM96, (KEY32[:16] + b"SAL").hex().encode(), KEY32[:16], b"SAL"),
])
def test_key_layouts(cipher: Cipher, raw: bytes, key: bytes, salt: bytes) -> None:
    secret = parse_key(raw, key_len=cipher.key_len, salt_len=cipher.salt_len,
                       cipher_name=cipher.api_name, field="k")
    assert (secret.reveal_key(), secret.reveal_salt()) == (key, salt)


@pytest.mark.parametrize(("cipher", "raw", "needle"), [
    (Cipher.AES256_GCM64, KEY32 + b"SAL", "35 bytes"),          # CCM salt size for a GCM key
    (Cipher.AES256_CCM64, KEY32 + b"SALT", "36 bytes"),         # GCM salt size for a CCM key
    (Cipher.AES128_GCM64, KEY32[:24], "24 bytes"),
    (Cipher.AES256_GCM64, b"g" * 64, "not all hex"),
    (Cipher.AES256_GCM64, b"", "missing"),
])
def test_bad_keys_name_sizes_not_bytes(cipher: Cipher, raw: bytes, needle: str) -> None:
    with pytest.raises(RequestError) as raised:
        parse_key(raw, key_len=cipher.key_len, salt_len=cipher.salt_len,
                  cipher_name=cipher.api_name, field="encryptionKey")
    assert raised.value.code is ErrorCode.INVALID_KEY
    assert needle in str(raised.value) and str(raised.value).startswith("encryptionKey: ")
    assert KEY32.hex() not in str(raised.value)


def test_ipv4_fixed32_is_network_order_on_the_wire() -> None:
    assert ipv4_from_fixed32(33554443) == IPv4Address("11.0.0.2")
    assert ipv4_to_fixed32(IPv4Address("11.0.0.2")) == 0x0200000B
    for text in ("1.2.3.4", "255.0.0.1", "0.0.0.0"):
        assert ipv4_from_fixed32(ipv4_to_fixed32(IPv4Address(text))) == IPv4Address(text)


def test_mac_and_ipv6_accept_raw_and_hex() -> None:
    assert parse_mac(b"102030405060", field="m") == bytes.fromhex("102030405060")
    assert parse_mac(bytes(6), field="m") == bytes(6)
    with pytest.raises(RequestError, match="m: '10:20:30:40:50:60'"):
        parse_mac(b"10:20:30:40:50:60", field="m")
    assert str(parse_ipv6(b"20010db8000000000000000000000001", field="a")) == "2001:db8::1"
    with pytest.raises(RequestError, match="give 16 raw bytes or 32 hex characters"):
        parse_ipv6(b"2001:db8::1", field="a")


def test_cipher_properties() -> None:
    assert (Cipher.AES256_GCM64.key_len, Cipher.AES256_GCM64.salt_len,
            Cipher.AES256_GCM64.icv_len) == (32, 4, 8)
    assert (Cipher.AES128_CCM96.key_len, Cipher.AES128_CCM96.salt_len,
            Cipher.AES128_CCM96.icv_len) == (16, 3, 12)
    assert Cipher.AES128_GCM128.icv_len == 16
    assert Cipher.AES256_CCM128.api_name == "_aes256ccm128"


def test_every_error_code_has_an_api_mapping() -> None:
    assert set(API_ERRORS) == set(ErrorCode)


@pytest.mark.parametrize("listen", ["localhost", "localhost:", ":3443", "localhost:https"])
async def test_bad_listen_address_is_refused(tmp_path, listen: str) -> None:
    from controller.server import create_server
    from controller.settings import Settings

    with pytest.raises(ValueError, match="is not HOST:PORT"):
        await create_server(Settings(listen=listen, state_dir=tmp_path))
