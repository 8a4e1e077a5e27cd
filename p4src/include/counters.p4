/*
 * counters.p4 — TunnelCounters: the one place that counts and the one place that drops.
 *
 * Per tunnel index (readable over P4Runtime, read by the controller for the API's counters):
 *   tunnel_in       packets/bytes that matched the tunnel's rule
 *   tunnel_out      packets/bytes the tunnel emitted (Geneve: at encap/decap; ESP: on return
 *                   from the crypto worker)
 *   tunnel_drop_in  matched, but dropped before the tunnel produced output
 *   tunnel_drop_out dropped after the tunnel produced output (routing, pass limit, ...)
 * Bytes are v1model's: the frame length as it entered this pass.
 * drop_reasons counts every drop by DROP_* code; parser_errors breaks DROP_PARSER_ERROR down.
 */
#ifndef TUNNEL_OFFLOAD_COUNTERS_P4
#define TUNNEL_OFFLOAD_COUNTERS_P4

#include "headers.p4"
#include "metadata.p4"

control TunnelCounters(inout headers_t hdr,
                       inout local_metadata_t meta,
                       inout standard_metadata_t standard_metadata) {

    counter(MAX_TUNNELS, CounterType.packets_and_bytes) tunnel_in;
    counter(MAX_TUNNELS, CounterType.packets_and_bytes) tunnel_out;
    counter(MAX_TUNNELS, CounterType.packets_and_bytes) tunnel_drop_in;
    counter(MAX_TUNNELS, CounterType.packets_and_bytes) tunnel_drop_out;
    counter(DROP_REASON_COUNT, CounterType.packets_and_bytes) drop_reasons;
    counter(PARSER_ERROR_REASON_COUNT, CounterType.packets) parser_errors;

    apply {
        if (meta.events.tunnel_in) {
            tunnel_in.count((bit<32>) meta.tunnel_index);
        }
        if (meta.events.tunnel_out) {
            tunnel_out.count((bit<32>) meta.tunnel_index);
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
            // Attribute the drop to a tunnel: this pass's tunnel, before or after it acted,
            // or else the tunnel whose output this pass is processing.
            if (meta.tunnel_index != 0 && meta.tunnel_applied) {
                tunnel_drop_out.count((bit<32>) meta.tunnel_index);
            } else if (meta.tunnel_index != 0) {
                tunnel_drop_in.count((bit<32>) meta.tunnel_index);
            } else if (meta.prev_tunnel != 0) {
                tunnel_drop_out.count((bit<32>) meta.prev_tunnel);
            }
            mark_to_drop(standard_metadata);
        }
    }
}

#endif  // TUNNEL_OFFLOAD_COUNTERS_P4
