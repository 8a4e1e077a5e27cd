"""Packet I/O of p4sim: BMv2's nanomsg packet-in protocol, per-port sockets, AF_PACKET ports."""

from p4sim.ports.af_packet import AfPacketPort
from p4sim.ports.dataplane import Dataplane, DataplaneStats, FrameProcessor
from p4sim.ports.nn_socket import NnPacketSocket
from p4sim.ports.pcap import PcapCapture

__all__ = ["AfPacketPort", "Dataplane", "DataplaneStats", "FrameProcessor", "NnPacketSocket",
           "PcapCapture"]
