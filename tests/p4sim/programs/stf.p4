// For p4sim stf tests (tests/p4sim/test_stf.py): exact, ternary (with priorities), lpm keys,
// a header-stack key, action parameters, an indexed counter and multicast.
#include <core.p4>
#include <v1model.p4>

header data_t { bit<32> f1; bit<32> f2; bit<16> h1; bit<8> b1; bit<8> b2; }
header tag_t { bit<16> h; }
struct headers_t { data_t data; tag_t[2] tags; }
struct metadata_t { }

parser P(packet_in pkt, out headers_t hdr, inout metadata_t meta,
         inout standard_metadata_t sm) {
    state start { pkt.extract(hdr.data); pkt.extract(hdr.tags.next); transition accept; }
}

control NoVerify(inout headers_t hdr, inout metadata_t meta) { apply { } }

control Ingress(inout headers_t hdr, inout metadata_t meta, inout standard_metadata_t sm) {
    counter(8, CounterType.packets_and_bytes) seen;

    action setb1(bit<9> port, bit<8> val) { sm.egress_spec = port; hdr.data.b1 = val; }
    action set_b2(bit<8> val) { hdr.data.b2 = val; }
    action to_group(bit<16> group) { sm.mcast_grp = group; }
    action noop() { }

    table exact_t {
        key = { hdr.data.f1: exact; }
        actions = { setb1; noop; }
        default_action = noop();
    }
    table tern_t {
        key = { hdr.data.f2: ternary; hdr.tags[0].h: exact; }
        actions = { set_b2; noop; }
        default_action = noop();
    }
    table lpm_t {
        key = { hdr.data.f2: lpm @name("prefix"); }
        actions = { to_group; noop; }
        default_action = noop();
    }

    apply {
        seen.count((bit<32>)hdr.data.h1[2:0]);
        exact_t.apply();
        tern_t.apply();
        lpm_t.apply();
    }
}

control NoEgress(inout headers_t hdr, inout metadata_t meta, inout standard_metadata_t sm) {
    apply { }
}

control NoCompute(inout headers_t hdr, inout metadata_t meta) { apply { } }

control D(packet_out pkt, in headers_t hdr) {
    apply { pkt.emit(hdr.data); pkt.emit(hdr.tags); }
}

V1Switch(P(), NoVerify(), Ingress(), NoEgress(), NoCompute(), D()) main;
