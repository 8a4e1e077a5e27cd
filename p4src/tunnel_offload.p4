/*
 * tunnel_offload.p4 — the TunnelOffload data plane (P4_16, v1model).
 *
 * This file only includes the stages and wires them together; each job lives in include/.
 * Pipeline and contracts: docs/dataplane.md. Sizes: include/sizes.p4.
 */
#include <core.p4>
#include <v1model.p4>

#include "include/defines.p4"
#include "include/sizes.p4"
#include "include/headers.p4"
#include "include/metadata.p4"
#include "include/parser.p4"
#include "include/checksums.p4"
#include "include/classifier.p4"
#include "include/geneve.p4"
#include "include/esp.p4"
#include "include/forwarding.p4"
#include "include/counters.p4"

control TunnelIngress(inout headers_t hdr,
                      inout local_metadata_t meta,
                      inout standard_metadata_t standard_metadata) {
    Classifier() classifier;
    Geneve() geneve;
    Esp() esp;
    CryptoReturn() crypto_return;
    Forwarding() forwarding;
    TunnelCounters() counters;

    apply {
        // The frame this pass received, as tunnels see it: without the crypto shim. Byte
        // counts are computed from it (counters.p4), never from v1model's counter lengths.
        meta.in_len = (bit<16>) standard_metadata.packet_length;
        // Passes: every entry into ingress counts, a crypto round trip included.
        if (hdr.crypto_shim.isValid()) {
            meta.in_len = meta.in_len - CRYPTO_SHIM_LEN;
            meta.pass = hdr.crypto_shim.pass + 1;
            meta.first_ingress_port = (port_t) hdr.crypto_shim.ingress_port;
            meta.prev_tunnel = hdr.crypto_shim.tunnel_index;
        } else if (IS_RECIRCULATED(standard_metadata)) {
            meta.pass = meta.pass + 1;
        } else {
            meta.pass = 1;
            meta.first_ingress_port = standard_metadata.ingress_port;
        }

        if (standard_metadata.parser_error != error.NoError) {
            meta.drop_reason = DROP_PARSER_ERROR;
        } else if (standard_metadata.checksum_error == 1) {
            meta.drop_reason = DROP_BAD_IPV4_CHECKSUM;
        } else if (meta.pass > MAX_PASSES) {
            meta.drop_reason = DROP_PASS_LIMIT;
        } else if (hdr.crypto_shim.isValid()) {
            crypto_return.apply(hdr, meta, standard_metadata);
        } else {
            classifier.apply(hdr, meta, standard_metadata);
            if (meta.tunnel.kind == TUNNEL_KIND_GENEVE_ENCAP
                    || meta.tunnel.kind == TUNNEL_KIND_GENEVE_DECAP) {
                geneve.apply(hdr, meta, standard_metadata);
            } else if (meta.tunnel.kind == TUNNEL_KIND_IPSEC_ENCRYPT
                       || meta.tunnel.kind == TUNNEL_KIND_IPSEC_DECRYPT) {
                esp.apply(hdr, meta, standard_metadata);
            }
        }

        // Next action: RECIRCULATE loops back to the classifier with this tunnel as the
        // previous one (egress recirculates); FORWARD, or no tunnel, routes.
        if (meta.drop_reason == DROP_NONE && !meta.to_crypto) {
            if (meta.tunnel_index != 0 && meta.next_action == NEXT_ACTION_RECIRCULATE) {
                meta.prev_tunnel = meta.tunnel_index;
                meta.recirculate = true;
                standard_metadata.egress_spec = standard_metadata.ingress_port;
            } else {
                forwarding.apply(hdr, meta, standard_metadata);
            }
        }

        counters.apply(hdr, meta, standard_metadata);
    }
}

control TunnelEgress(inout headers_t hdr,
                     inout local_metadata_t meta,
                     inout standard_metadata_t standard_metadata) {
    apply {
        if (meta.recirculate) {
            recirculate_preserving_field_list(FL_RECIRCULATE);
        }
    }
}

V1Switch(TunnelParser(),
         VerifyChecksums(),
         TunnelIngress(),
         TunnelEgress(),
         ComputeChecksums(),
         TunnelDeparser()) main;
