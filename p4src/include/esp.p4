/*
 * esp.p4 — IPsec ESP: the P4 half of the split with the crypto worker (docs/dataplane.md).
 *
 * Esp sends a packet to CRYPTO_PORT with the crypto shim: for ENCRYPT after building every
 * header P4 can (outer IP in tunnel mode, UDP 4500 with NAT-T, the ESP header with sequence
 * number 0); for DECRYPT unchanged, with the SA index from decrypt_sas. CryptoReturn finishes
 * what the worker returns: counts the tunnel's output (its exact length, shim excluded), removes
 * what decryption made obsolete (and a decrypted frame's 802.1Q tag), strips the shim and hands
 * the packet to the rule's next action.
 */
#ifndef TUNNEL_OFFLOAD_ESP_P4
#define TUNNEL_OFFLOAD_ESP_P4

#include "headers.p4"
#include "metadata.p4"

control Esp(inout headers_t hdr,
            inout local_metadata_t meta,
            inout standard_metadata_t standard_metadata) {

    action set_decrypt_sa(sa_index_t sa_index) {
        meta.tunnel.sa_index = sa_index;
    }

    @defaultonly
    action reject_unknown_spi() {
        meta.drop_reason = DROP_SA_MISS;
    }

    // Programmed by the controller: one entry per decrypt SA of a tunnel (IPSecDec.ipsecSAs),
    // so old and new SPIs live side by side during a rekey. A miss drops: the SPI is not one
    // of this tunnel's SAs.
    table decrypt_sas {
        key = {
            meta.tunnel_index : exact @name("tunnel_index");
            meta.key.esp_spi  : exact @name("spi");
        }
        actions = {
            set_decrypt_sa;
            @defaultonly reject_unknown_spi;
        }
        const default_action = reject_unknown_spi();
        size = DECRYPT_SAS_SIZE;
    }

    apply {
        if (meta.tunnel.kind == TUNNEL_KIND_IPSEC_ENCRYPT
                && !hdr.ipv4.isValid() && !hdr.ipv6.isValid()) {
            meta.drop_reason = DROP_NOT_IP;
        } else if (meta.tunnel.kind == TUNNEL_KIND_IPSEC_ENCRYPT) {
            hdr.crypto_shim.setValid();
            hdr.crypto_shim.op = CRYPTO_OP_ENCRYPT;
            // The Ethernet header in front of the ESP packet: same MACs, untagged.
            hdr.encap_ethernet.setValid();
            hdr.encap_ethernet.dst_addr = hdr.ethernet.dst_addr;
            hdr.encap_ethernet.src_addr = hdr.ethernet.src_addr;
            hdr.ethernet.setInvalid();
            hdr.vlan.setInvalid();
            bit<8> esp_ip_proto = meta.tunnel.nat_t ? IP_PROTO_UDP : IP_PROTO_ESP;
            bit<16> udp_len = meta.tunnel.nat_t ? UDP_LEN : 0;
            bit<16> payload_len;    // the protected payload: what ESP will encrypt
            if (meta.tunnel.tunnel_mode) {
                // Tunnel mode: the whole IP packet is the payload, behind a new outer header.
                if (hdr.ipv4.isValid()) {
                    hdr.crypto_shim.next_header = IP_PROTO_IPV4;
                    payload_len = hdr.ipv4.total_len;
                } else {
                    hdr.crypto_shim.next_header = IP_PROTO_IPV6;
                    payload_len = IPV6_LEN + hdr.ipv6.payload_len;
                }
                if (meta.tunnel.outer_is_ipv6) {
                    hdr.encap_ipv6.setValid();
                    hdr.encap_ipv6.version = 6;
                    hdr.encap_ipv6.traffic_class = 0;
                    hdr.encap_ipv6.flow_label = 0;
                    hdr.encap_ipv6.payload_len = udp_len + ESP_LEN + payload_len;
                    hdr.encap_ipv6.next_hdr = esp_ip_proto;
                    hdr.encap_ipv6.hop_limit = OUTER_TTL;
                    hdr.encap_ipv6.src_addr = meta.tunnel.outer_src;
                    hdr.encap_ipv6.dst_addr = meta.tunnel.outer_dst;
                } else {
                    hdr.encap_ipv4.setValid();
                    hdr.encap_ipv4.version = 4;
                    hdr.encap_ipv4.ihl = 5;
                    hdr.encap_ipv4.dscp = 0;
                    hdr.encap_ipv4.ecn = 0;
                    hdr.encap_ipv4.total_len = IPV4_LEN + udp_len + ESP_LEN + payload_len;
                    hdr.encap_ipv4.identification = 0;
                    hdr.encap_ipv4.flags = IPV4_FLAGS_DF;   // atomic (RFC 6864): id 0 is fine
                    hdr.encap_ipv4.frag_offset = 0;
                    hdr.encap_ipv4.ttl = OUTER_TTL;
                    hdr.encap_ipv4.protocol = esp_ip_proto;
                    hdr.encap_ipv4.hdr_checksum = 0;    // ComputeChecksums fills it
                    hdr.encap_ipv4.src_addr = (ipv4_addr_t) meta.tunnel.outer_src;
                    hdr.encap_ipv4.dst_addr = (ipv4_addr_t) meta.tunnel.outer_dst;
                }
            } else {
                // Transport mode: the packet's own IP header moves in front of ESP; its
                // payload is what ESP protects.
                if (hdr.ipv4.isValid()) {
                    hdr.crypto_shim.next_header = hdr.ipv4.protocol;
                    payload_len = hdr.ipv4.total_len - IPV4_LEN;
                    hdr.encap_ipv4 = hdr.ipv4;
                    hdr.encap_ipv4.protocol = esp_ip_proto;
                    hdr.encap_ipv4.total_len = hdr.ipv4.total_len + udp_len + ESP_LEN;
                    hdr.ipv4.setInvalid();
                } else {
                    hdr.crypto_shim.next_header = hdr.ipv6.next_hdr;
                    payload_len = hdr.ipv6.payload_len;
                    hdr.encap_ipv6 = hdr.ipv6;
                    hdr.encap_ipv6.next_hdr = esp_ip_proto;
                    hdr.encap_ipv6.payload_len = hdr.ipv6.payload_len + udp_len + ESP_LEN;
                    hdr.ipv6.setInvalid();
                }
            }
            hdr.encap_ethernet.ether_type = hdr.encap_ipv4.isValid() ? ETHERTYPE_IPV4
                                                                    : ETHERTYPE_IPV6;
            if (meta.tunnel.nat_t) {
                hdr.encap_udp.setValid();
                hdr.encap_udp.src_port = UDP_PORT_IPSEC_NAT_T;
                hdr.encap_udp.dst_port = UDP_PORT_IPSEC_NAT_T;
                hdr.encap_udp.length = UDP_LEN + ESP_LEN + payload_len;
                hdr.encap_udp.checksum = 0;
            }
            hdr.encap_esp.setValid();
            hdr.encap_esp.spi = meta.tunnel.spi;
            hdr.encap_esp.seq_no = 0;    // the worker assigns sequence numbers per SA

            hdr.crypto_shim.flags = (meta.tunnel.tunnel_mode ? CRYPTO_FLAG_TUNNEL_MODE : 8w0)
                                    | (meta.tunnel.nat_t ? CRYPTO_FLAG_NAT_T : 8w0);
            hdr.crypto_shim.sa_index = meta.tunnel.sa_index;
            hdr.crypto_shim.l3_offset = (bit<8>) ETHERNET_LEN;
            hdr.crypto_shim.esp_offset = ETHERNET_LEN
                                         + (hdr.encap_ipv4.isValid() ? IPV4_LEN : IPV6_LEN)
                                         + udp_len;
            meta.to_crypto = true;
        } else if (meta.tunnel.kind == TUNNEL_KIND_IPSEC_DECRYPT && !hdr.esp.isValid()) {
            meta.drop_reason = DROP_NOT_ESP;
        } else if (meta.tunnel.kind == TUNNEL_KIND_IPSEC_DECRYPT) {
            decrypt_sas.apply();
            if (meta.drop_reason == DROP_NONE) {
                // The frame goes unchanged; the shim says where its headers are.
                hdr.crypto_shim.setValid();
                hdr.crypto_shim.op = CRYPTO_OP_DECRYPT;
                hdr.crypto_shim.flags = (meta.tunnel.tunnel_mode ? CRYPTO_FLAG_TUNNEL_MODE : 8w0)
                                        | (hdr.udp.isValid() ? CRYPTO_FLAG_NAT_T : 8w0);
                hdr.crypto_shim.sa_index = meta.tunnel.sa_index;
                hdr.crypto_shim.next_header = 0;
                bit<16> l3_offset = ETHERNET_LEN + (hdr.vlan.isValid() ? VLAN_LEN : 0);
                hdr.crypto_shim.l3_offset = (bit<8>) l3_offset;
                hdr.crypto_shim.esp_offset = l3_offset
                                             + (hdr.ipv4.isValid() ? IPV4_LEN : IPV6_LEN)
                                             + (hdr.udp.isValid() ? UDP_LEN : 0);
                meta.to_crypto = true;
            }
        }
        if (meta.to_crypto) {
            hdr.crypto_shim.version = CRYPTO_SHIM_VERSION;
            hdr.crypto_shim.next_action = meta.next_action;
            hdr.crypto_shim.tunnel_index = meta.tunnel_index;
            hdr.crypto_shim.pass = meta.pass;
            hdr.crypto_shim.status = 0;
            hdr.crypto_shim.ingress_port = (bit<16>) meta.first_ingress_port;
            standard_metadata.egress_spec = CRYPTO_PORT;
        }
    }
}

