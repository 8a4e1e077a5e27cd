"""Packet I/O of p4sim: BMv2's nanomsg packet-in protocol, per-port sockets, AF_PACKET ports."""

from p4sim.ports.af_packet import AfPacketPort
from p4sim.ports.nn_socket import NnPacketSocket
from p4sim.ports.pcap import PcapCapture
from p4sim.ports.pump import FrameSwitch, PacketPump, PumpStats

__all__ = ["AfPacketPort", "PacketPump", "PumpStats", "FrameSwitch", "NnPacketSocket",
           "PcapCapture"]
