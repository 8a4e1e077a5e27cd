"""Every example of examples/ created with tunnelctl on a real stack (p4sim running p4src/, the
crypto worker, the controller with its P4Runtime data plane) and driven with
examples/send_traffic.py: the frames that come out are decoded (ESP decrypted with the SA's key)
and checked layer by layer, and the tunnels' counters moved by what was sent.

Run: .venv/bin/python -m pytest tests/examples/test_examples_traffic.py -q
"""

from __future__ import annotations

from pathlib import Path

from examples_support import EXAMPLES
from stack import Stack

PAYLOAD = '"tunnel offload example packet {}"'
RULE_MACS = "Ether 10:20:30:40:50:60 > 60:50:40:30:20:10"
INNER_UDP = "UDP 40000 > 5000"


def out_lines(output: str) -> list[tuple[int, list[str]]]:
    """send_traffic's `out port P: layer / layer ...` lines as (port, layers)."""
    found = []
    for line in output.splitlines():
        if line.startswith("out port "):
            port, _, layers = line.removeprefix("out port ").partition(": ")
            found.append((int(port), layers.split(" / ")))
    return found


def create(live: Stack, example: str) -> None:
    created = live.tunnelctl("create", "-f", str(EXAMPLES / example))
    assert created.status == 0, created.err


def in_out_packets(live: Stack, tunnel_id: int) -> tuple[int, int]:
    shown = live.tunnelctl("stats", str(tunnel_id))
    assert shown.status == 0, shown.err
    row = shown.out.splitlines()[1].split()
    assert row[0] == str(tunnel_id)
    return int(row[1]), int(row[3])


def without_udp_ports(layers: list[str]) -> list[str]:
    """The Geneve UDP source port is a flow hash: checked to be a port, then left out."""
    shown = []
    for layer in layers:
        if layer.startswith("UDP ") and layer.endswith(" > 6081"):
            assert 0 < int(layer.split()[1]) < 65536
            layer = "UDP * > 6081"
        shown.append(layer)
    return shown


def test_plain_ipv4_and_ipv6_are_routed(live: Stack) -> None:
    """No tunnel: plain IPv4 takes the default route (port 7), plain IPv6 2001:db8::/32 (6)."""
    v4 = live.send_traffic("--src", "198.51.100.1", "--dst", "198.51.100.2", "--count", "2",
                           "--expect", "2")
    assert v4.status == 0, v4.err
    assert out_lines(v4.out) == [
        (7, ["Ether 02:00:00:00:00:aa > 02:00:00:00:0b:07", "IPv4 198.51.100.1 > 198.51.100.2",
             INNER_UDP, PAYLOAD.format(n)]) for n in range(2)]
    v6 = live.send_traffic("--src", "2001:db8::1", "--dst", "2001:db8::2", "--count", "1",
                           "--expect", "1")
    assert v6.status == 0, v6.err
    assert "IPv6 2001:db8::1 > 2001:db8::2" in v6.out.splitlines()[0]   # what was sent
    assert out_lines(v6.out) == [
        (6, ["Ether 02:00:00:00:00:aa > 02:00:00:00:0b:06", "IPv6 2001:db8::1 > 2001:db8::2",
             INNER_UDP, PAYLOAD.format(0)])]