control CryptoReturn(inout headers_t hdr,
                     inout local_metadata_t meta,
                     inout standard_metadata_t standard_metadata) {
    apply {
        // The shim's tunnel index indexes the per-tunnel counters: a frame naming no tunnel
        // (0, or past MAX_TUNNELS) is refused before it can index them (BMv2 built with NDEBUG
        // does not bounds-check counter indices). It is counted as a bad return, on no tunnel.
        if (hdr.crypto_shim.tunnel_index == 0
                || ((bit<32>) hdr.crypto_shim.tunnel_index) >= MAX_TUNNELS) {
            meta.tunnel_index = 0;
            meta.drop_reason = DROP_BAD_CRYPTO_RETURN;
            return;
        }
        meta.tunnel_index = hdr.crypto_shim.tunnel_index;
        meta.next_action = hdr.crypto_shim.next_action;
        // The worker has done the tunnel's work; a drop from here on is a drop on the way out.
        // What the tunnel emits: the worker's frame without the shim (meta.in_len), less the
        // headers a decrypt removes below.
        meta.tunnel_applied = true;
        meta.out_len = meta.in_len;
        if (hdr.crypto_shim.status != 0 || !hdr.esp.isValid()) {
            meta.drop_reason = DROP_BAD_CRYPTO_RETURN;
        } else if (hdr.crypto_shim.op == CRYPTO_OP_DECRYPT
                   && (hdr.crypto_shim.flags & CRYPTO_FLAG_TUNNEL_MODE) != 0) {
            // Tunnel mode: drop the outer IP, UDP and ESP headers; the decrypted IP packet
            // (parsed into inner_ipv4 / inner_ipv6) becomes the packet.
            if (hdr.inner_ipv4.isValid() || hdr.inner_ipv6.isValid()) {
                bit<16> ether_type = hdr.inner_ipv4.isValid() ? ETHERTYPE_IPV4 : ETHERTYPE_IPV6;
                if (hdr.vlan.isValid()) {
                    hdr.vlan.ether_type = ether_type;
                } else {
                    hdr.ethernet.ether_type = ether_type;
                }
                meta.out_len = meta.out_len - (hdr.ipv4.isValid() ? IPV4_LEN : IPV6_LEN)
                               - (hdr.udp.isValid() ? UDP_LEN : 0) - ESP_LEN;
                hdr.ipv4 = hdr.inner_ipv4;
                hdr.ipv6 = hdr.inner_ipv6;
                hdr.inner_ipv4.setInvalid();
                hdr.inner_ipv6.setInvalid();
                hdr.udp.setInvalid();
                hdr.esp.setInvalid();
            } else {
                meta.drop_reason = DROP_BAD_CRYPTO_RETURN;
            }
        } else if (hdr.crypto_shim.op == CRYPTO_OP_DECRYPT) {
            // Transport mode: drop UDP and ESP, restore the protocol, shorten the IP lengths.
            bit<16> removed = ESP_LEN + (hdr.udp.isValid() ? UDP_LEN : 0);
            meta.out_len = meta.out_len - removed;
            if (hdr.ipv4.isValid()) {
                hdr.ipv4.protocol = hdr.crypto_shim.next_header;
                hdr.ipv4.total_len = hdr.ipv4.total_len - removed;
            } else {
                hdr.ipv6.next_hdr = hdr.crypto_shim.next_header;
                hdr.ipv6.payload_len = hdr.ipv6.payload_len - removed;
            }
            hdr.udp.setInvalid();
            hdr.esp.setInvalid();
        } else if (hdr.crypto_shim.op != CRYPTO_OP_ENCRYPT) {
            meta.drop_reason = DROP_BAD_CRYPTO_RETURN;
        }
        // Tunnels emit untagged frames (docs/dataplane.md "Decisions"): a decrypt returns the
        // frame with the tag it came in with; the tunnel's output is without it.
        if (meta.drop_reason == DROP_NONE && hdr.crypto_shim.op == CRYPTO_OP_DECRYPT
                && hdr.vlan.isValid()) {
            hdr.ethernet.ether_type = hdr.vlan.ether_type;
            hdr.vlan.setInvalid();
            meta.out_len = meta.out_len - VLAN_LEN;
        }
        if (meta.drop_reason == DROP_NONE) {
            meta.events.tunnel_out = true;
        }
        hdr.crypto_shim.setInvalid();
    }
}

#endif  // TUNNEL_OFFLOAD_ESP_P4
