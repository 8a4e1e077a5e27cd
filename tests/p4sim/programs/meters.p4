// Meters: an indexed byte meter (execute_meter) and a packet direct meter on a table (read in
// the action). The frame is `req` (index, key); the output appends both colors.
#include <core.p4>
#include <v1model.p4>

header req_t { bit<8> index; bit<8> key; }
header colors_t { bit<8> indexed; bit<8> direct; }
struct headers_t { req_t req; colors_t colors; }
struct metadata_t { }

parser MParser(packet_in pkt, out headers_t hdr, inout metadata_t meta,
               inout standard_metadata_t sm) {
    state start { pkt.extract(hdr.req); transition accept; }
}

control NoVerify(inout headers_t hdr, inout metadata_t meta) { apply { } }

control MIngress(inout headers_t hdr, inout metadata_t meta, inout standard_metadata_t sm) {
    meter(4, MeterType.bytes) byte_meter;
    direct_meter<bit<8>>(MeterType.packets) key_meter;

    action policed() { key_meter.read(hdr.colors.direct); }
    // Programmed by the test; a miss leaves the direct color at 0xff.
    table keys {
        key = { hdr.req.key: exact @name("key"); }
        actions = { policed; }
        meters = key_meter;
    }

    apply {
        hdr.colors.setValid();
        hdr.colors.direct = 0xff;
        bit<8> color;
        byte_meter.execute_meter((bit<32>)hdr.req.index, color);
        hdr.colors.indexed = color;
        keys.apply();
        sm.egress_spec = 1;
    }
}

control NoEgress(inout headers_t hdr, inout metadata_t meta, inout standard_metadata_t sm) {
    apply { }
}

control NoCompute(inout headers_t hdr, inout metadata_t meta) { apply { } }

control MDeparser(packet_out pkt, in headers_t hdr) {
    apply { pkt.emit(hdr.req); pkt.emit(hdr.colors); }
}

V1Switch(MParser(), NoVerify(), MIngress(), NoEgress(), NoCompute(), MDeparser()) main;
