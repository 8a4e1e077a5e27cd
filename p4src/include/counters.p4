/*
 * counters.p4 — TunnelCounters: the one place that counts and the one place that drops.
 *
 * Per tunnel index (readable over P4Runtime, read by the controller for the API's counters):
 *   tunnel_in       packets that matched the tunnel's rule
 *   tunnel_out      packets the tunnel emitted (Geneve: at encap/decap; ESP: on return from
 *                   the crypto worker)
 *   tunnel_drop_in  matched, but dropped before the tunnel produced output
 *   tunnel_drop_out dropped after the tunnel produced output (routing, pass limit, ...)
 * and, for each, the bytes in tunnel_<x>_bytes.length_bits: the exact length of each frame the
 * tunnel received (in, drop in) or emitted (out, drop out), computed here in P4 — never the
 * crypto shim. Why not the counters' own byte counts: v1model counters (BMv2 and p4sim alike)
 * add the length of the frame as it entered the pass, which is the frame before an encap and
 * includes the shim on a crypto return. Why not registers: BMv2's P4Runtime server refuses
 * register reads and writes, so the controller could neither read nor reset them.
 * drop_reasons counts every drop by DROP_* code; parser_errors breaks DROP_PARSER_ERROR down.
 */
#ifndef TUNNEL_OFFLOAD_COUNTERS_P4
#define TUNNEL_OFFLOAD_COUNTERS_P4

#include "headers.p4"
#include "metadata.p4"

// Adds one frame length to a tunnel's byte total without a register: cell
// tunnel_index * FRAME_LENGTH_BITS + b of a packets counter counts the frames whose length has
// bit b set, so the total is the sum over b of cell(b) << b (controller/pipeline.py sums it).
// Exact, readable and resettable over P4Runtime like any counter.
control FrameBytes(in tunnel_index_t tunnel_index, in bit<16> length) {

    counter(TUNNEL_BYTE_CELLS, CounterType.packets) length_bits;

    apply {
        bit<32> base = ((bit<32>) tunnel_index) * FRAME_LENGTH_BITS;
        if (length[0:0] == 1)   { length_bits.count(base); }
        if (length[1:1] == 1)   { length_bits.count(base + 1); }
        if (length[2:2] == 1)   { length_bits.count(base + 2); }
        if (length[3:3] == 1)   { length_bits.count(base + 3); }
        if (length[4:4] == 1)   { length_bits.count(base + 4); }
        if (length[5:5] == 1)   { length_bits.count(base + 5); }
        if (length[6:6] == 1)   { length_bits.count(base + 6); }
        if (length[7:7] == 1)   { length_bits.count(base + 7); }
        if (length[8:8] == 1)   { length_bits.count(base + 8); }
        if (length[9:9] == 1)   { length_bits.count(base + 9); }
        if (length[10:10] == 1) { length_bits.count(base + 10); }
        if (length[11:11] == 1) { length_bits.count(base + 11); }
        if (length[12:12] == 1) { length_bits.count(base + 12); }
        if (length[13:13] == 1) { length_bits.count(base + 13); }
        if (length[14:14] == 1) { length_bits.count(base + 14); }
        if (length[15:15] == 1) { length_bits.count(base + 15); }
    }
}

