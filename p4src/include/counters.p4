/*
 * counters.p4 — TunnelCounters: the one place that counts and the one place that drops.
 *
 * Per tunnel index (readable over P4Runtime, read by the controller for the API's counters):
 *   tunnel_in       packets that matched the tunnel's rule
 *   tunnel_out      packets the tunnel emitted (Geneve: at encap/decap; ESP: on return from
 *                   the crypto worker)
 *   tunnel_drop_in  matched, but dropped before the tunnel produced output
 *   tunnel_drop_out dropped after the tunnel produced output (routing, pass limit, ...)
 * all packets_and_bytes: v1model counters (BMv2 and p4sim alike) add the length of the frame
 * as it entered the pass (BMv2: the packet's ingress length). For tunnel_in and tunnel_drop_in
 * that is the exact frame the tunnel received: both count only on passes that carry no crypto
 * shim (the classifier runs only there; a crypto return sets tunnel_applied with its tunnel
 * index, so its drops are drop-outs), where meta.in_len is the pass length. What a tunnel emits
 * (meta.out_len, or meta.in_len on a crypto return) differs from the pass length by the headers
 * the pass added or removed, a crypto shim included; tunnel_<out|drop_out>_delta.bits counts
 * that difference per frame (LengthDelta), so the controller recombines the exact bytes:
 * bytes = counter bytes + sum over b of cell(b) << b - packets * 2^(LENGTH_DELTA_BITS - 1).
 * Why not registers: BMv2's P4Runtime server refuses register reads and writes, so the
 * controller could neither read nor reset them. Every cell is readable and resettable.
 * drop_reasons counts every drop by DROP_* code; parser_errors breaks DROP_PARSER_ERROR down.
 */
#ifndef TUNNEL_OFFLOAD_COUNTERS_P4
#define TUNNEL_OFFLOAD_COUNTERS_P4

#include "headers.p4"
#include "metadata.p4"

// What a tunnel emitted minus the pass length v1model's byte count added, without a register:
// cell tunnel_index * LENGTH_DELTA_BITS + b of a packets counter counts the frames whose
// length - pass_length + 2^(LENGTH_DELTA_BITS - 1) has bit b set. The difference is a sum of
// header lengths, above -256 and below 256 (docs/dataplane.md "Counters"), so the offset value
// is non-negative and fits LENGTH_DELTA_BITS bits: exact, readable and resettable over P4Runtime
// like any counter (controller/pipeline.py recombines it).
control LengthDelta(in tunnel_index_t tunnel_index, in bit<16> length, in bit<16> pass_length) {

    counter(TUNNEL_DELTA_CELLS, CounterType.packets) bits;

    apply {
        bit<16> delta = length + LENGTH_DELTA_OFFSET - pass_length;
        bit<32> base = ((bit<32>) tunnel_index) * LENGTH_DELTA_BITS;
        if (delta[0:0] == 1) { bits.count(base); }
        if (delta[1:1] == 1) { bits.count(base + 1); }
        if (delta[2:2] == 1) { bits.count(base + 2); }
        if (delta[3:3] == 1) { bits.count(base + 3); }
        if (delta[4:4] == 1) { bits.count(base + 4); }
        if (delta[5:5] == 1) { bits.count(base + 5); }
        if (delta[6:6] == 1) { bits.count(base + 6); }
        if (delta[7:7] == 1) { bits.count(base + 7); }
        if (delta[8:8] == 1) { bits.count(base + 8); }
    }
}

control TunnelCounters(inout headers_t hdr,
                       inout local_metadata_t meta,
                       inout standard_metadata_t standard_metadata) {

    counter(MAX_TUNNELS, CounterType.packets_and_bytes) tunnel_in;
    counter(MAX_TUNNELS, CounterType.packets_and_bytes) tunnel_out;
    counter(MAX_TUNNELS, CounterType.packets_and_bytes) tunnel_drop_in;
    counter(MAX_TUNNELS, CounterType.packets_and_bytes) tunnel_drop_out;
    LengthDelta() tunnel_out_delta;
    LengthDelta() tunnel_drop_out_delta;
    counter(DROP_REASON_COUNT, CounterType.packets_and_bytes) drop_reasons;
    counter(PARSER_ERROR_REASON_COUNT, CounterType.packets) parser_errors;

    apply {
        bit<16> pass_len = (bit<16>) standard_metadata.packet_length;
        if (meta.events.tunnel_in) {
            tunnel_in.count((bit<32>) meta.tunnel_index);   // its bytes: meta.in_len (above)
        }
        if (meta.events.tunnel_out) {
            tunnel_out.count((bit<32>) meta.tunnel_index);
            tunnel_out_delta.apply(meta.tunnel_index, meta.out_len, pass_len);
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
            bit<16> drop_len = meta.in_len;   // a drop-in's is the pass length (above)
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
                tunnel_drop_out_delta.apply(drop_tunnel, drop_len, pass_len);
            } else if (drop_tunnel != 0) {
                tunnel_drop_in.count((bit<32>) drop_tunnel);
            }
            mark_to_drop(standard_metadata);
        }
    }
}

#endif  // TUNNEL_OFFLOAD_COUNTERS_P4
