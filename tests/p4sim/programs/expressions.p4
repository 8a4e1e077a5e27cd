// Expressions on fixed widths: wrap-around, saturating ops, shifts, slices, concatenation,
// casts (truncate, extend, sign-extend, bool), signed comparison, ?:, bool logic, slice
// assignment. The frame is `in_t` (a, b); the output appends `out_t` with every result.
#include <core.p4>
#include <v1model.p4>

const bit<8> SEVEN = 7;

header in_t { bit<8> a; bit<8> b; }
header out_t {
    bit<8> sum; bit<8> diff; bit<8> prod; bit<8> sat_add; bit<8> sat_sub;
    bit<8> shl; bit<8> shr; bit<4> hi_nibble; bit<4> low_nibble; bit<16> concat;
    bit<16> widened; bit<16> sign_extended; bit<8> negated; bit<8> inverted;
    bit<8> flags; bit<8> picked; bit<8> patched;
}
struct headers_t { in_t in_hdr; out_t out_hdr; }
struct metadata_t { }

parser InParser(packet_in pkt, out headers_t hdr, inout metadata_t meta,
                inout standard_metadata_t sm) {
    state start { pkt.extract(hdr.in_hdr); transition accept; }
}

control NoVerify(inout headers_t hdr, inout metadata_t meta) { apply { } }

control Compute(inout headers_t hdr, inout metadata_t meta, inout standard_metadata_t sm) {
    apply {
        bit<8> a = hdr.in_hdr.a;
        bit<8> b = hdr.in_hdr.b;
        hdr.out_hdr.setValid();
        hdr.out_hdr.sum = a + b;
        hdr.out_hdr.diff = a - b;
        hdr.out_hdr.prod = a * b;
        hdr.out_hdr.sat_add = a |+| b;
        hdr.out_hdr.sat_sub = a |-| b;
        hdr.out_hdr.shl = a << 3;
        hdr.out_hdr.shr = a >> 2;
        hdr.out_hdr.hi_nibble = a[7:4];
        hdr.out_hdr.low_nibble = (bit<4>)b;
        hdr.out_hdr.concat = a ++ b;
        hdr.out_hdr.widened = (bit<16>)a;
        hdr.out_hdr.sign_extended = (bit<16>)(int<16>)(int<8>)a;
        hdr.out_hdr.negated = -a;
        hdr.out_hdr.inverted = ~a;
        bool signed_less = (int<8>)a < (int<8>)b;
        bool unsigned_less = a < b;
        bit<8> flags = 0;
        flags[0:0] = (bit<1>)signed_less;
        flags[1:1] = (bit<1>)unsigned_less;
        flags[2:2] = (bit<1>)(a == b || !(a != SEVEN));
        flags[7:4] = 4w0xA;
        hdr.out_hdr.flags = flags;
        hdr.out_hdr.picked = a > b ? a : b;
        bit<8> patched = 0xFF;
        patched[5:2] = 0;
        hdr.out_hdr.patched = patched;
        sm.egress_spec = 2;
    }
}

control NoEgress(inout headers_t hdr, inout metadata_t meta, inout standard_metadata_t sm) {
    apply { }
}

control NoCompute(inout headers_t hdr, inout metadata_t meta) { apply { } }

control OutDeparser(packet_out pkt, in headers_t hdr) {
    apply { pkt.emit(hdr.in_hdr); pkt.emit(hdr.out_hdr); }
}

V1Switch(InParser(), NoVerify(), Compute(), NoEgress(), NoCompute(), OutDeparser()) main;
