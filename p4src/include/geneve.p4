/*
 * geneve.p4 — Geneve: encapsulation (RFC 8926) and decapsulation for the tunnel rule that hit.
 *
 * Encap builds Ethernet / IPv4 or IPv6 / UDP 6081 / Geneve / options in the encap_* slots in
 * front of the packet, whose own Ethernet header becomes the inner one (MACs from the rule,
 * 802.1Q tag removed). The outer MACs are written by Forwarding. Decap moves the inner headers
 * into the outer slots, so everything after it sees the inner frame as "the" packet.
 */
#ifndef TUNNEL_OFFLOAD_GENEVE_P4
#define TUNNEL_OFFLOAD_GENEVE_P4

#include "headers.p4"
#include "metadata.p4"

control Geneve(inout headers_t hdr,
               inout local_metadata_t meta,
               inout standard_metadata_t standard_metadata) {

    apply {
        if (meta.tunnel.kind == TUNNEL_KIND_GENEVE_ENCAP
                && meta.tunnel.option_words > MAX_GENEVE_OPTION_WORDS) {
            meta.drop_reason = DROP_BAD_RULE;
        } else if (meta.tunnel.kind == TUNNEL_KIND_GENEVE_ENCAP) {
            // The inner frame: the packet's own Ethernet frame, untagged, MACs from the rule
            // (a zero MAC in the rule keeps the packet's own).
            if (hdr.vlan.isValid()) {
                hdr.ethernet.ether_type = hdr.vlan.ether_type;
                hdr.vlan.setInvalid();
            }
            if (meta.tunnel.inner_dst_mac != 0) {
                hdr.ethernet.dst_addr = meta.tunnel.inner_dst_mac;
            }
            if (meta.tunnel.inner_src_mac != 0) {
                hdr.ethernet.src_addr = meta.tunnel.inner_src_mac;
            }

            hdr.encap_geneve.setValid();
            hdr.encap_geneve.version = 0;
            hdr.encap_geneve.opt_len = meta.tunnel.option_words;
            hdr.encap_geneve.oam = meta.tunnel.oam;
            hdr.encap_geneve.critical = meta.tunnel.critical;
            hdr.encap_geneve.reserved = 0;
            hdr.encap_geneve.protocol = ETHERTYPE_TEB;
            hdr.encap_geneve.vni = meta.tunnel.vni;
            hdr.encap_geneve.reserved2 = 0;
            // Options: the rule's option region, left-aligned words packed by the controller
            // (per option a header word — class 16, type 8, reserved 3, length 5 — then
            // `length` data words); option_words is their total, the Geneve opt_len.
            if (meta.tunnel.option_words > 0) {
                hdr.encap_geneve_options[0].setValid();
                hdr.encap_geneve_options[0].data = meta.tunnel.options[639:608];
            }
            if (meta.tunnel.option_words > 1) {
                hdr.encap_geneve_options[1].setValid();
                hdr.encap_geneve_options[1].data = meta.tunnel.options[607:576];
            }
            if (meta.tunnel.option_words > 2) {
                hdr.encap_geneve_options[2].setValid();
                hdr.encap_geneve_options[2].data = meta.tunnel.options[575:544];
            }
            if (meta.tunnel.option_words > 3) {
                hdr.encap_geneve_options[3].setValid();
                hdr.encap_geneve_options[3].data = meta.tunnel.options[543:512];
            }
            if (meta.tunnel.option_words > 4) {
                hdr.encap_geneve_options[4].setValid();
                hdr.encap_geneve_options[4].data = meta.tunnel.options[511:480];
            }
            if (meta.tunnel.option_words > 5) {
                hdr.encap_geneve_options[5].setValid();
                hdr.encap_geneve_options[5].data = meta.tunnel.options[479:448];
            }
            if (meta.tunnel.option_words > 6) {
                hdr.encap_geneve_options[6].setValid();
                hdr.encap_geneve_options[6].data = meta.tunnel.options[447:416];
            }
            if (meta.tunnel.option_words > 7) {
                hdr.encap_geneve_options[7].setValid();
                hdr.encap_geneve_options[7].data = meta.tunnel.options[415:384];
            }
            if (meta.tunnel.option_words > 8) {
                hdr.encap_geneve_options[8].setValid();
                hdr.encap_geneve_options[8].data = meta.tunnel.options[383:352];
            }
            if (meta.tunnel.option_words > 9) {
                hdr.encap_geneve_options[9].setValid();
                hdr.encap_geneve_options[9].data = meta.tunnel.options[351:320];
            }
            if (meta.tunnel.option_words > 10) {
                hdr.encap_geneve_options[10].setValid();
                hdr.encap_geneve_options[10].data = meta.tunnel.options[319:288];
            }
            if (meta.tunnel.option_words > 11) {
                hdr.encap_geneve_options[11].setValid();
                hdr.encap_geneve_options[11].data = meta.tunnel.options[287:256];
            }
            if (meta.tunnel.option_words > 12) {
                hdr.encap_geneve_options[12].setValid();
                hdr.encap_geneve_options[12].data = meta.tunnel.options[255:224];
            }
            if (meta.tunnel.option_words > 13) {
                hdr.encap_geneve_options[13].setValid();
                hdr.encap_geneve_options[13].data = meta.tunnel.options[223:192];
            }
            if (meta.tunnel.option_words > 14) {
                hdr.encap_geneve_options[14].setValid();
                hdr.encap_geneve_options[14].data = meta.tunnel.options[191:160];
            }
            if (meta.tunnel.option_words > 15) {
                hdr.encap_geneve_options[15].setValid();
                hdr.encap_geneve_options[15].data = meta.tunnel.options[159:128];
            }
            if (meta.tunnel.option_words > 16) {
                hdr.encap_geneve_options[16].setValid();
                hdr.encap_geneve_options[16].data = meta.tunnel.options[127:96];
            }
            if (meta.tunnel.option_words > 17) {
                hdr.encap_geneve_options[17].setValid();
                hdr.encap_geneve_options[17].data = meta.tunnel.options[95:64];
            }
            if (meta.tunnel.option_words > 18) {
                hdr.encap_geneve_options[18].setValid();
                hdr.encap_geneve_options[18].data = meta.tunnel.options[63:32];
            }
            if (meta.tunnel.option_words > 19) {
                hdr.encap_geneve_options[19].setValid();
                hdr.encap_geneve_options[19].data = meta.tunnel.options[31:0];
            }

            hdr.encap_udp.setValid();
            hash(hdr.encap_udp.src_port, HashAlgorithm.crc16, GENEVE_SRC_PORT_BASE,
                 { meta.flow.src_addr, meta.flow.dst_addr, meta.flow.protocol,
                   meta.flow.l4_src_port, meta.flow.l4_dst_port },
                 GENEVE_SRC_PORT_RANGE);
            hdr.encap_udp.dst_port = UDP_PORT_GENEVE;
            hdr.encap_udp.length = UDP_LEN + GENEVE_LEN
                                   + (((bit<16>) meta.tunnel.option_words) << 2)
                                   + meta.frame_len;
            hdr.encap_udp.checksum = 0;

            hdr.encap_ethernet.setValid();
            hdr.encap_ethernet.dst_addr = 0;    // Forwarding writes the next hop's MACs
            hdr.encap_ethernet.src_addr = 0;
            if (meta.tunnel.outer_is_ipv6) {
                hdr.encap_ethernet.ether_type = ETHERTYPE_IPV6;
                hdr.encap_ipv6.setValid();
                hdr.encap_ipv6.version = 6;
                hdr.encap_ipv6.traffic_class = 0;
                hdr.encap_ipv6.flow_label = 0;
                hdr.encap_ipv6.payload_len = hdr.encap_udp.length;
                hdr.encap_ipv6.next_hdr = IP_PROTO_UDP;
                hdr.encap_ipv6.hop_limit = OUTER_TTL;
                hdr.encap_ipv6.src_addr = meta.tunnel.outer_src;
                hdr.encap_ipv6.dst_addr = meta.tunnel.outer_dst;
            } else {
                hdr.encap_ethernet.ether_type = ETHERTYPE_IPV4;
                hdr.encap_ipv4.setValid();
                hdr.encap_ipv4.version = 4;
                hdr.encap_ipv4.ihl = 5;
                hdr.encap_ipv4.dscp = 0;
                hdr.encap_ipv4.ecn = 0;
                hdr.encap_ipv4.total_len = IPV4_LEN + hdr.encap_udp.length;
                hdr.encap_ipv4.identification = 0;
                hdr.encap_ipv4.flags = IPV4_FLAGS_DF;   // atomic: identification 0 is fine
                hdr.encap_ipv4.frag_offset = 0;
                hdr.encap_ipv4.ttl = OUTER_TTL;
                hdr.encap_ipv4.protocol = IP_PROTO_UDP;
                hdr.encap_ipv4.hdr_checksum = 0;    // ComputeChecksums fills it
                hdr.encap_ipv4.src_addr = (ipv4_addr_t) meta.tunnel.outer_src;
                hdr.encap_ipv4.dst_addr = (ipv4_addr_t) meta.tunnel.outer_dst;
            }
            // Emitted: outer Ethernet and IP in front of the UDP datagram, which holds the rest.
            meta.out_len = ETHERNET_LEN + (meta.tunnel.outer_is_ipv6 ? IPV6_LEN : IPV4_LEN)
                           + hdr.encap_udp.length;
            meta.tunnel_applied = true;
            meta.events.tunnel_out = true;
        } else if (meta.tunnel.kind == TUNNEL_KIND_GENEVE_DECAP) {
            if (!hdr.geneve.isValid() || !hdr.inner_ethernet.isValid()) {
                meta.drop_reason = DROP_NOT_GENEVE;
            } else {
                // Strip through the Geneve header: the inner frame becomes the packet, and
                // what the tunnel emits is the received frame less everything before it.
                meta.out_len = meta.in_len - ETHERNET_LEN
                               - (hdr.vlan.isValid() ? VLAN_LEN : 0)
                               - (hdr.ipv4.isValid() ? IPV4_LEN : IPV6_LEN)
                               - UDP_LEN - GENEVE_LEN
                               - (((bit<16>) hdr.geneve.opt_len) << 2);
                hdr.ethernet = hdr.inner_ethernet;
                hdr.ipv4 = hdr.inner_ipv4;
                hdr.ipv6 = hdr.inner_ipv6;
                hdr.vlan.setInvalid();
                hdr.udp.setInvalid();
                hdr.geneve.setInvalid();
                hdr.geneve_options.pop_front(MAX_GENEVE_OPTION_WORDS);
                hdr.inner_ethernet.setInvalid();
                hdr.inner_ipv4.setInvalid();
                hdr.inner_ipv6.setInvalid();
                meta.tunnel_applied = true;
                meta.events.tunnel_out = true;
            }
        }
    }
}

#endif  // TUNNEL_OFFLOAD_GENEVE_P4
