// v1model externs: register read/write, hash (crc16, crc32, csum16, identity), random,
// log_msg, resubmit with a field list, verify/update_checksum_with_payload (UDP checksum),
// packet-in and packet-out through @controller_header headers on CPU port 64.
#include <core.p4>
#include <v1model.p4>

const bit<9> CPU_PORT = 64;

@controller_header("packet_in")
header packet_in_t { bit<9> ingress_port; bit<7> pad; }
@controller_header("packet_out")
header packet_out_t { bit<9> egress_port; bit<7> pad; }

header ethernet_t { bit<48> dst; bit<48> src; bit<16> etherType; }
header ipv4_t {
    bit<8> versionIhl; bit<8> tos; bit<16> totalLen; bit<16> identification; bit<16> fragment;
    bit<8> ttl; bit<8> protocol; bit<16> checksum; bit<32> srcAddr; bit<32> dstAddr;
}
header udp_t { bit<16> srcPort; bit<16> dstPort; bit<16> length; bit<16> checksum; }
header result_t {
    bit<16> crc16; bit<32> crc32; bit<16> csum16; bit<16> ident; bit<32> seen; bit<8> rnd;
    bit<32> instance; bit<8> resubmits;
}
struct headers_t {
    packet_in_t packet_in;
    packet_out_t packet_out;
    result_t result;
    ethernet_t ethernet;
    ipv4_t ipv4;
    udp_t udp;
}
struct metadata_t { @field_list(3) bit<8> resubmits; bit<8> scratch; }

parser XParser(packet_in pkt, out headers_t hdr, inout metadata_t meta,
               inout standard_metadata_t sm) {
    state start {
        transition select(sm.ingress_port) { CPU_PORT: cpu; default: ethernet; }
    }
    state cpu { pkt.extract(hdr.packet_out); transition ethernet; }
    state ethernet {
        pkt.extract(hdr.ethernet);
        transition select(hdr.ethernet.etherType) { 0x0800: ipv4; default: accept; }
    }
    state ipv4 {
        pkt.extract(hdr.ipv4);
        transition select(hdr.ipv4.protocol) { 17: udp; default: accept; }
    }
    state udp { pkt.extract(hdr.udp); transition accept; }
}

control XVerify(inout headers_t hdr, inout metadata_t meta) {
    apply {
        verify_checksum_with_payload(hdr.udp.isValid() && hdr.udp.checksum != 0,
            { hdr.ipv4.srcAddr, hdr.ipv4.dstAddr, 8w0, hdr.ipv4.protocol, hdr.udp.length,
              hdr.udp.srcPort, hdr.udp.dstPort, hdr.udp.length },
            hdr.udp.checksum, HashAlgorithm.csum16);
    }
}

control XIngress(inout headers_t hdr, inout metadata_t meta, inout standard_metadata_t sm) {
    register<bit<32>>(8) seen_per_port;

    apply {
        if (hdr.packet_out.isValid()) {
            sm.egress_spec = hdr.packet_out.egress_port;
            hdr.packet_out.setInvalid();
            exit;
        }
        if (hdr.ethernet.etherType == 0x88B5) {   // punt to the controller
            hdr.packet_in.setValid();
            hdr.packet_in.ingress_port = sm.ingress_port;
            sm.egress_spec = CPU_PORT;
            exit;
        }
        if (sm.checksum_error == 1) {
            mark_to_drop(sm);
            exit;
        }
        if (hdr.ethernet.etherType == 0x88B6 && meta.resubmits < 2) {
            meta.resubmits = meta.resubmits + 1;
            resubmit_preserving_field_list(3);
            return;
        }
        bit<32> seen;
        seen_per_port.read(seen, (bit<32>)sm.ingress_port);
        seen = seen + 1;
        seen_per_port.write((bit<32>)sm.ingress_port, seen);
        hdr.result.setValid();
        seen_per_port.read(hdr.result.seen, (bit<32>)sm.ingress_port);
        hash(hdr.result.crc16, HashAlgorithm.crc16, 16w0,
             { hdr.ethernet.dst, hdr.ethernet.src }, 32w65536);
        hash(hdr.result.crc32, HashAlgorithm.crc32, 32w0,
             { hdr.ethernet.dst, hdr.ethernet.src }, 64w4294967296);
        hash(hdr.result.csum16, HashAlgorithm.csum16, 16w0,
             { hdr.ethernet.dst, hdr.ethernet.src }, 32w65536);
        hash(hdr.result.ident, HashAlgorithm.identity, 16w100, { hdr.ethernet.etherType }, 32w0);
        random(hdr.result.rnd, 8w7, 8w7);
        hdr.result.instance = sm.instance_type;
        hdr.result.resubmits = meta.resubmits;
        log_msg("packet from port {} seen {} times", { sm.ingress_port, seen });
        sm.egress_spec = 1;
    }
}

control NoEgress(inout headers_t hdr, inout metadata_t meta, inout standard_metadata_t sm) {
    apply { }
}

control XCompute(inout headers_t hdr, inout metadata_t meta) {
    apply {
        update_checksum_with_payload(hdr.udp.isValid(),
            { hdr.ipv4.srcAddr, hdr.ipv4.dstAddr, 8w0, hdr.ipv4.protocol, hdr.udp.length,
              hdr.udp.srcPort, hdr.udp.dstPort, hdr.udp.length },
            hdr.udp.checksum, HashAlgorithm.csum16);
    }
}

control XDeparser(packet_out pkt, in headers_t hdr) {
    apply {
        pkt.emit(hdr.packet_in);
        pkt.emit(hdr.result);
        pkt.emit(hdr.ethernet);
        pkt.emit(hdr.ipv4);
        pkt.emit(hdr.udp);
    }
}

V1Switch(XParser(), XVerify(), XIngress(), NoEgress(), XCompute(), XDeparser()) main;
