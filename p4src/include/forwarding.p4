/*
 * forwarding.p4 — Forwarding: after the last tunnel, route on the outermost IP destination
 * (longest prefix), send to the next hop's port and write its MACs into the outermost Ethernet
 * header. Routed frames leave untagged. TTL / hop limit are not decremented: the switch acts as
 * the tunnel end point the gateway delegated to, not as an extra router hop.
 */
#ifndef TUNNEL_OFFLOAD_FORWARDING_P4
#define TUNNEL_OFFLOAD_FORWARDING_P4

#include "headers.p4"
#include "metadata.p4"

control Forwarding(inout headers_t hdr,
                   inout local_metadata_t meta,
                   inout standard_metadata_t standard_metadata) {

    action set_next_hop(port_t port, mac_addr_t src_mac, mac_addr_t dst_mac) {
        standard_metadata.egress_spec = port;
        meta.route.hit = true;
        meta.route.src_mac = src_mac;
        meta.route.dst_mac = dst_mac;
    }

    @defaultonly
    action reject_no_route() {
        meta.drop_reason = DROP_ROUTE_MISS;
    }

    // Programmed by the controller from its routes file (the API does not cover routing); a /0
    // entry is the default route. A miss drops the packet and counts DROP_ROUTE_MISS.
    table routes_v4 {
        key = {
            meta.route.ipv4_dst : lpm @name("ipv4_dst");
        }
        actions = {
            set_next_hop;
            @defaultonly reject_no_route;
        }
        const default_action = reject_no_route();
        size = ROUTES_V4_SIZE;
    }

    // As routes_v4, for IPv6.
    table routes_v6 {
        key = {
            meta.route.ipv6_dst : lpm @name("ipv6_dst");
        }
        actions = {
            set_next_hop;
            @defaultonly reject_no_route;
        }
        const default_action = reject_no_route();
        size = ROUTES_V6_SIZE;
    }

    apply {
        // The outermost IP destination; each table is applied in one place only.
        if (hdr.encap_ipv4.isValid()) {
            meta.route.ip_version = 4;
            meta.route.ipv4_dst = hdr.encap_ipv4.dst_addr;
        } else if (hdr.encap_ipv6.isValid()) {
            meta.route.ip_version = 6;
            meta.route.ipv6_dst = hdr.encap_ipv6.dst_addr;
        } else if (hdr.ipv4.isValid()) {
            meta.route.ip_version = 4;
            meta.route.ipv4_dst = hdr.ipv4.dst_addr;
        } else if (hdr.ipv6.isValid()) {
            meta.route.ip_version = 6;
            meta.route.ipv6_dst = hdr.ipv6.dst_addr;
        }

        if (meta.route.ip_version == 4) {
            routes_v4.apply();
        } else if (meta.route.ip_version == 6) {
            routes_v6.apply();
        } else {
            meta.drop_reason = DROP_NOT_IP;
        }

        if (meta.route.hit && standard_metadata.egress_spec == CRYPTO_PORT) {
            meta.drop_reason = DROP_ROUTE_TO_CRYPTO;
        } else if (meta.route.hit && hdr.encap_ethernet.isValid()) {
            hdr.encap_ethernet.src_addr = meta.route.src_mac;
            hdr.encap_ethernet.dst_addr = meta.route.dst_mac;
        } else if (meta.route.hit && hdr.ethernet.isValid()) {
            // isValid(): p4c cannot see that the parser always extracts Ethernet
            hdr.ethernet.src_addr = meta.route.src_mac;
            hdr.ethernet.dst_addr = meta.route.dst_mac;
            if (hdr.vlan.isValid()) {
                hdr.ethernet.ether_type = hdr.vlan.ether_type;
                hdr.vlan.setInvalid();
            }
        }
    }
}

#endif  // TUNNEL_OFFLOAD_FORWARDING_P4