def test_example_1_ipsec_geneve(live: Stack, key_files: dict[int, Path]) -> None:
    """ESP-in-UDP (transport, NAT-T) SPI 780 made by the peer is decrypted by 10000 and leaves
    in Geneve 5.5.5.5 -> 6.6.6.6 VNI 500 (10001) on port 1; Geneve VNI 500 11.0.0.1 -> 11.0.0.2
    is decapsulated by 10002 and its inner packet leaves ESP-encrypted by 10003 (tunnel NAT-T
    11.0.0.2 -> 11.0.0.1, SPI 4587) on port 2, where the peer's SA decrypts it back to the
    packet sent. (An encrypt key is used once per stack: a retired one is refused.)"""
    create(live, "1-ipsec-geneve.yaml")
    sent = live.send_traffic("--src", "11.0.0.1", "--dst", "11.0.0.2", "--esp", "780",
                             "--cipher", "_aes256gcm64", "--key-file", str(key_files[780]),
                             "--nat-t", "--seq", "1", "--count", "2", "--expect", "2")
    assert sent.status == 0, sent.err + sent.out
    assert sent.out.splitlines()[0] == (
        "sent 2 packet(s) into port 0: IPv4 11.0.0.1 > 11.0.0.2 / UDP 4500 > 4500 / ESP spi 780 "
        f"seq 1 encrypted _aes256gcm64 / {INNER_UDP} / {PAYLOAD.format(0)}")
    assert [(port, without_udp_ports(layers)) for port, layers in out_lines(sent.out)] == [
        (1, ["Ether 02:00:00:00:00:aa > 02:00:00:00:0b:01", "IPv4 5.5.5.5 > 6.6.6.6",
             "UDP * > 6081", "Geneve vni 500 options 1", RULE_MACS, "IPv4 11.0.0.1 > 11.0.0.2",
             INNER_UDP, PAYLOAD.format(n)]) for n in range(2)]
    assert in_out_packets(live, 10000) == (2, 2)
    assert in_out_packets(live, 10001) == (2, 2)

    # The other chain of the file: Geneve in, ESP out.
    sent = live.send_traffic("--src", "172.16.1.1", "--dst", "172.16.2.2", "--geneve", "500",
                             "--geneve-src", "11.0.0.1", "--geneve-dst", "11.0.0.2",
                             "--decrypt", f"4587:_aes256gcm64:{key_files[4587]}",
                             "--count", "2", "--expect", "2")
    assert sent.status == 0, sent.err + sent.out
    assert out_lines(sent.out) == [
        (2, ["Ether 02:00:00:00:00:aa > 02:00:00:00:0b:02", "IPv4 11.0.0.2 > 11.0.0.1",
             "UDP 4500 > 4500", f"ESP spi 4587 seq {n + 1} decrypted _aes256gcm64",
             "IPv4 172.16.1.1 > 172.16.2.2", INNER_UDP, PAYLOAD.format(n)]) for n in range(2)]
    assert in_out_packets(live, 10002) == (2, 2)
    assert in_out_packets(live, 10003) == (2, 2)


def test_example_2_four_tunnel_chain(live: Stack, key_files: dict[int, Path]) -> None:
    """ESP (tunnel mode) SPI 980 around Geneve around a packet: decrypted (20000), decapsulated
    (20001), re-encapsulated in Geneve 7.7.7.7 -> 8.8.8.8 VNI 700 (20002) and ESP-encrypted in
    transport mode with SPI 45888 (20003) on port 3; decrypted, the Geneve frame is inside."""
    create(live, "2-four-tunnel-chain.yaml")
    sent = live.send_traffic("--src", "172.16.3.1", "--dst", "172.16.3.2", "--geneve", "900",
                             "--geneve-src", "192.0.2.1", "--geneve-dst", "192.0.2.2",
                             "--esp", "980", "--key-file", str(key_files[980]),
                             "--tunnel-src", "12.0.0.1", "--tunnel-dst", "12.0.0.2",
                             "--decrypt", f"45888:_aes256gcm64:{key_files[45888]}",
                             "--seq", "1", "--count", "1", "--expect", "1")
    assert sent.status == 0, sent.err + sent.out
    assert [(port, without_udp_ports(layers)) for port, layers in out_lines(sent.out)] == [
        (3, ["Ether 02:00:00:00:00:aa > 02:00:00:00:0b:03", "IPv4 7.7.7.7 > 8.8.8.8",
             "ESP spi 45888 seq 1 decrypted _aes256gcm64", "UDP * > 6081",
             "Geneve vni 700 options 1", RULE_MACS, "IPv4 172.16.3.1 > 172.16.3.2", INNER_UDP,
             PAYLOAD.format(0)])]
    for tunnel_id in (20000, 20001, 20002, 20003):
        assert in_out_packets(live, tunnel_id) == (1, 1), tunnel_id