control TunnelCounters(inout headers_t hdr,
                       inout local_metadata_t meta,
                       inout standard_metadata_t standard_metadata) {

    counter(MAX_TUNNELS, CounterType.packets) tunnel_in;
    counter(MAX_TUNNELS, CounterType.packets) tunnel_out;
    counter(MAX_TUNNELS, CounterType.packets) tunnel_drop_in;
    counter(MAX_TUNNELS, CounterType.packets) tunnel_drop_out;
    FrameBytes() tunnel_in_bytes;
    FrameBytes() tunnel_out_bytes;
    FrameBytes() tunnel_drop_in_bytes;
    FrameBytes() tunnel_drop_out_bytes;
    counter(DROP_REASON_COUNT, CounterType.packets_and_bytes) drop_reasons;
    counter(PARSER_ERROR_REASON_COUNT, CounterType.packets) parser_errors;

    apply {
        if (meta.events.tunnel_in) {
            tunnel_in.count((bit<32>) meta.tunnel_index);
            tunnel_in_bytes.apply(meta.tunnel_index, meta.in_len);
        }
        if (meta.events.tunnel_out) {
            tunnel_out.count((bit<32>) meta.tunnel_index);
            tunnel_out_bytes.apply(meta.tunnel_index, meta.out_len);
        }
        if (meta.drop_reason != DROP_NONE) {
            drop_reasons.count((bit<32>) meta.drop_reason);
            if (meta.drop_reason == DROP_PARSER_ERROR) {
                bit<32> reason = PARSER_ERROR_OTHER;
                if (standard_metadata.parser_error == error.PacketTooShort) {
                    reason = PARSER_ERROR_PACKET_TOO_SHORT;
                } else if (standard_metadata.parser_error == error.NoMatch) {
                    reason = PARSER_ERROR_NO_MATCH;
                } else if (standard_metadata.parser_error == error.StackOutOfBounds) {
                    reason = PARSER_ERROR_STACK_OUT_OF_BOUNDS;
                } else if (standard_metadata.parser_error == error.HeaderTooShort) {
                    reason = PARSER_ERROR_HEADER_TOO_SHORT;
                } else if (standard_metadata.parser_error == error.IpVersion) {
                    reason = PARSER_ERROR_IP_VERSION;
                } else if (standard_metadata.parser_error == error.Ipv4HeaderLength) {
                    reason = PARSER_ERROR_IPV4_HEADER_LENGTH;
                } else if (standard_metadata.parser_error == error.Ipv4Options) {
                    reason = PARSER_ERROR_IPV4_OPTIONS;
                } else if (standard_metadata.parser_error == error.GeneveVersion) {
                    reason = PARSER_ERROR_GENEVE_VERSION;
                } else if (standard_metadata.parser_error == error.GeneveOptionsTooLong) {
                    reason = PARSER_ERROR_GENEVE_OPTIONS_TOO_LONG;
                } else if (standard_metadata.parser_error == error.GeneveOptionTooLong) {
                    reason = PARSER_ERROR_GENEVE_OPTION_TOO_LONG;
                } else if (standard_metadata.parser_error == error.GeneveOptionLength) {
                    reason = PARSER_ERROR_GENEVE_OPTION_LENGTH;
                } else if (standard_metadata.parser_error == error.CryptoShimVersion) {
                    reason = PARSER_ERROR_CRYPTO_SHIM;
                }
                parser_errors.count(reason);
            }
            // Attribute the drop to a tunnel: this pass's tunnel, before it acted (the frame
            // it received) or after (the frame it emitted), or else the tunnel whose output
            // this pass is processing (that output is the frame this pass received).
            tunnel_index_t drop_tunnel = meta.tunnel_index;
            bit<16> drop_len = meta.in_len;
            bool drop_out = false;
            if (meta.tunnel_index != 0 && meta.tunnel_applied) {
                drop_len = meta.out_len;
                drop_out = true;
            } else if (meta.tunnel_index == 0) {
                drop_tunnel = meta.prev_tunnel;
                drop_out = true;
            }
            if (drop_tunnel != 0 && drop_out) {
                tunnel_drop_out.count((bit<32>) drop_tunnel);
                tunnel_drop_out_bytes.apply(drop_tunnel, drop_len);
            } else if (drop_tunnel != 0) {
                tunnel_drop_in.count((bit<32>) drop_tunnel);
                tunnel_drop_in_bytes.apply(drop_tunnel, drop_len);
            }
            mark_to_drop(standard_metadata);
        }
    }
}

#endif  // TUNNEL_OFFLOAD_COUNTERS_P4
