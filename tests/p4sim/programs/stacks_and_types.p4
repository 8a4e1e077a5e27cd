// Header stack operations outside the parser (push_front, pop_front, indexing, size), typedefs,
// serializable enums, int<W> arithmetic, constant division, struct copies, counters in bytes.
#include <core.p4>
#include <v1model.p4>

typedef bit<8> byte_t;
enum bit<8> Op { PUSH = 1, POP = 2, COPY = 3 }

header op_t { byte_t op; byte_t arg; }
header item_t { byte_t value; }
header facts_t {
    byte_t stack_size; byte_t last_index; byte_t signed_shift; byte_t quotient;
    byte_t remainder; byte_t op_echo; byte_t copied;
}
struct pair_t { byte_t a; byte_t b; }
struct headers_t { op_t op; facts_t facts; item_t[3] items; }
struct metadata_t { pair_t first; pair_t second; byte_t last_index; }

parser SParser(packet_in pkt, out headers_t hdr, inout metadata_t meta,
               inout standard_metadata_t sm) {
    state start {
        pkt.extract(hdr.op);
        transition items;
    }
    state items {
        transition select(pkt.lookahead<bit<8>>()) {
            0: accept;
            default: item;
        }
    }
    state item {
        pkt.extract(hdr.items.next);
        meta.last_index = (byte_t)hdr.items.lastIndex;
        transition items;
    }
}

control NoVerify(inout headers_t hdr, inout metadata_t meta) { apply { } }

control SIngress(inout headers_t hdr, inout metadata_t meta, inout standard_metadata_t sm) {
    counter(4, CounterType.bytes) op_bytes;

    apply {
        hdr.facts.setValid();
        Op op = (Op)hdr.op.op;
        if (op == Op.PUSH) {
            hdr.items.push_front(1);
            hdr.items[0].setValid();
            hdr.items[0].value = hdr.op.arg;
        } else if (op == Op.POP) {
            hdr.items.pop_front(1);
        } else if (op == Op.COPY) {
            meta.first.a = hdr.op.arg;
            meta.first.b = 7;
            meta.second = meta.first;
            hdr.facts.copied = meta.second.a + meta.second.b;
        }
        hdr.facts.stack_size = (byte_t)hdr.items.size;
        // lastIndex is parser-only: the parser recorded it; push/pop move it by one
        if (op == Op.PUSH && meta.last_index < 2 && hdr.items[1].isValid()) {
            meta.last_index = meta.last_index + 1;
        } else if (op == Op.POP && meta.last_index > 0) {
            meta.last_index = meta.last_index - 1;
        }
        if (hdr.items[0].isValid()) {
            hdr.facts.last_index = meta.last_index;
        } else {
            hdr.facts.last_index = 0xff;
        }
        int<8> s = (int<8>)hdr.op.arg;
        hdr.facts.signed_shift = (byte_t)(s >> 2);
        hdr.facts.quotient = hdr.op.arg / 8w8;  // p4c-bm2-ss: only constant or power-of-two divisors
        hdr.facts.remainder = hdr.op.arg % 8w8;
        hdr.facts.op_echo = (bit<8>)op;
        op_bytes.count((bit<32>)hdr.op.op);
        sm.egress_spec = 1;
    }
}

control NoEgress(inout headers_t hdr, inout metadata_t meta, inout standard_metadata_t sm) {
    apply { }
}

control NoCompute(inout headers_t hdr, inout metadata_t meta) { apply { } }

control SDeparser(packet_out pkt, in headers_t hdr) {
    apply { pkt.emit(hdr.op); pkt.emit(hdr.facts); pkt.emit(hdr.items); }
}

V1Switch(SParser(), NoVerify(), SIngress(), NoEgress(), NoCompute(), SDeparser()) main;
