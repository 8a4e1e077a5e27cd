/*
 * parser.p4 — TunnelParser and TunnelDeparser.
 *
 * A parser error never drops the packet by itself (BMv2 hands it to ingress with
 * standard_metadata.parser_error set); ingress counts the reason and drops it, so nothing
 * half-parsed is ever forwarded. "Unsupported" here means counted and dropped, not ignored.
 */
#ifndef TUNNEL_OFFLOAD_PARSER_P4
#define TUNNEL_OFFLOAD_PARSER_P4

#include "headers.p4"
#include "metadata.p4"

error {
    IpVersion,              // IP version field disagrees with the EtherType / next header
    Ipv4HeaderLength,       // ihl < 5
    Ipv4Options,            // ihl > 5: IPv4 options are not supported
    GeneveVersion,          // Geneve version != 0
    GeneveOptionsTooLong,   // option region longer than MAX_GENEVE_OPTION_WORDS words
    GeneveOptionTooLong,    // one option's data longer than MAX_GENEVE_OPTION_DATA bytes
    GeneveOptionLength,     // an option runs past the option region
    CryptoShimVersion       // a frame on CRYPTO_PORT without a version-1 shim
}

parser TunnelParser(packet_in packet,
                    out headers_t hdr,
                    inout local_metadata_t meta,
                    inout standard_metadata_t standard_metadata) {

    state start {
        // Only a fresh frame on CRYPTO_PORT carries the shim: a recirculated one was stripped.
        transition select(standard_metadata.instance_type, standard_metadata.ingress_port) {
            (INSTANCE_TYPE_NORMAL, CRYPTO_PORT): parse_crypto_shim;
            default: parse_ethernet;
        }
    }

    state parse_crypto_shim {
        packet.extract(hdr.crypto_shim);
        verify(hdr.crypto_shim.version == CRYPTO_SHIM_VERSION, error.CryptoShimVersion);
        transition select(hdr.crypto_shim.op, hdr.crypto_shim.flags) {
            (CRYPTO_OP_DECRYPT, CRYPTO_FLAG_TUNNEL_MODE &&& CRYPTO_FLAG_TUNNEL_MODE):
                parse_decrypted_tunnel_shim;
            default: parse_ethernet;
        }
    }

    // A decrypted tunnel-mode frame: the plaintext after the ESP header is an IP packet.
    state parse_decrypted_tunnel_shim {
        meta.parsing.decrypted_next = hdr.crypto_shim.next_header;
        transition parse_ethernet;
    }

    state parse_ethernet {
        packet.extract(hdr.ethernet);
        transition select(hdr.ethernet.ether_type) {
            ETHERTYPE_VLAN: parse_vlan;
            ETHERTYPE_IPV4: parse_ipv4;
            ETHERTYPE_IPV6: parse_ipv6;
            default: accept;
        }
    }

    state parse_vlan {
        packet.extract(hdr.vlan);
        transition select(hdr.vlan.ether_type) {
            ETHERTYPE_IPV4: parse_ipv4;
            ETHERTYPE_IPV6: parse_ipv6;
            default: accept;
        }
    }

    state parse_ipv4 {
        packet.extract(hdr.ipv4);
        verify(hdr.ipv4.version == 4, error.IpVersion);
        verify(hdr.ipv4.ihl >= 5, error.Ipv4HeaderLength);
        verify(hdr.ipv4.ihl == 5, error.Ipv4Options);
        // Only a first fragment carries the UDP / ESP header.
        transition select(hdr.ipv4.frag_offset, hdr.ipv4.protocol) {
            (0, IP_PROTO_UDP): parse_udp;
            (0, IP_PROTO_ESP): parse_esp;
            (0, IP_PROTO_TCP): parse_tcp_ports;
            default: accept;
        }
    }

    state parse_ipv6 {
        packet.extract(hdr.ipv6);
        verify(hdr.ipv6.version == 6, error.IpVersion);
        transition select(hdr.ipv6.next_hdr) {
            IP_PROTO_UDP: parse_udp;
            IP_PROTO_ESP: parse_esp;
            IP_PROTO_TCP: parse_tcp_ports;
            default: accept;
        }
    }

    // TCP stays payload; only its ports are read, for the Geneve source-port hash.
    state parse_tcp_ports {
        meta.parsing.l4_ports = packet.lookahead<bit<32>>();
        meta.flow.l4_src_port = meta.parsing.l4_ports[31:16];
        meta.flow.l4_dst_port = meta.parsing.l4_ports[15:0];
        transition accept;
    }

    state parse_udp {
        packet.extract(hdr.udp);
        meta.flow.l4_src_port = hdr.udp.src_port;
        meta.flow.l4_dst_port = hdr.udp.dst_port;
        transition select(hdr.udp.src_port, hdr.udp.dst_port) {
            (_, UDP_PORT_GENEVE): parse_geneve;
            (_, UDP_PORT_VXLAN): parse_vxlan;
            (_, UDP_PORT_IPSEC_NAT_T): parse_nat_t;
            (UDP_PORT_IPSEC_NAT_T, _): parse_nat_t;
            default: accept;
        }
    }

    // RFC 3948: UDP 4500 carries ESP, IKE behind a four-zero-byte non-ESP marker, and one-byte
    // NAT keepalives. Anything shorter than a UDP header plus an ESP header is not ESP.
    state parse_nat_t {
        transition select(hdr.udp.length) {
            16w0 &&& 16w0xfff0: accept;     // length < 16: keepalive or runt, not ESP
            default: parse_nat_t_marker;
        }
    }

    state parse_nat_t_marker {
        transition select(packet.lookahead<bit<32>>()) {
            0: accept;                      // non-ESP marker: IKE, left to the gateway
            default: parse_esp;
        }
    }

    state parse_esp {
        packet.extract(hdr.esp);
        // On a decrypted tunnel-mode frame the plaintext IP packet follows the ESP header.
        transition select(meta.parsing.decrypted_next) {
            IP_PROTO_IPV4: parse_inner_ipv4;
            IP_PROTO_IPV6: parse_inner_ipv6;
            default: accept;
        }
    }

    state parse_geneve {
        packet.extract(hdr.geneve);
        verify(hdr.geneve.version == 0, error.GeneveVersion);
        // The documented bound: at most MAX_GENEVE_OPTION_WORDS words of options
        // (MAX_GENEVE_OPTIONS options of at most MAX_GENEVE_OPTION_DATA bytes each).
        verify(hdr.geneve.opt_len <= MAX_GENEVE_OPTION_WORDS, error.GeneveOptionsTooLong);
        meta.parsing.words_left = (bit<8>) hdr.geneve.opt_len;
        transition parse_geneve_options;
    }

    state parse_geneve_options {
        transition select(meta.parsing.words_left) {
            0: parse_geneve_payload;
            default: parse_geneve_option;
        }
    }

    // One option: its header word (length in the low 5 bits), then `length` data words.
    state parse_geneve_option {
        meta.parsing.option_word = packet.lookahead<bit<32>>();
        meta.parsing.data_words_left = (bit<8>) meta.parsing.option_word[4:0];
        verify(meta.parsing.data_words_left <= MAX_GENEVE_OPTION_DATA_WORDS,
               error.GeneveOptionTooLong);
        verify(meta.parsing.data_words_left < meta.parsing.words_left, error.GeneveOptionLength);
        meta.parsing.words_left = meta.parsing.words_left - 1 - meta.parsing.data_words_left;
        packet.extract(hdr.geneve_options.next);
        transition parse_geneve_option_data;
    }

    state parse_geneve_option_data {
        transition select(meta.parsing.data_words_left) {
            0: parse_geneve_options;
            default: parse_geneve_option_word;
        }
    }

    state parse_geneve_option_word {
        packet.extract(hdr.geneve_options.next);
        meta.parsing.data_words_left = meta.parsing.data_words_left - 1;
        transition parse_geneve_option_data;
    }

    state parse_geneve_payload {
        transition select(hdr.geneve.protocol) {
            ETHERTYPE_TEB: parse_inner_ethernet;
            default: accept;
        }
    }

    state parse_vxlan {
        packet.extract(hdr.vxlan);
        transition parse_inner_ethernet;
    }

    state parse_inner_ethernet {
        packet.extract(hdr.inner_ethernet);
        transition select(hdr.inner_ethernet.ether_type) {
            ETHERTYPE_IPV4: parse_inner_ipv4;
            ETHERTYPE_IPV6: parse_inner_ipv6;
            default: accept;
        }
    }

    state parse_inner_ipv4 {
        packet.extract(hdr.inner_ipv4);
        verify(hdr.inner_ipv4.version == 4, error.IpVersion);
        verify(hdr.inner_ipv4.ihl >= 5, error.Ipv4HeaderLength);
        verify(hdr.inner_ipv4.ihl == 5, error.Ipv4Options);
        transition accept;
    }

    state parse_inner_ipv6 {
        packet.extract(hdr.inner_ipv6);
        verify(hdr.inner_ipv6.version == 6, error.IpVersion);
        transition accept;
    }
}

// Emits every valid header in headers_t order: shim, built outer headers, then the packet.
control TunnelDeparser(packet_out packet, in headers_t hdr) {
    apply {
        packet.emit(hdr.crypto_shim);
        packet.emit(hdr.encap_ethernet);
        packet.emit(hdr.encap_ipv4);
        packet.emit(hdr.encap_ipv6);
        packet.emit(hdr.encap_udp);
        packet.emit(hdr.encap_esp);
        packet.emit(hdr.encap_geneve);
        packet.emit(hdr.encap_geneve_options);
        packet.emit(hdr.ethernet);
        packet.emit(hdr.vlan);
        packet.emit(hdr.ipv4);
        packet.emit(hdr.ipv6);
        packet.emit(hdr.udp);
        packet.emit(hdr.esp);
        packet.emit(hdr.geneve);
        packet.emit(hdr.geneve_options);
        packet.emit(hdr.vxlan);
        packet.emit(hdr.inner_ethernet);
        packet.emit(hdr.inner_ipv4);
        packet.emit(hdr.inner_ipv6);
    }
}

#endif  // TUNNEL_OFFLOAD_PARSER_P4
