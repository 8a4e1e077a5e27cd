/*
 * metadata.p4 — per-packet metadata. Only the @field_list(FL_RECIRCULATE) fields survive a
 * recirculation; v1model zeroes the rest for every pass.
 */
#ifndef TUNNEL_OFFLOAD_METADATA_P4
#define TUNNEL_OFFLOAD_METADATA_P4

#include "defines.p4"
#include "sizes.p4"

// Scratch state of the parser's Geneve option walk.
struct parser_metadata_t {
    bit<32> option_word;        // lookahead of the next option header
    bit<8>  words_left;         // option words still to parse
    bit<8>  data_words_left;    // data words of the current option still to parse
    bit<8>  decrypted_next;     // decrypted tunnel-mode frame from CRYPTO_PORT: inner IP protocol
    bit<32> l4_ports;           // lookahead of a TCP header's source and destination ports
}

// The lookup key of tunnel_rules, copied out of the headers by the classifier so that absent
// headers read as zero and every key has a stable @name.
struct rule_key_t {
    mac_addr_t      dst_mac;
    mac_addr_t      src_mac;
    bit<4>          ip_version;     // 4, 6, or 0 when the packet has no IP header
    ipv4_addr_t     ipv4_src;
    ipv4_addr_t     ipv4_dst;
    ipv6_addr_t     ipv6_src;
    ipv6_addr_t     ipv6_dst;
    tunnel_header_t tunnel_header;
    bit<32>         esp_spi;
    bit<24>         geneve_vni;
    bit<16>         geneve_protocol;
    bit<24>         vxlan_vni;
    mac_addr_t      inner_dst_mac;
    mac_addr_t      inner_src_mac;
    bit<4>          inner_ip_version;
    ipv4_addr_t     inner_ipv4_src;
    ipv4_addr_t     inner_ipv4_dst;
    ipv6_addr_t     inner_ipv6_src;
    ipv6_addr_t     inner_ipv6_dst;
}

// Parameters of the matched rule's tunnel action, consumed by Geneve / Esp.
struct tunnel_params_t {
    tunnel_kind_t kind;
    bool          outer_is_ipv6;
    ipv6_addr_t   outer_src;          // IPv4 addresses in the low 32 bits
    ipv6_addr_t   outer_dst;
    mac_addr_t    inner_dst_mac;
    mac_addr_t    inner_src_mac;
    bit<24>       vni;
    bit<1>        oam;
    bit<1>        critical;
    bit<6>        option_words;
    bit<GENEVE_OPTION_BITS> options;  // option region as on the wire, left-aligned, zero-padded
    sa_index_t    sa_index;
    bit<32>       spi;
    bool          tunnel_mode;
    bool          nat_t;
}

// Flow fields hashed into the Geneve UDP source port.
struct flow_t {
    ipv6_addr_t src_addr;       // IPv4 addresses in the low 32 bits
    ipv6_addr_t dst_addr;
    bit<8>      protocol;
    bit<16>     l4_src_port;
    bit<16>     l4_dst_port;
}

// The route lookup of Forwarding.
struct route_t {
    bit<4>      ip_version;     // of the outermost IP header: 4, 6, or 0 when there is none
    ipv4_addr_t ipv4_dst;
    ipv6_addr_t ipv6_dst;
    bool        hit;
    mac_addr_t  src_mac;
    mac_addr_t  dst_mac;
}

// What the counters stage must count for this packet (counters.p4 is the one place that counts).
struct count_events_t {
    bool tunnel_in;
    bool tunnel_out;
}

struct local_metadata_t {
    // Preserved across recirculation.
    @field_list(FL_RECIRCULATE)
    tunnel_index_t prev_tunnel;       // tunnel applied on the previous pass, 0 = none
    @field_list(FL_RECIRCULATE)
    bit<8>         pass;              // entries into ingress so far, this one included
    @field_list(FL_RECIRCULATE)
    port_t         first_ingress_port;

    parser_metadata_t parsing;
    rule_key_t        key;
    tunnel_params_t   tunnel;
    flow_t            flow;
    count_events_t    events;
    route_t           route;

    tunnel_index_t tunnel_index;      // tunnel of this pass (rule hit or crypto return), 0 = none
    bool           tunnel_applied;    // the tunnel has produced its output on this pass
    next_action_t  next_action;
    bool           to_crypto;
    bool           recirculate;
    drop_reason_t  drop_reason;
    bit<16>        frame_len;         // Ethernet frame length as it will be carried (no VLAN tag)
    bit<16>        in_len;            // the frame this pass received, crypto shim excluded
    bit<16>        out_len;           // the frame the tunnel of this pass emitted (tunnel_applied)
}

#endif  // TUNNEL_OFFLOAD_METADATA_P4
