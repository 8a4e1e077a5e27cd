// Packet replication: multicast groups (egress_rid per copy), ingress-to-egress clones with a
// preserved field list, egress-to-egress clones, as simple_switch runs them. The first byte of
// the frame chooses: 1 multicast to group 7, 2 clone I2E (session 5) and forward to port 1,
// 3 forward to port 2 and clone E2E (session 6) in egress. Egress appends a `seen` header.
#include <core.p4>
#include <v1model.p4>

header cmd_t { bit<8> op; bit<8> tag; }
header seen_t { bit<8> instance_type; bit<16> rid; bit<8> tag_seen; bit<8> port; }
struct headers_t { cmd_t cmd; seen_t seen; }
struct metadata_t { @field_list(1) bit<8> tag; bit<8> not_preserved; }

parser RParser(packet_in pkt, out headers_t hdr, inout metadata_t meta,
               inout standard_metadata_t sm) {
    state start { pkt.extract(hdr.cmd); transition accept; }
}

control NoVerify(inout headers_t hdr, inout metadata_t meta) { apply { } }

control RIngress(inout headers_t hdr, inout metadata_t meta, inout standard_metadata_t sm) {
    apply {
        meta.tag = hdr.cmd.tag;
        meta.not_preserved = 0xEE;
        if (hdr.cmd.op == 1) {
            sm.mcast_grp = 7;
        } else if (hdr.cmd.op == 2) {
            clone_preserving_field_list(CloneType.I2E, 5, 1);
            sm.egress_spec = 1;
        } else {
            sm.egress_spec = 2;
        }
    }
}

control REgress(inout headers_t hdr, inout metadata_t meta, inout standard_metadata_t sm) {
    apply {
        hdr.seen.setValid();
        hdr.seen.instance_type = (bit<8>)sm.instance_type;
        hdr.seen.rid = sm.egress_rid;
        hdr.seen.tag_seen = meta.tag ^ meta.not_preserved;
        hdr.seen.port = (bit<8>)sm.egress_port;
        if (hdr.cmd.op == 3 && sm.instance_type == 0) {
            clone(CloneType.E2E, 6);
        }
    }
}

control NoCompute(inout headers_t hdr, inout metadata_t meta) { apply { } }

control RDeparser(packet_out pkt, in headers_t hdr) {
    apply { pkt.emit(hdr.cmd); pkt.emit(hdr.seen); }
}

V1Switch(RParser(), NoVerify(), RIngress(), REgress(), NoCompute(), RDeparser()) main;
