/* A small IPv4 router for the PTF smoke test of p4sim (ptf_tests/smoke/test_router.py).
 *
 * ipv4_lpm (programmed over P4Runtime by the test) picks the egress port and next-hop MAC,
 * the router rewrites the Ethernet addresses, decrements the TTL and updates the checksum.
 * Frames that are not IPv4, carry a bad checksum, a TTL of 0 or 1, or miss the table are
 * dropped and counted by reason. The same source compiles with p4c for BMv2.
 */
#include <core.p4>
#include <v1model.p4>

const bit<16> ETHERTYPE_IPV4 = 0x0800;

typedef bit<48> mac_t;
typedef bit<32> ipv4_addr_t;
typedef bit<9>  port_t;

const bit<32> DROP_NOT_IPV4 = 0;
const bit<32> DROP_BAD_CHECKSUM = 1;
const bit<32> DROP_TTL = 2;
const bit<32> DROP_NO_ROUTE = 3;

header ethernet_t {
    mac_t   dst;
    mac_t   src;
    bit<16> ether_type;
}

header ipv4_t {
    bit<4>      version;
    bit<4>      ihl;
    bit<8>      diffserv;
    bit<16>     total_len;
    bit<16>     identification;
    bit<3>      flags;
    bit<13>     frag_offset;
    bit<8>      ttl;
    bit<8>      protocol;
    bit<16>     hdr_checksum;
    ipv4_addr_t src;
    ipv4_addr_t dst;
}

struct headers_t {
    ethernet_t ethernet;
    ipv4_t     ipv4;
}

struct metadata_t {
    bit<32> drop_reason;
}

parser RouterParser(packet_in pkt, out headers_t hdr, inout metadata_t meta,
                    inout standard_metadata_t standard_metadata) {
    state start {
        pkt.extract(hdr.ethernet);
        transition select(hdr.ethernet.ether_type) {
            ETHERTYPE_IPV4: parse_ipv4;
            default: accept;
        }
    }
    state parse_ipv4 {
        pkt.extract(hdr.ipv4);
        transition accept;
    }
}

control RouterVerifyChecksum(inout headers_t hdr, inout metadata_t meta) {
    apply {
        verify_checksum(hdr.ipv4.isValid() && hdr.ipv4.ihl == 5,
            { hdr.ipv4.version, hdr.ipv4.ihl, hdr.ipv4.diffserv, hdr.ipv4.total_len,
              hdr.ipv4.identification, hdr.ipv4.flags, hdr.ipv4.frag_offset, hdr.ipv4.ttl,
              hdr.ipv4.protocol, hdr.ipv4.src, hdr.ipv4.dst },
            hdr.ipv4.hdr_checksum, HashAlgorithm.csum16);
    }
}

control RouterIngress(inout headers_t hdr, inout metadata_t meta,
                      inout standard_metadata_t standard_metadata) {
    counter(4, CounterType.packets) drops;
    direct_counter(CounterType.packets_and_bytes) route_hits;

    action drop_packet(bit<32> reason) {
        meta.drop_reason = reason;
        drops.count(reason);
        mark_to_drop(standard_metadata);
    }

    action set_nhop(port_t port, mac_t dmac, mac_t smac) {
        standard_metadata.egress_spec = port;
        hdr.ethernet.src = smac;
        hdr.ethernet.dst = dmac;
        hdr.ipv4.ttl = hdr.ipv4.ttl - 1;
    }

    @defaultonly
    action no_route() {
        meta.drop_reason = DROP_NO_ROUTE;
        drops.count(DROP_NO_ROUTE);
        mark_to_drop(standard_metadata);
    }

    // Programmed by the controller (the PTF test); a miss drops the frame.
    table ipv4_lpm {
        key = { hdr.ipv4.dst: lpm @name("dst"); }
        actions = { set_nhop; @defaultonly no_route; }
        const default_action = no_route();
        counters = route_hits;
        size = 64;
    }

    apply {
        if (!hdr.ipv4.isValid()) {
            drop_packet(DROP_NOT_IPV4);
        } else if (standard_metadata.checksum_error == 1) {
            drop_packet(DROP_BAD_CHECKSUM);
        } else if (hdr.ipv4.ttl <= 1) {
            drop_packet(DROP_TTL);
        } else {
            ipv4_lpm.apply();
        }
    }
}

control RouterEgress(inout headers_t hdr, inout metadata_t meta,
                     inout standard_metadata_t standard_metadata) {
    apply { }
}

control RouterComputeChecksum(inout headers_t hdr, inout metadata_t meta) {
    apply {
        update_checksum(hdr.ipv4.isValid() && hdr.ipv4.ihl == 5,
            { hdr.ipv4.version, hdr.ipv4.ihl, hdr.ipv4.diffserv, hdr.ipv4.total_len,
              hdr.ipv4.identification, hdr.ipv4.flags, hdr.ipv4.frag_offset, hdr.ipv4.ttl,
              hdr.ipv4.protocol, hdr.ipv4.src, hdr.ipv4.dst },
            hdr.ipv4.hdr_checksum, HashAlgorithm.csum16);
    }
}

control RouterDeparser(packet_out pkt, in headers_t hdr) {
    apply {
        pkt.emit(hdr.ethernet);
        pkt.emit(hdr.ipv4);
    }
}

V1Switch(RouterParser(), RouterVerifyChecksum(), RouterIngress(), RouterEgress(),
         RouterComputeChecksum(), RouterDeparser()) main;
