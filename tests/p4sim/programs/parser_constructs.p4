// Parser constructs: select with masks, ranges, tuples and default; header stacks with
// .next/.last/.lastIndex (parser only); lookahead; advance; varbit with a computed length;
// verify with a program-declared error (no explicit reject: p4c-bm2-ss warns it is unsupported). Ingress reports what the parser saw in a `report` header.
#include <core.p4>
#include <v1model.p4>

error { BadIhl }

header report_t { bit<8> path; bit<8> err; bit<8> vlans; bit<8> last_pcp; }
header ethernet_t { bit<48> dst; bit<48> src; bit<16> etherType; }
header vlan_t { bit<3> pcp; bit<1> cfi; bit<12> vid; bit<16> etherType; }
header ipv4_t {
    bit<4> version; bit<4> ihl; bit<8> tos; bit<16> totalLen; bit<16> identification;
    bit<16> fragment; bit<8> ttl; bit<8> protocol; bit<16> checksum; bit<32> src; bit<32> dst;
}
header ipv4_options_t { varbit<320> options; }

struct headers_t {
    report_t report;
    ethernet_t ethernet;
    vlan_t[2] vlan;
    ipv4_t ipv4;
    ipv4_options_t ipv4_options;
}
struct metadata_t { bit<8> path; bit<8> vlans; bit<8> last_pcp; }

parser ConstructParser(packet_in pkt, out headers_t hdr, inout metadata_t meta,
                       inout standard_metadata_t sm) {
    state start {
        pkt.extract(hdr.ethernet);
        transition select(hdr.ethernet.etherType) {
            0x8100 &&& 0xEFFF: parse_vlan;   // 0x8100 and 0x9100
            0x0800: parse_ip;
            0x0000 .. 0x05DC: parse_llc;     // an 802.3 length field
            default: accept;
        }
    }
    state parse_vlan {
        pkt.extract(hdr.vlan.next);
        meta.vlans = (bit<8>)hdr.vlan.lastIndex + 1;
        meta.last_pcp = (bit<8>)hdr.vlan.last.pcp;
        transition select(hdr.vlan.last.etherType) {
            0x8100: parse_vlan;
            0x0800: parse_ip;
            default: accept;
        }
    }
    state parse_ip {
        meta.path = 1;
        transition select(pkt.lookahead<bit<4>>(), pkt.lookahead<ipv4_t>().ihl) {
            (4, 0 .. 4): short_ihl;
            (4, _): parse_ipv4;
            default: accept;  // not `reject`: BMv2 does not support an explicit one
        }
    }
    state short_ihl {
        meta.path = 6;   // seen through lookahead<ipv4_t>; verify in parse_ipv4 then fails
        transition parse_ipv4;
    }
    state parse_ipv4 {
        pkt.extract(hdr.ipv4);
        verify(hdr.ipv4.ihl >= 5, error.BadIhl);
        pkt.extract(hdr.ipv4_options, (bit<32>)(hdr.ipv4.ihl - 5) * 32);
        meta.path = 2;
        transition select(hdr.ipv4.protocol, hdr.ipv4.ttl) {
            (17, _): skip_udp;
            (_, 0 .. 1): expiring;
            default: accept;
        }
    }
    state skip_udp {
        pkt.advance(64);
        meta.path = 3;
        transition accept;
    }
    state expiring {
        meta.path = 4;
        transition accept;
    }
    state parse_llc {
        pkt.advance(24);
        meta.path = 5;
        transition accept;
    }
}

control NoVerify(inout headers_t hdr, inout metadata_t meta) { apply { } }

control ReportIngress(inout headers_t hdr, inout metadata_t meta,
                      inout standard_metadata_t sm) {
    apply {
        hdr.report.setValid();
        hdr.report.path = meta.path;
        if (sm.parser_error == error.NoError) {
            hdr.report.err = 0;
        } else if (sm.parser_error == error.PacketTooShort) {
            hdr.report.err = 1;
        } else if (sm.parser_error == error.StackOutOfBounds) {
            hdr.report.err = 2;
        } else if (sm.parser_error == error.BadIhl) {
            hdr.report.err = 3;
        } else if (sm.parser_error == error.HeaderTooShort) {
            hdr.report.err = 4;
        } else {
            hdr.report.err = 0xff;
        }
        hdr.report.vlans = meta.vlans;
        hdr.report.last_pcp = meta.last_pcp;
        sm.egress_spec = 1;
    }
}

control NoEgress(inout headers_t hdr, inout metadata_t meta, inout standard_metadata_t sm) {
    apply { }
}

control NoCompute(inout headers_t hdr, inout metadata_t meta) { apply { } }

control ReportDeparser(packet_out pkt, in headers_t hdr) {
    apply {
        pkt.emit(hdr.report);
        pkt.emit(hdr.ethernet);
        pkt.emit(hdr.vlan);
        pkt.emit(hdr.ipv4);
        pkt.emit(hdr.ipv4_options);
    }
}

V1Switch(ConstructParser(), NoVerify(), ReportIngress(), NoEgress(), NoCompute(),
         ReportDeparser()) main;
