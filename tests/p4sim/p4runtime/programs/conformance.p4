/* The P4 program of the P4Runtime conformance tests (tests/p4sim/p4runtime).
 *
 * Frames start with a 5-byte probe header (IPv4-like destination, protocol). Ingress counts the
 * ingress port, drops when register `blocked[port % 4]` is non-zero, runs an ACL, a const
 * table, and an LPM route whose direct counter counts hits. Frames routed to CPU_PORT reach
 * the controller as PacketIn; PacketOut frames leave on the port their header names.
 * Compile for BMv2: p4c --target bmv2 --arch v1model --p4runtime-files conformance.p4info.txt
 */
#include <core.p4>
#include <v1model.p4>

const bit<9> CPU_PORT = 64;

@controller_header("packet_in")
header packet_in_t {
    bit<9> ingress_port;
    bit<7> _pad;
}

@controller_header("packet_out")
header packet_out_t {
    bit<9> egress_port;
    bit<7> _pad;
}

header probe_t {
    bit<32> dst;
    bit<8>  proto;
}

struct headers_t {
    packet_in_t  cpu_in;
    packet_out_t cpu_out;
    probe_t      probe;
}

struct metadata_t {
    bit<12> vrf;
    bit<48> next_hop_mac;
}

parser ConformanceParser(packet_in pkt, out headers_t hdr, inout metadata_t meta,
                         inout standard_metadata_t standard_metadata) {
    state start {
        transition select(standard_metadata.ingress_port) {
            CPU_PORT: parse_packet_out;
            default: parse_probe;
        }
    }
    state parse_packet_out {
        pkt.extract(hdr.cpu_out);
        transition parse_probe;
    }
    state parse_probe {
        pkt.extract(hdr.probe);
        transition accept;
    }
}

control ConformanceVerify(inout headers_t hdr, inout metadata_t meta) {
    apply { }
}

control MyIngress(inout headers_t hdr, inout metadata_t meta,
                  inout standard_metadata_t standard_metadata) {
    counter(8, CounterType.packets_and_bytes) port_packets;
    direct_counter(CounterType.packets_and_bytes) route_hits;
    register<bit<8>>(4) blocked;

    action set_nhop(bit<9> port, bit<48> dmac) {
        standard_metadata.egress_spec = port;
        meta.next_hop_mac = dmac;
    }
    action drop() {
        mark_to_drop(standard_metadata);
    }
    action miss() { }
    action permit() { }

    // Programmed by the tests; a miss leaves the frame dropped.
    table ipv4_lpm {
        key = { hdr.probe.dst: lpm @name("dst"); }
        actions = { set_nhop; drop; @defaultonly miss; }
        default_action = miss();
        counters = route_hits;
        size = 4;
    }

    // Programmed by the tests to exercise every match kind; it decides nothing.
    table acl {
        key = {
            hdr.probe.dst: ternary @name("dst");
            standard_metadata.ingress_port: range @name("port");
            hdr.probe.proto: optional @name("proto");
            meta.vrf: exact @name("vrf");
        }
        actions = { drop; @tableonly permit; @defaultonly miss; }
        default_action = miss();
        size = 16;
    }

    // Never programmed: its entries are part of the program.
    table fixed {
        key = { standard_metadata.ingress_port: exact @name("port"); }
        actions = { set_nhop; drop; }
        const default_action = drop();
        const entries = {
            7 : drop();
        }
        // no `size`: p4c warns that a size is meaningless for a table of constant entries
    }

#ifdef CONFORMANCE_V2
    // Only in the program's second version (define CONFORMANCE_V2, used by the pipeline-update
    // tests): a table the first version's P4Info does not have, applied after the route.
    table ports_v2 {
        key = { standard_metadata.ingress_port: exact @name("port"); }
        actions = { drop; @defaultonly miss; }
        default_action = miss();
        size = 4;
    }
#endif

    apply {
        if (hdr.cpu_out.isValid()) {
            standard_metadata.egress_spec = hdr.cpu_out.egress_port;
            hdr.cpu_out.setInvalid();
            return;
        }
        if (standard_metadata.ingress_port < 8) {
            port_packets.count((bit<32>) standard_metadata.ingress_port);
        }
        bit<8> is_blocked;
        blocked.read(is_blocked, (bit<32>) standard_metadata.ingress_port[1:0]);
        if (is_blocked != 0) {
            mark_to_drop(standard_metadata);
            return;
        }
        mark_to_drop(standard_metadata);
        acl.apply();
        fixed.apply();
        ipv4_lpm.apply();
#ifdef CONFORMANCE_V2
        ports_v2.apply();
#endif
        if (standard_metadata.egress_spec == CPU_PORT) {
            hdr.cpu_in.setValid();
            hdr.cpu_in.ingress_port = standard_metadata.ingress_port;
            hdr.cpu_in._pad = 0;
        }
    }
}

control MyEgress(inout headers_t hdr, inout metadata_t meta,
                 inout standard_metadata_t standard_metadata) {
    apply { }
}

control ConformanceCompute(inout headers_t hdr, inout metadata_t meta) {
    apply { }
}

control ConformanceDeparser(packet_out pkt, in headers_t hdr) {
    apply {
        pkt.emit(hdr.cpu_in);
        pkt.emit(hdr.probe);
    }
}

V1Switch(ConformanceParser(), ConformanceVerify(), MyIngress(), MyEgress(),
         ConformanceCompute(), ConformanceDeparser()) main;
