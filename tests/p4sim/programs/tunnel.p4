// A small tunnel data plane for p4sim's tests: a ternary rule table with priorities, Geneve
// encap (headers pushed with setValid and copies) and decap (setInvalid), a Geneve option header
// stack, recirculation with a preserved field list, IPv4 checksums, counters.
#include <core.p4>
#include <v1model.p4>

#define IS_RECIRCULATED(sm) (sm.instance_type == 4)
#define MAX_OPTIONS 2

const bit<16> ETHERTYPE_IPV4 = 0x0800;
const bit<8> PROTO_UDP = 17;
const bit<16> GENEVE_PORT = 6081;
const bit<8> MAX_PASSES = 4;

typedef bit<32> ipv4_addr_t;

header ethernet_t { bit<48> dst; bit<48> src; bit<16> etherType; }
header ipv4_t {
    bit<4> version; bit<4> ihl; bit<8> tos; bit<16> totalLen; bit<16> identification;
    bit<3> flags; bit<13> fragOffset; bit<8> ttl; bit<8> protocol; bit<16> hdrChecksum;
    ipv4_addr_t srcAddr; ipv4_addr_t dstAddr;
}
header udp_t { bit<16> srcPort; bit<16> dstPort; bit<16> length; bit<16> checksum; }
header geneve_t {
    bit<2> ver; bit<6> optLen; bit<1> oam; bit<1> critical; bit<6> reserved;
    bit<16> protoType; bit<24> vni; bit<8> reserved2;
}
header geneve_option_t { bit<16> optClass; bit<8> type; bit<3> reserved; bit<5> length; bit<32> data; }

struct headers_t {
    ethernet_t ethernet;
    ipv4_t ipv4;
    udp_t udp;
    geneve_t geneve;
    geneve_option_t[MAX_OPTIONS] options;
    ethernet_t inner_ethernet;
    ipv4_t inner_ipv4;
    udp_t inner_udp;
}

struct metadata_t {
    @field_list(1) bit<8> passes;
    bit<8> option_bytes;
    bit<8> drop_reason;
    bool recirculate;  // set in ingress; p4c-bm2-ss accepts recirculate only in egress
}

parser TunnelParser(packet_in pkt, out headers_t hdr, inout metadata_t meta,
                    inout standard_metadata_t sm) {
    state start {
        pkt.extract(hdr.ethernet);
        transition select(hdr.ethernet.etherType) {
            ETHERTYPE_IPV4: parse_ipv4;
            default: accept;
        }
    }
    state parse_ipv4 {
        pkt.extract(hdr.ipv4);
        verify(hdr.ipv4.ihl == 5, error.HeaderTooShort);
        transition select(hdr.ipv4.fragOffset, hdr.ipv4.protocol) {
            (0, PROTO_UDP): parse_udp;
            default: accept;
        }
    }
    state parse_udp {
        pkt.extract(hdr.udp);
        transition select(hdr.udp.dstPort) {
            GENEVE_PORT: parse_geneve;
            default: accept;
        }
    }
    state parse_geneve {
        pkt.extract(hdr.geneve);
        meta.option_bytes = (bit<8>)hdr.geneve.optLen << 2;
        transition select(hdr.geneve.optLen) {
            0: parse_inner;
            default: parse_option;
        }
    }
    state parse_option {
        pkt.extract(hdr.options.next);
        meta.option_bytes = meta.option_bytes - 8;
        transition select(meta.option_bytes) {
            0: parse_inner;
            default: parse_option;
        }
    }
    state parse_inner {
        pkt.extract(hdr.inner_ethernet);
        pkt.extract(hdr.inner_ipv4);
        transition accept;
    }
}

control TunnelVerifyChecksum(inout headers_t hdr, inout metadata_t meta) {
    apply {
        verify_checksum(hdr.ipv4.isValid(),
            { hdr.ipv4.version, hdr.ipv4.ihl, hdr.ipv4.tos, hdr.ipv4.totalLen,
              hdr.ipv4.identification, hdr.ipv4.flags, hdr.ipv4.fragOffset, hdr.ipv4.ttl,
              hdr.ipv4.protocol, hdr.ipv4.srcAddr, hdr.ipv4.dstAddr },
            hdr.ipv4.hdrChecksum, HashAlgorithm.csum16);
    }
}

