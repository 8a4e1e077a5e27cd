// Tables: exact/lpm/ternary/range/optional keys, const entries in priority order, default
// actions (const and not), @defaultonly, @hidden, @name/@id, hit/miss,
// switch (t.apply().action_run) with fall-through, a nested control instance.
#include <core.p4>
#include <v1model.p4>

header ethernet_t { bit<48> dst; bit<48> src; bit<16> etherType; }
header ipv4_t {
    bit<8> versionIhl; bit<8> tos; bit<16> totalLen; bit<16> identification; bit<16> fragment;
    bit<8> ttl; bit<8> protocol; bit<16> checksum; bit<32> srcAddr; bit<32> dstAddr;
}
header ports_t { bit<16> srcPort; bit<16> dstPort; }
header trace_t { bit<8> cls; bit<8> route; bit<8> acl; bit<8> branch; }
struct headers_t { trace_t trace; ethernet_t ethernet; ipv4_t ipv4; ports_t ports; }
struct metadata_t { bit<8> cls; }

parser TParser(packet_in pkt, out headers_t hdr, inout metadata_t meta,
               inout standard_metadata_t sm) {
    state start {
        pkt.extract(hdr.ethernet);
        transition select(hdr.ethernet.etherType) { 0x0800: ipv4; default: accept; }
    }
    state ipv4 {
        pkt.extract(hdr.ipv4);
        transition select(hdr.ipv4.protocol) { 6: ports; 17: ports; default: accept; }
    }
    state ports { pkt.extract(hdr.ports); transition accept; }
}

control NoVerify(inout headers_t hdr, inout metadata_t meta) { apply { } }

control Acl(inout headers_t hdr, inout metadata_t meta) {
    action permit() { hdr.trace.acl = 1; }
    action deny() { hdr.trace.acl = 2; }
    // Programmed by the controller; a miss leaves acl at 0.
    table acl {
        key = {
            hdr.ports.dstPort: range @name("dport");
            hdr.ipv4.protocol: optional @name("proto");
        }
        actions = { permit; deny; }
        size = 8;
    }
    apply { acl.apply(); }
}

control TIngress(inout headers_t hdr, inout metadata_t meta, inout standard_metadata_t sm) {
    Acl() acl_stage;

    action classify(bit<8> cls) { meta.cls = cls; }
    @id(0x01000777) action route(bit<9> port, bit<8> tag) {
        sm.egress_spec = port;
        hdr.trace.route = tag;
    }
    action no_route(bit<8> tag) { hdr.trace.route = tag; sm.egress_spec = 9; }

    // Fixed by the program: classes by EtherType, first entry has the highest priority.
    table classes {
        key = { hdr.ethernet.etherType: ternary @name("ether_type"); }
        actions = { classify; }
        const entries = {
            0x0800 &&& 0xFFFF: classify(1);
            0x0800 &&& 0xFF00: classify(2);
            _: classify(3);
        }
        const default_action = classify(0);
    }

    @name("routes_v4")
    table routes {
        key = { hdr.ipv4.dstAddr: lpm @name("dst"); }
        actions = { route; @defaultonly no_route; }
        default_action = no_route(0xEE);
        size = 16;
    }

    @hidden
    table helper {
        key = { meta.cls: exact; }
        actions = { NoAction; }
        const entries = { 1: NoAction(); }
    }

    apply {
        hdr.trace.setValid();
        switch (classes.apply().action_run) {
            classify: { hdr.trace.cls = meta.cls; }
        }
        if (hdr.ipv4.isValid()) {
            switch (routes.apply().action_run) {
                route: { hdr.trace.branch = 1; }
                no_route:
                default: { hdr.trace.branch = 2; }
            }
            acl_stage.apply(hdr, meta);
        } else {
            sm.egress_spec = 8;
        }
        bool helper_hit = helper.apply().hit;
        if (helper_hit) {
            hdr.trace.branch = hdr.trace.branch + 0x10;
        }
        if (!helper_hit) {
            hdr.trace.branch = hdr.trace.branch + 0x20;
        }
    }
}

control NoEgress(inout headers_t hdr, inout metadata_t meta, inout standard_metadata_t sm) {
    apply { }
}

control NoCompute(inout headers_t hdr, inout metadata_t meta) { apply { } }

control TDeparser(packet_out pkt, in headers_t hdr) {
    apply { pkt.emit(hdr.trace); pkt.emit(hdr.ethernet); pkt.emit(hdr.ipv4); pkt.emit(hdr.ports); }
}

V1Switch(TParser(), NoVerify(), TIngress(), NoEgress(), NoCompute(), TDeparser()) main;
