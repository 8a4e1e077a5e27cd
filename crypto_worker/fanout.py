"""Sharing one AF_PACKET interface among N worker processes by SA: a PACKET_FANOUT group.

Every frame on the crypto port starts with the crypto shim (crypto_worker/shim.py), whose
16-bit `sa_index` is at byte `SHIM_SA_INDEX_OFFSET`. Each process's receive socket joins one
fanout group of type PACKET_FANOUT_CBPF; the group's classic BPF program (below, four
instructions) returns `sa_index mod N`, and the kernel hands the frame to the member at that
position. So every frame of one SA reaches the same process, which alone holds that SA: its
sequence numbers and replay window stay exact, with no lock shared between processes.

The kernel picks `members[result % members_now]`, members in the order they joined
(net/packet/af_packet.c, fanout_demux_bpf), so the processes must join in their index order
(the supervisor does that), and after a member leaves the others' positions move: a group that
has lost a member no longer sends each SA to its owner (the supervisor then stops the whole
group: crypto_worker/supervisor.py).

Why these socket options in this order (Documentation/networking/packet_mmap.rst, "AF_PACKET
fanout mode"; the kernel refuses PACKET_FANOUT on a socket that is not bound): a bound socket
receives every frame of the interface until it joins the group, so `attach_drop_all` first
gives it a filter that accepts nothing, then it binds, joins (`join`), the group gets its
program (`PACKET_FANOUT_DATA`, after the join: it needs the group), and `detach_filter` removes
the drop-all filter. A socket never holds a frame that is not its own.

Loads use the link-layer base (`SKF_LL_OFF`): the kernel runs the fanout program on the skb as
received, whose data pointer is past the Ethernet header (the 14 bytes the shim occupies) on
the receive path, so an absolute offset from the data pointer would read the wrong bytes.
"""

from __future__ import annotations

import ctypes
import socket
import struct

from crypto_worker.shim import SHIM_BYTES

SOL_PACKET = 263  # linux/socket.h
PACKET_FANOUT = 18  # linux/if_packet.h
PACKET_FANOUT_DATA = 22
PACKET_FANOUT_CBPF = 6
PACKET_FANOUT_FLAG_UNIQUEID = 0x2000  # the kernel picks a free group id (first member only)
PACKET_FANOUT_FLAG_IGNORE_OUTGOING = 0x4000  # Linux 6.10+: no copies of our own transmissions
SO_ATTACH_FILTER = 26  # asm-generic/socket.h
SO_DETACH_FILTER = 27
MAX_MEMBERS = 256  # PACKET_FANOUT_MAX in net/packet/internal.h (older kernels; newer allow more)

# linux/filter.h, linux/bpf_common.h: classic BPF opcodes used below.
_BPF_LD_H_ABS = 0x28  # BPF_LD | BPF_H | BPF_ABS: A = 16-bit big-endian load at k
_BPF_ALU_MOD_K = 0x94  # BPF_ALU | BPF_MOD | BPF_K: A = A % k
_BPF_RET_A = 0x16  # BPF_RET | BPF_A
_BPF_RET_K = 0x06  # BPF_RET | BPF_K
SKF_LL_OFF = -0x200000  # loads relative to the link-layer (MAC) header
# crypto_shim_t: version, op, flags, next_action (one byte each), then sa_index (16 bits).
SHIM_SA_INDEX_OFFSET = 4
assert SHIM_SA_INDEX_OFFSET + 2 <= SHIM_BYTES


class _SockFilter(ctypes.Structure):
    _fields_ = [("code", ctypes.c_uint16), ("jt", ctypes.c_uint8), ("jf", ctypes.c_uint8),
                ("k", ctypes.c_uint32)]


class _SockFprog(ctypes.Structure):
    _fields_ = [("len", ctypes.c_uint16), ("filter", ctypes.POINTER(_SockFilter))]


def _instruction(code: int, k: int) -> tuple[int, int, int, int]:
    return (code, 0, 0, k & 0xFFFFFFFF)


def owner_program(members: int) -> list[tuple[int, int, int, int]]:
    """The fanout program: `sa_index mod members`, sa_index read from the shim.

    A frame too short to hold the shim's sa_index ends the program with 0 (the kernel's rule
    for a load out of bounds), so it goes to member 0, which counts it MALFORMED."""
    if not 1 <= members <= 0xFFFF:
        raise ValueError(f"members: {members}, must be 1 … 65535")
    return [
        _instruction(_BPF_LD_H_ABS, SKF_LL_OFF + SHIM_SA_INDEX_OFFSET),
        _instruction(_BPF_ALU_MOD_K, members),
        _instruction(_BPF_RET_A, 0),
    ]


def owner_of(sa_index: int, members: int) -> int:
    """Which member the program sends `sa_index` to: the one place the rule is in Python."""
    return sa_index % members


def _setsockopt_program(sock: socket.socket, level: int, option: int,
                        program: list[tuple[int, int, int, int]]) -> None:
    instructions = (_SockFilter * len(program))(*(_SockFilter(*i) for i in program))
    fprog = _SockFprog(len(program), ctypes.cast(instructions, ctypes.POINTER(_SockFilter)))
    # The kernel copies the program during the call; `instructions` is alive until it returns.
    sock.setsockopt(level, option, bytes(fprog))


def attach_drop_all(sock: socket.socket) -> None:
    """A socket filter that accepts nothing (until `detach_filter`)."""
    _setsockopt_program(sock, socket.SOL_SOCKET, SO_ATTACH_FILTER, [_instruction(_BPF_RET_K, 0)])


def detach_filter(sock: socket.socket) -> None:
    sock.setsockopt(socket.SOL_SOCKET, SO_DETACH_FILTER, 0)


def join(sock: socket.socket, *, group: int | None, members: int) -> int:
    """Joins the bound `sock` to fanout group `group` (None: a new group with an id the kernel
    picks) and sets the group's program for `members` members; returns the group id.

    Own transmissions: the group ignores outgoing frames where the kernel knows the flag
    (Linux 6.10+); older kernels deliver them and the port drops them by pkttype."""
    flag_sets = (PACKET_FANOUT_FLAG_IGNORE_OUTGOING, 0)
    error: OSError | None = None
    for flags in flag_sets:
        mode = PACKET_FANOUT_CBPF | flags
        try:
            if group is None:
                value = (mode | PACKET_FANOUT_FLAG_UNIQUEID) << 16
            else:
                value = (mode << 16) | group
            sock.setsockopt(SOL_PACKET, PACKET_FANOUT, value)
            break
        except OSError as failure:
            error = failure
    else:
        assert error is not None
        raise error
    group_id = struct.unpack("=I", sock.getsockopt(SOL_PACKET, PACKET_FANOUT, 4))[0] & 0xFFFF
    _setsockopt_program(sock, SOL_PACKET, PACKET_FANOUT_DATA, owner_program(members))
    return group_id