def test_example_3_rematch_chain(live: Stack, key_files: dict[int, Path]) -> None:
    """2.2.2.2 -> 3.3.3.3 (send_traffic's default packet) is encrypted by 30000 (tunnel mode
    14.0.0.2 -> 14.0.0.1, SPI 50000), re-matched on its new outer IPs and wrapped in Geneve
    9.9.9.9 -> 10.10.10.10 VNI 701 by 30001, out of port 4; the ESP inside decrypts to it."""
    create(live, "3-rematch-chain.yaml")
    sent = live.send_traffic("--decrypt", f"50000:_aes256gcm64:{key_files[50000]}",
                             "--expect", "3")
    assert sent.status == 0, sent.err + sent.out
    assert [(port, without_udp_ports(layers)) for port, layers in out_lines(sent.out)] == [
        (4, ["Ether 02:00:00:00:00:aa > 02:00:00:00:0b:04", "IPv4 9.9.9.9 > 10.10.10.10",
             "UDP * > 6081", "Geneve vni 701 options 1", RULE_MACS, "IPv4 14.0.0.2 > 14.0.0.1",
             f"ESP spi 50000 seq {n + 1} decrypted _aes256gcm64", "IPv4 2.2.2.2 > 3.3.3.3",
             INNER_UDP, PAYLOAD.format(n)]) for n in range(3)]
    assert in_out_packets(live, 30000) == (3, 3)
    assert in_out_packets(live, 30001) == (3, 3)


def test_example_4_fan_out(live: Stack, key_files: dict[int, Path]) -> None:
    """ESP-in-UDP (tunnel mode 2.2.2.2 -> 3.3.3.3, SPI 80000) decrypted by 40000 leaves by the
    inner addresses: 15.0.0.x in VNI 701 (40001, port 4), 16.0.0.x in VNI 702 (40002, port 5);
    an inner packet neither matches is decrypted and routed as it is (examples/routes.txt's
    default route, port 7)."""
    create(live, "4-fan-out.yaml")
    esp = ["--esp", "80000", "--key-file", str(key_files[80000]), "--nat-t",
           "--tunnel-src", "2.2.2.2", "--tunnel-dst", "3.3.3.3"]
    for seq, (net, vni, port, source, destination) in enumerate(
            (("15.0.0", 701, 4, "9.9.9.9", "10.10.10.10"),
             ("16.0.0", 702, 5, "11.11.11.11", "12.12.12.12")), 1):
        sent = live.send_traffic("--src", f"{net}.2", "--dst", f"{net}.1", *esp,
                                 "--seq", str(seq), "--count", "1", "--expect", "1")
        assert sent.status == 0, sent.err + sent.out
        assert [(p, without_udp_ports(layers)) for p, layers in out_lines(sent.out)] == [
            (port, [f"Ether 02:00:00:00:00:aa > 02:00:00:00:0b:0{port}",
                    f"IPv4 {source} > {destination}", "UDP * > 6081",
                    f"Geneve vni {vni} options 1", RULE_MACS, f"IPv4 {net}.2 > {net}.1",
                    INNER_UDP, PAYLOAD.format(0)])]
    other = live.send_traffic("--src", "17.0.0.2", "--dst", "17.0.0.1", *esp, "--seq", "3",
                              "--count", "1", "--expect", "1")
    assert other.status == 0, other.err + other.out
    assert out_lines(other.out) == [
        (7, ["Ether 02:00:00:00:00:aa > 02:00:00:00:0b:07", "IPv4 17.0.0.2 > 17.0.0.1",
             INNER_UDP, PAYLOAD.format(0)])]
    assert in_out_packets(live, 40000) == (3, 3)
    assert in_out_packets(live, 40001) == (1, 1)
    assert in_out_packets(live, 40002) == (1, 1)
