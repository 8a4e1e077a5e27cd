"""The floor of bench/crypto/run.py: ESP as a straightforward Python implementation does it, for
exactly the frames the bench sends (tunnel mode, IPv4 outer header without options, no NAT-T,
AES-GCM with a 16-byte ICV), with none of the worker's checks, SA table, counters or port I/O.

Per frame: encrypt takes a sequence number, pads, seals and writes the outer length and header
checksum; decrypt checks the replay window, opens, strips the trailer, writes the same two
fields. One loop, everything in locals. What the worker costs above this floor is its own
per-frame work (shim parse, the checks of docs/crypto-worker.md "ESP behaviour", counters) and
its port I/O; the bench prints the worker's rate as a ratio to it. `check` proves the floor does
the real work: its output equals the worker's for the same frames and sequence numbers.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

SHIM = 16
ETH = 14
IP_HEADER = 20
ESP_AT = ETH + IP_HEADER  # in the frame
ESP_HEADER = 8
IV = 8
NEXT_HEADER_AT = 9  # in the shim
REPLAY_WINDOW = 1024


def _ipv4_header(header: bytes, total_length: int) -> bytes:
    """`header` (20 bytes) with its total length set and its checksum recomputed."""
    zeroed = header[:2] + total_length.to_bytes(2, "big") + header[4:10] + b"\0\0" + header[12:]
    folded = int.from_bytes(zeroed, "big") % 0xFFFF  # one's-complement sum of the words
    return zeroed[:10] + (0xFFFF - folded if folded else 0).to_bytes(2, "big") + zeroed[12:]


def encrypt_loop(key: bytes, salt: bytes, spi: int) -> Callable[[list[bytes]], list[bytes]]:
    """A function sealing `shim | frame` messages as the worker does, sequence numbers from 1."""
    seal = AESGCM(key).encrypt
    spi_bytes = spi.to_bytes(4, "big")
    trailers = [bytes(range(1, pad + 1)) + bytes((pad, 4)) for pad in range(4)]  # next header 4
    state = [0]

    def run(messages: list[bytes]) -> list[bytes]:
        sequence = state[0]
        out = []
        for message in messages:
            sequence += 1
            iv = sequence.to_bytes(IV, "big")
            payload = message[SHIM + ESP_AT + ESP_HEADER:]
            sealed = seal(salt + iv, payload + trailers[-(len(payload) + 2) % 4],
                          spi_bytes + iv[4:])
            header = _ipv4_header(message[SHIM + ETH:SHIM + ESP_AT],
                                  IP_HEADER + ESP_HEADER + IV + len(sealed))
            out.append(b"".join((message[:SHIM + ETH], header, spi_bytes, iv[4:], iv, sealed)))
        state[0] = sequence
        return out

    return run


def decrypt_loop(key: bytes, salt: bytes) -> Callable[[list[bytes]], list[bytes]]:
    """A function opening `shim | ESP frame` messages, with a replay window of REPLAY_WINDOW."""
    open_ = AESGCM(key).decrypt
    state = [0, 0]  # top, bitmap
    mask = (1 << REPLAY_WINDOW) - 1

    def run(messages: list[bytes]) -> list[bytes]:
        top, bitmap = state
        out = []
        for message in messages:
            frame = message[SHIM:]
            sequence = int.from_bytes(frame[ESP_AT + 4:ESP_AT + 8], "big")
            if sequence <= top and (top - sequence >= REPLAY_WINDOW
                                    or bitmap >> (top - sequence) & 1):
                continue
            end = ETH + int.from_bytes(frame[ETH + 2:ETH + 4], "big")
            iv_at = ESP_AT + ESP_HEADER
            iv = frame[iv_at:iv_at + IV]
            plaintext = open_(salt + iv, frame[iv_at + IV:end], frame[ESP_AT:ESP_AT + 8])
            if sequence > top:
                shift = sequence - top
                bitmap = ((bitmap << shift) | 1) & mask if shift < REPLAY_WINDOW else 1
                top = sequence
            else:
                bitmap |= 1 << (top - sequence)
            payload = plaintext[:len(plaintext) - 2 - plaintext[-2]]
            header = _ipv4_header(frame[ETH:ESP_AT], IP_HEADER + ESP_HEADER + len(payload))
            out.append(b"".join((message[:NEXT_HEADER_AT], plaintext[-1:],
                                 message[NEXT_HEADER_AT + 1:SHIM], frame[:ETH], header,
                                 frame[ESP_AT:ESP_AT + ESP_HEADER], payload)))
        state[0], state[1] = top, bitmap
        return out

    return run


def per_core(loop: Callable[[list[bytes]], list[bytes]], messages: list[bytes],
             batch: int = 64) -> float:
    """Messages/s on one core (process CPU time) through `loop`, in batches as the worker."""
    start = time.process_time()
    for first in range(0, len(messages), batch):
        loop(messages[first:first + batch])
    return len(messages) / (time.process_time() - start)
