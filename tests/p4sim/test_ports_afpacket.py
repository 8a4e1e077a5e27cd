"""A switch port bound to a Linux interface (AF_PACKET), on a veth pair in a private netns.

Run: .venv/bin/python -m pytest tests/p4sim/test_ports_afpacket.py -q  (needs root and unshare)
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap

import pytest

pytestmark = pytest.mark.skipif(
    os.geteuid() != 0 or shutil.which("unshare") is None or shutil.which("ip") is None,
    reason="needs root, unshare and ip to make a network namespace",
)

# Runs inside `unshare --net`: a veth pair p4a/p4b, switch port 5 on p4a, the test on p4b.
SCRIPT = textwrap.dedent(
    """
    import json, socket, subprocess, threading, time
    from p4sim.ports import AfPacketPort, PacketPump

    for cmd in ("ip link add p4a type veth peer name p4b",
                "sysctl -qw net.ipv6.conf.all.disable_ipv6=1",
                "ip link set p4a up", "ip link set p4b up"):
        subprocess.run(cmd.split(), check=True)

    ETHERTYPE = b"\\x88\\xb5"
    VLAN = b"\\x81\\x00\\x00\\x2a"
    seen = []
    tagged_seen = []
    class Reflect:
        def process(self, port, frame):
            if frame[12:16] == VLAN and frame[16:18] == ETHERTYPE:
                tagged_seen.append(frame.hex())
                return []
            if frame[12:14] != ETHERTYPE:
                return []
            seen.append(port)
            return [(port, frame[6:12] + frame[0:6] + frame[12:] + b"!")]

    dataplane = PacketPump(Reflect(), port_transports={5: AfPacketPort("p4a", port=5)})
    dataplane.start()
    peer = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(0x88b5))
    peer.bind(("p4b", 0))
    peer.settimeout(3)
    frame = b"\\x02" * 6 + b"\\x04" * 6 + ETHERTYPE + b"hello-p4sim" + bytes(40)
    peer.send(frame)
    reply = None
    deadline = time.monotonic() + 3
    while time.monotonic() < deadline:
        data, address = peer.recvfrom(65535)
        if address[2] != socket.PACKET_OUTGOING:
            reply = data
            break
    tagged = b"\\x02" * 6 + b"\\x04" * 6 + VLAN + ETHERTYPE + b"tagged" + bytes(40)
    raw = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(0x0003))
    raw.bind(("p4b", 0))
    raw.send(tagged)
    deadline = time.monotonic() + 3
    while not tagged_seen and time.monotonic() < deadline:
        time.sleep(0.01)
    dataplane.stop()
    print(json.dumps({"reply": reply.hex() if reply else None, "seen": seen,
                      "tagged": tagged_seen, "sent_tagged": tagged.hex()}))
    """
)


def test_frames_cross_a_veth_pair_and_our_own_sends_are_not_ingress():
    repo = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    done = subprocess.run(
        ["unshare", "--net", sys.executable, "-c", SCRIPT],
        capture_output=True,
        text=True,
        timeout=30,
        cwd=repo,
        env={**os.environ, "PYTHONPATH": repo},
    )
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout.strip().splitlines()[-1])
    sent = b"\x02" * 6 + b"\x04" * 6 + b"\x88\xb5" + b"hello-p4sim" + bytes(40)
    assert bytes.fromhex(result["reply"]) == sent[6:12] + sent[0:6] + sent[12:] + b"!"
    # The reflected frame went out of p4a; had it been taken as ingress, seen would be [5, 5].
    assert result["seen"] == [5]
    # The kernel strips the 802.1Q tag on receive; the port puts it back from PACKET_AUXDATA.
    assert result["tagged"] == [result["sent_tagged"]]