control TunnelIngress(inout headers_t hdr, inout metadata_t meta,
                      inout standard_metadata_t sm) {
    counter(16, CounterType.packets_and_bytes) rule_hits;
    direct_counter(CounterType.packets_and_bytes) rules_counter;

    action drop(bit<8> reason) {
        meta.drop_reason = reason;
        mark_to_drop(sm);
    }

    action forward(bit<9> port, bit<8> rule) {
        sm.egress_spec = port;
        rule_hits.count((bit<32>)rule);
    }

    action encap_geneve(ipv4_addr_t src, ipv4_addr_t dst, bit<24> vni, bit<32> tag,
                        bit<9> port, bit<8> rule) {
        hdr.inner_ethernet = hdr.ethernet;
        hdr.inner_ipv4 = hdr.ipv4;
        hdr.inner_udp = hdr.udp;
        hdr.ipv4.setValid();
        hdr.ipv4.version = 4;
        hdr.ipv4.ihl = 5;
        hdr.ipv4.tos = 0;
        hdr.ipv4.identification = 0;
        hdr.ipv4.flags = 0;
        hdr.ipv4.fragOffset = 0;
        hdr.ipv4.ttl = 64;
        hdr.ipv4.protocol = PROTO_UDP;
        hdr.ipv4.srcAddr = src;
        hdr.ipv4.dstAddr = dst;
        // outer IPv4 (20) + UDP (8) + Geneve (8) + one option (8) + inner Ethernet (14)
        hdr.ipv4.totalLen = hdr.inner_ipv4.totalLen + 58;
        hdr.udp.setValid();
        hdr.udp.srcPort = 49152 | (bit<16>)vni[13:0];
        hdr.udp.dstPort = GENEVE_PORT;
        hdr.udp.length = hdr.inner_ipv4.totalLen + 38;
        hdr.udp.checksum = 0;
        hdr.geneve.setValid();
        hdr.geneve.optLen = 2;
        hdr.geneve.protoType = 0x6558;
        hdr.geneve.vni = vni;
        hdr.options.push_front(1);
        hdr.options[0].setValid();
        hdr.options[0].optClass = 0x0104;
        hdr.options[0].type = 1;
        hdr.options[0].length = 1;
        hdr.options[0].data = tag;
        sm.egress_spec = port;
        rule_hits.count((bit<32>)rule);
    }

    action decap_and_recirculate(bit<8> rule) {
        hdr.ethernet.etherType = ETHERTYPE_IPV4;
        hdr.ipv4 = hdr.inner_ipv4;
        hdr.udp.setInvalid();
        hdr.geneve.setInvalid();
        hdr.options.pop_front(MAX_OPTIONS);
        hdr.inner_ethernet.setInvalid();
        hdr.inner_ipv4.setInvalid();
        meta.passes = meta.passes + 1;
        rule_hits.count((bit<32>)rule);
        meta.recirculate = true;
    }

    // Programmed by the controller; a miss drops with reason 1.
    table tunnel_rules {
        key = {
            hdr.ipv4.dstAddr: ternary @name("dst");
            hdr.udp.dstPort: ternary @name("dst_port");
            meta.passes: ternary @name("passes");
        }
        actions = { forward; encap_geneve; decap_and_recirculate; @defaultonly drop; }
        const default_action = drop(1);
        counters = rules_counter;
        size = 64;
    }

    apply {
        if (sm.parser_error != error.NoError) {
            drop(2);
            exit;
        }
        if (sm.checksum_error == 1) {
            drop(3);
            return;
        }
        if (meta.passes >= MAX_PASSES) {
            drop(4);
            return;
        }
        if (hdr.ipv4.isValid()) {
            tunnel_rules.apply();
            if (hdr.ipv4.ttl == 0) {
                drop(5);
            }
        } else {
            drop(6);
        }
    }
}

control TunnelEgress(inout headers_t hdr, inout metadata_t meta,
                     inout standard_metadata_t sm) {
    apply {
        if (!IS_RECIRCULATED(sm) && hdr.ipv4.isValid() && !hdr.geneve.isValid()) {
            hdr.ipv4.ttl = hdr.ipv4.ttl |-| 1;
        }
        if (meta.recirculate) {
            recirculate_preserving_field_list(1);
        }
    }
}

control TunnelComputeChecksum(inout headers_t hdr, inout metadata_t meta) {
    apply {
        update_checksum(hdr.ipv4.isValid(),
            { hdr.ipv4.version, hdr.ipv4.ihl, hdr.ipv4.tos, hdr.ipv4.totalLen,
              hdr.ipv4.identification, hdr.ipv4.flags, hdr.ipv4.fragOffset, hdr.ipv4.ttl,
              hdr.ipv4.protocol, hdr.ipv4.srcAddr, hdr.ipv4.dstAddr },
            hdr.ipv4.hdrChecksum, HashAlgorithm.csum16);
    }
}

control TunnelDeparser(packet_out pkt, in headers_t hdr) {
    apply {
        pkt.emit(hdr.ethernet);
        pkt.emit(hdr.ipv4);
        pkt.emit(hdr.udp);
        pkt.emit(hdr.geneve);
        pkt.emit(hdr.options);
        pkt.emit(hdr.inner_ethernet);
        pkt.emit(hdr.inner_ipv4);
        pkt.emit(hdr.inner_udp);
    }
}

V1Switch(TunnelParser(), TunnelVerifyChecksum(), TunnelIngress(), TunnelEgress(),
         TunnelComputeChecksum(), TunnelDeparser()) main;
