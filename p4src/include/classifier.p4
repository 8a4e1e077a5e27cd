/*
 * classifier.p4 — Classifier: builds the rule key from the parsed packet and applies tunnel_rules,
 * the one table that maps what the API can match to a tunnel and its next action. The actions
 * only record the rule's tunnel parameters; Geneve and Esp do the header work. ESP that no rule
 * takes is looked up once more in esp_endpoints: the switch is an ESP end point exactly where a
 * decrypt tunnel's match says so (docs/dataplane.md "ESP with an unknown SPI").
 */
#ifndef TUNNEL_OFFLOAD_CLASSIFIER_P4
#define TUNNEL_OFFLOAD_CLASSIFIER_P4

#include "headers.p4"
#include "metadata.p4"

control Classifier(inout headers_t hdr,
                   inout local_metadata_t meta,
                   inout standard_metadata_t standard_metadata) {

    // Hits per rule (v1model counts every hit of the table it is attached to).
    direct_counter(CounterType.packets_and_bytes) tunnel_rule_hits;

    action encap_geneve_v4(tunnel_index_t tunnel_index, next_action_t next_action,
                           ipv4_addr_t src_addr, ipv4_addr_t dst_addr,
                           mac_addr_t inner_dst_mac, mac_addr_t inner_src_mac,
                           bit<24> vni, bit<1> oam, bit<1> critical,
                           bit<6> option_words, bit<GENEVE_OPTION_BITS> options) {
        meta.tunnel_index = tunnel_index;
        meta.next_action = next_action;
        meta.tunnel.kind = TUNNEL_KIND_GENEVE_ENCAP;
        meta.events.tunnel_in = true;
        meta.tunnel.outer_is_ipv6 = false;
        meta.tunnel.outer_src = (ipv6_addr_t) src_addr;
        meta.tunnel.outer_dst = (ipv6_addr_t) dst_addr;
        meta.tunnel.inner_dst_mac = inner_dst_mac;
        meta.tunnel.inner_src_mac = inner_src_mac;
        meta.tunnel.vni = vni;
        meta.tunnel.oam = oam;
        meta.tunnel.critical = critical;
        meta.tunnel.option_words = option_words;
        meta.tunnel.options = options;
    }

    action encap_geneve_v6(tunnel_index_t tunnel_index, next_action_t next_action,
                           ipv6_addr_t src_addr, ipv6_addr_t dst_addr,
                           mac_addr_t inner_dst_mac, mac_addr_t inner_src_mac,
                           bit<24> vni, bit<1> oam, bit<1> critical,
                           bit<6> option_words, bit<GENEVE_OPTION_BITS> options) {
        meta.tunnel_index = tunnel_index;
        meta.next_action = next_action;
        meta.tunnel.kind = TUNNEL_KIND_GENEVE_ENCAP;
        meta.events.tunnel_in = true;
        meta.tunnel.outer_is_ipv6 = true;
        meta.tunnel.outer_src = src_addr;
        meta.tunnel.outer_dst = dst_addr;
        meta.tunnel.inner_dst_mac = inner_dst_mac;
        meta.tunnel.inner_src_mac = inner_src_mac;
        meta.tunnel.vni = vni;
        meta.tunnel.oam = oam;
        meta.tunnel.critical = critical;
        meta.tunnel.option_words = option_words;
        meta.tunnel.options = options;
    }

    action decap_geneve(tunnel_index_t tunnel_index, next_action_t next_action) {
        meta.tunnel_index = tunnel_index;
        meta.next_action = next_action;
        meta.tunnel.kind = TUNNEL_KIND_GENEVE_DECAP;
        meta.events.tunnel_in = true;
    }

    // Transport mode: ESP goes between the packet's own IP header and its payload.
    action ipsec_encrypt_transport(tunnel_index_t tunnel_index, next_action_t next_action,
                                   sa_index_t sa_index, bit<32> spi, bit<1> nat_t) {
        meta.tunnel_index = tunnel_index;
        meta.next_action = next_action;
        meta.tunnel.kind = TUNNEL_KIND_IPSEC_ENCRYPT;
        meta.events.tunnel_in = true;
        meta.tunnel.sa_index = sa_index;
        meta.tunnel.spi = spi;
        meta.tunnel.tunnel_mode = false;
        meta.tunnel.nat_t = nat_t == 1;
    }

    action ipsec_encrypt_tunnel_v4(tunnel_index_t tunnel_index, next_action_t next_action,
                                   sa_index_t sa_index, bit<32> spi, bit<1> nat_t,
                                   ipv4_addr_t src_addr, ipv4_addr_t dst_addr) {
        meta.tunnel_index = tunnel_index;
        meta.next_action = next_action;
        meta.tunnel.kind = TUNNEL_KIND_IPSEC_ENCRYPT;
        meta.events.tunnel_in = true;
        meta.tunnel.sa_index = sa_index;
        meta.tunnel.spi = spi;
        meta.tunnel.tunnel_mode = true;
        meta.tunnel.nat_t = nat_t == 1;
        meta.tunnel.outer_is_ipv6 = false;
        meta.tunnel.outer_src = (ipv6_addr_t) src_addr;
        meta.tunnel.outer_dst = (ipv6_addr_t) dst_addr;
    }

    action ipsec_encrypt_tunnel_v6(tunnel_index_t tunnel_index, next_action_t next_action,
                                   sa_index_t sa_index, bit<32> spi, bit<1> nat_t,
                                   ipv6_addr_t src_addr, ipv6_addr_t dst_addr) {
        meta.tunnel_index = tunnel_index;
        meta.next_action = next_action;
        meta.tunnel.kind = TUNNEL_KIND_IPSEC_ENCRYPT;
        meta.events.tunnel_in = true;
        meta.tunnel.sa_index = sa_index;
        meta.tunnel.spi = spi;
        meta.tunnel.tunnel_mode = true;
        meta.tunnel.nat_t = nat_t == 1;
        meta.tunnel.outer_is_ipv6 = true;
        meta.tunnel.outer_src = src_addr;
        meta.tunnel.outer_dst = dst_addr;
    }

    // The SA comes from decrypt_sas by (tunnel_index, SPI), so several SPIs can be live at once.
    action ipsec_decrypt(tunnel_index_t tunnel_index, next_action_t next_action,
                         bit<1> tunnel_mode) {
        meta.tunnel_index = tunnel_index;
        meta.next_action = next_action;
        meta.tunnel.kind = TUNNEL_KIND_IPSEC_DECRYPT;
        meta.events.tunnel_in = true;
        meta.tunnel.tunnel_mode = tunnel_mode == 1;
    }

    @defaultonly
    action skip_tunnel() {
        meta.tunnel.kind = TUNNEL_KIND_NONE;
        meta.next_action = NEXT_ACTION_FORWARD;  // no tunnel: route the packet as it is
    }

    // ESP addressed to a decrypt tunnel whose SPI is none of its SAs (those have their own
    // tunnel_rules entries, which would have matched): the tunnel received it and drops it.
    action drop_unknown_spi(tunnel_index_t tunnel_index) {
        meta.tunnel_index = tunnel_index;
        meta.tunnel.kind = TUNNEL_KIND_NONE;
        meta.events.tunnel_in = true;
        meta.drop_reason = DROP_SA_MISS;
    }

    // Programmed by the controller, one entry per tunnel, priorities computed by the controller.
    // A miss means "no tunnel": the packet goes to forwarding as it is. The annotations carry
    // the sizes Capabilities reports into the P4Info (table and counter sizes are there anyway).
    @max_geneve_options(MAX_GENEVE_OPTIONS)
    @max_geneve_option_data(MAX_GENEVE_OPTION_DATA)
    @max_passes(MAX_PASSES)
    table tunnel_rules {
        key = {
            meta.first_ingress_port    : ternary @name("ingress_port");
            meta.prev_tunnel           : ternary @name("prev_tunnel");
            meta.key.dst_mac           : ternary @name("dst_mac");
            meta.key.src_mac           : ternary @name("src_mac");
            meta.key.ip_version        : ternary @name("ip_version");
            meta.key.ipv4_src          : ternary @name("ipv4_src");
            meta.key.ipv4_dst          : ternary @name("ipv4_dst");
            meta.key.ipv6_src          : ternary @name("ipv6_src");
            meta.key.ipv6_dst          : ternary @name("ipv6_dst");
            meta.key.tunnel_header     : ternary @name("tunnel_header");
            meta.key.esp_spi           : ternary @name("esp_spi");
            meta.key.geneve_vni        : ternary @name("geneve_vni");
            meta.key.geneve_protocol   : ternary @name("geneve_protocol");
            meta.key.vxlan_vni         : ternary @name("vxlan_vni");
            meta.key.inner_dst_mac     : ternary @name("inner_dst_mac");
            meta.key.inner_src_mac     : ternary @name("inner_src_mac");
            meta.key.inner_ip_version  : ternary @name("inner_ip_version");
            meta.key.inner_ipv4_src    : ternary @name("inner_ipv4_src");
            meta.key.inner_ipv4_dst    : ternary @name("inner_ipv4_dst");
            meta.key.inner_ipv6_src    : ternary @name("inner_ipv6_src");
            meta.key.inner_ipv6_dst    : ternary @name("inner_ipv6_dst");
        }
        actions = {
            encap_geneve_v4;
            encap_geneve_v6;
            decap_geneve;
            ipsec_encrypt_transport;
            ipsec_encrypt_tunnel_v4;
            ipsec_encrypt_tunnel_v6;
            ipsec_decrypt;
            @defaultonly skip_tunnel;
        }
        const default_action = skip_tunnel();
        counters = tunnel_rule_hits;
        size = TUNNEL_RULES_SIZE;
    }

    // Programmed by the controller: one entry per decrypt tunnel, its rule's match without the
    // SPI, at the rule's priority. Looked up only for ESP that tunnel_rules missed, so no rule
    // of any tunnel loses a packet to it. A hit drops the packet on that tunnel (unknown SPI);
    // a miss means the ESP is not for this switch: it is routed as it is, like any IP packet.
    table esp_endpoints {
        key = {
            meta.first_ingress_port    : ternary @name("ingress_port");
            meta.prev_tunnel           : ternary @name("prev_tunnel");
            meta.key.dst_mac           : ternary @name("dst_mac");
            meta.key.src_mac           : ternary @name("src_mac");
            meta.key.ip_version        : ternary @name("ip_version");
            meta.key.ipv4_src          : ternary @name("ipv4_src");
            meta.key.ipv4_dst          : ternary @name("ipv4_dst");
            meta.key.ipv6_src          : ternary @name("ipv6_src");
            meta.key.ipv6_dst          : ternary @name("ipv6_dst");
        }
        actions = {
            drop_unknown_spi;
            @defaultonly skip_tunnel;
        }
        const default_action = skip_tunnel();
        size = ESP_ENDPOINTS_SIZE;
    }

    apply {
        // Rule key: outer headers.
        meta.key.dst_mac = hdr.ethernet.dst_addr;
        meta.key.src_mac = hdr.ethernet.src_addr;
        if (hdr.ipv4.isValid()) {
            meta.key.ip_version = 4;
            meta.key.ipv4_src = hdr.ipv4.src_addr;
            meta.key.ipv4_dst = hdr.ipv4.dst_addr;
            meta.flow.src_addr = (ipv6_addr_t) hdr.ipv4.src_addr;
            meta.flow.dst_addr = (ipv6_addr_t) hdr.ipv4.dst_addr;
            meta.flow.protocol = hdr.ipv4.protocol;
        } else if (hdr.ipv6.isValid()) {
            meta.key.ip_version = 6;
            meta.key.ipv6_src = hdr.ipv6.src_addr;
            meta.key.ipv6_dst = hdr.ipv6.dst_addr;
            meta.flow.src_addr = hdr.ipv6.src_addr;
            meta.flow.dst_addr = hdr.ipv6.dst_addr;
            meta.flow.protocol = hdr.ipv6.next_hdr;
        }
        // Rule key: tunnel headers and what they carry.
        if (hdr.esp.isValid()) {
            meta.key.tunnel_header = TUNNEL_HEADER_ESP;
            meta.key.esp_spi = hdr.esp.spi;
        } else if (hdr.geneve.isValid()) {
            meta.key.tunnel_header = TUNNEL_HEADER_GENEVE;
            meta.key.geneve_vni = hdr.geneve.vni;
            meta.key.geneve_protocol = hdr.geneve.protocol;
        } else if (hdr.vxlan.isValid()) {
            meta.key.tunnel_header = TUNNEL_HEADER_VXLAN;
            meta.key.vxlan_vni = hdr.vxlan.vni;
        } else {
            meta.key.tunnel_header = TUNNEL_HEADER_NONE;
        }
        if (hdr.inner_ethernet.isValid()) {
            meta.key.inner_dst_mac = hdr.inner_ethernet.dst_addr;
            meta.key.inner_src_mac = hdr.inner_ethernet.src_addr;
        }
        if (hdr.inner_ipv4.isValid()) {
            meta.key.inner_ip_version = 4;
            meta.key.inner_ipv4_src = hdr.inner_ipv4.src_addr;
            meta.key.inner_ipv4_dst = hdr.inner_ipv4.dst_addr;
        } else if (hdr.inner_ipv6.isValid()) {
            meta.key.inner_ip_version = 6;
            meta.key.inner_ipv6_src = hdr.inner_ipv6.src_addr;
            meta.key.inner_ipv6_dst = hdr.inner_ipv6.dst_addr;
        }
        // The frame as a tunnel would carry it: no crypto shim (never present on a matching
        // pass) and no 802.1Q tag (tunnels and routing emit untagged frames).
        meta.frame_len = (bit<16>) standard_metadata.packet_length;
        if (hdr.vlan.isValid()) {
            meta.frame_len = meta.frame_len - VLAN_LEN;
        }

        if (!tunnel_rules.apply().hit) {
            if (meta.key.tunnel_header == TUNNEL_HEADER_ESP) {
                esp_endpoints.apply();
            }
        }
    }
}

#endif  // TUNNEL_OFFLOAD_CLASSIFIER_P4
