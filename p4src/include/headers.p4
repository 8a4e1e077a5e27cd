/*
 * headers.p4 — header types and the parsed/built header set, in deparse order.
 *
 * The order of headers_t IS the wire order the deparser emits. Outer headers that P4 builds
 * (Geneve encap, ESP encrypt) live in the encap_* slots at the front so that whatever was parsed
 * — including L4 headers of the original packet — follows them unchanged.
 */
#ifndef TUNNEL_OFFLOAD_HEADERS_P4
#define TUNNEL_OFFLOAD_HEADERS_P4

#include "defines.p4"
#include "sizes.p4"

// The 16-byte header every frame on CRYPTO_PORT carries, both ways (docs/dataplane.md).
header crypto_shim_t {
    bit<8>         version;
    bit<8>         op;
    bit<8>         flags;
    next_action_t  next_action;
    sa_index_t     sa_index;
    tunnel_index_t tunnel_index;
    bit<8>         pass;
    bit<8>         next_header;
    bit<8>         l3_offset;
    bit<8>         status;
    bit<16>        esp_offset;
    bit<16>        ingress_port;
}

header ethernet_t {
    mac_addr_t dst_addr;
    mac_addr_t src_addr;
    bit<16>    ether_type;
}

// One 802.1Q tag.
header vlan_t {
    bit<3>  pcp;
    bit<1>  dei;
    bit<12> vid;
    bit<16> ether_type;
}

// IPv4 without options: the parser refuses ihl != 5 (error Ipv4Options / Ipv4HeaderLength).
header ipv4_t {
    bit<4>      version;
    bit<4>      ihl;
    bit<6>      dscp;
    bit<2>      ecn;
    bit<16>     total_len;
    bit<16>     identification;
    bit<3>      flags;
    bit<13>     frag_offset;
    bit<8>      ttl;
    bit<8>      protocol;
    bit<16>     hdr_checksum;
    ipv4_addr_t src_addr;
    ipv4_addr_t dst_addr;
}

// The fixed IPv6 header; extension headers are not parsed (they stay payload).
header ipv6_t {
    bit<4>      version;
    bit<8>      traffic_class;
    bit<20>     flow_label;
    bit<16>     payload_len;
    bit<8>      next_hdr;
    bit<8>      hop_limit;
    ipv6_addr_t src_addr;
    ipv6_addr_t dst_addr;
}

header udp_t {
    bit<16> src_port;
    bit<16> dst_port;
    bit<16> length;
    bit<16> checksum;
}

// ESP header (RFC 4303): what P4 reads and writes; IV, payload and trailer stay payload.
header esp_t {
    bit<32> spi;
    bit<32> seq_no;
}

// Geneve base header (RFC 8926).
header geneve_t {
    bit<2>  version;
    bit<6>  opt_len;        // option region length in 4-byte words
    bit<1>  oam;            // O bit: control packet
    bit<1>  critical;       // C bit: critical options present
    bit<6>  reserved;
    bit<16> protocol;
    bit<24> vni;
    bit<8>  reserved2;
}

// Geneve options are carried as a bounded stack of 32-bit words (MAX_GENEVE_OPTION_WORDS). The
// parser walks each option's 4-byte header (class 16, type 8, reserved 3, length 5) with
// lookahead to check its length before extracting it; encap writes words the controller packed.
header geneve_option_word_t {
    bit<32> data;
}

header vxlan_t {
    bit<8>  flags;
    bit<24> reserved;
    bit<24> vni;
    bit<8>  reserved2;
}

struct headers_t {
    crypto_shim_t        crypto_shim;
    // Built by P4 in front of the packet.
    ethernet_t           encap_ethernet;
    ipv4_t               encap_ipv4;
    ipv6_t               encap_ipv6;
    udp_t                encap_udp;
    esp_t                encap_esp;
    geneve_t             encap_geneve;
    geneve_option_word_t[MAX_GENEVE_OPTION_WORDS] encap_geneve_options;
    // Parsed from the packet.
    ethernet_t           ethernet;
    vlan_t               vlan;
    ipv4_t               ipv4;
    ipv6_t               ipv6;
    udp_t                udp;
    esp_t                esp;
    geneve_t             geneve;
    geneve_option_word_t[MAX_GENEVE_OPTION_WORDS] geneve_options;
    vxlan_t              vxlan;
    ethernet_t           inner_ethernet;
    ipv4_t               inner_ipv4;
    ipv6_t               inner_ipv6;
}

#endif  // TUNNEL_OFFLOAD_HEADERS_P4
