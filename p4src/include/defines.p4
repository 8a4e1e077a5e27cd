/*
 * defines.p4 — typed constants and the few macros of the TunnelOffload data plane.
 *
 * Values that the crypto worker and the controller must agree on (ports, shim codes, next actions)
 * are the contract in docs/dataplane.md; keep both in step.
 */
#ifndef TUNNEL_OFFLOAD_DEFINES_P4
#define TUNNEL_OFFLOAD_DEFINES_P4

typedef bit<9>   port_t;
typedef bit<48>  mac_addr_t;
typedef bit<32>  ipv4_addr_t;
typedef bit<128> ipv6_addr_t;
typedef bit<16>  tunnel_index_t;
typedef bit<16>  sa_index_t;
typedef bit<8>   next_action_t;
typedef bit<8>   drop_reason_t;
typedef bit<8>   tunnel_kind_t;
typedef bit<2>   tunnel_header_t;

// ---- Ports (docs/dataplane.md "Ports") -------------------------------------------------------
const port_t CRYPTO_PORT = 64;

// ---- v1model instance types, as BMv2 simple_switch sets standard_metadata.instance_type ------
const bit<32> INSTANCE_TYPE_NORMAL = 0;
const bit<32> INSTANCE_TYPE_RECIRC = 4;
#define IS_RECIRCULATED(sm) ((sm).instance_type == INSTANCE_TYPE_RECIRC)

// Field list preserved across recirculate_preserving_field_list (metadata.p4 tags the fields).
const bit<8> FL_RECIRCULATE = 1;

// ---- Protocol numbers --------------------------------------------------------------------------
const bit<16> ETHERTYPE_IPV4 = 0x0800;
const bit<16> ETHERTYPE_IPV6 = 0x86dd;
const bit<16> ETHERTYPE_VLAN = 0x8100;
const bit<16> ETHERTYPE_TEB  = 0x6558;   // transparent Ethernet bridging: Geneve inner frame

const bit<8> IP_PROTO_IPV4 = 4;
const bit<8> IP_PROTO_TCP  = 6;
const bit<8> IP_PROTO_UDP  = 17;
const bit<8> IP_PROTO_IPV6 = 41;
const bit<8> IP_PROTO_ESP  = 50;

const bit<16> UDP_PORT_IPSEC_NAT_T = 4500;   // RFC 3948
const bit<16> UDP_PORT_VXLAN       = 4789;   // RFC 7348
const bit<16> UDP_PORT_GENEVE      = 6081;   // RFC 8926

// Header lengths in bytes, for the lengths and offsets P4 writes.
const bit<16> ETHERNET_LEN = 14;
const bit<16> VLAN_LEN     = 4;
const bit<16> IPV4_LEN     = 20;
const bit<16> IPV6_LEN     = 40;
const bit<16> UDP_LEN      = 8;
const bit<16> ESP_LEN      = 8;
const bit<16> GENEVE_LEN   = 8;
const bit<16> CRYPTO_SHIM_LEN = 16;

// Outer headers built by P4 (Geneve encap, ESP tunnel mode): TTL 64, and IPv4 with DF set, so
// they are atomic datagrams whose identification may be 0 (RFC 6864).
const bit<8> OUTER_TTL = 64;
const bit<3> IPV4_FLAGS_DF = 0b010;
// Geneve source ports come from a hash of the inner flow, in 49152 .. 65535 (RFC 8926 3.3).
const bit<16> GENEVE_SRC_PORT_BASE  = 49152;
const bit<32> GENEVE_SRC_PORT_RANGE = 16384;

// ---- Crypto shim (docs/dataplane.md "The crypto shim header") --------------------------------
const bit<8> CRYPTO_SHIM_VERSION = 1;
const bit<8> CRYPTO_OP_ENCRYPT = 1;
const bit<8> CRYPTO_OP_DECRYPT = 2;
const bit<8> CRYPTO_FLAG_TUNNEL_MODE = 0x01;
const bit<8> CRYPTO_FLAG_NAT_T       = 0x02;

// ---- Next action of a rule (values as the API's Action enum and the shim's next_action) -------
const next_action_t NEXT_ACTION_FORWARD     = 1;
const next_action_t NEXT_ACTION_RECIRCULATE = 2;

// ---- What the matched rule asked for (set by the tunnel_rules actions) ------------------------
const tunnel_kind_t TUNNEL_KIND_NONE           = 0;
const tunnel_kind_t TUNNEL_KIND_GENEVE_ENCAP   = 1;
const tunnel_kind_t TUNNEL_KIND_GENEVE_DECAP   = 2;
const tunnel_kind_t TUNNEL_KIND_IPSEC_ENCRYPT  = 3;
const tunnel_kind_t TUNNEL_KIND_IPSEC_DECRYPT  = 4;

// ---- Which tunnel header the packet carries (key "tunnel_header" of tunnel_rules) -------------
const tunnel_header_t TUNNEL_HEADER_NONE   = 0;
const tunnel_header_t TUNNEL_HEADER_ESP    = 1;
const tunnel_header_t TUNNEL_HEADER_GENEVE = 2;
const tunnel_header_t TUNNEL_HEADER_VXLAN  = 3;

// ---- Drop reasons: index into the drop_reasons counter (DROP_REASON_COUNT in sizes.p4) --------
const drop_reason_t DROP_NONE                = 0;
const drop_reason_t DROP_PARSER_ERROR        = 1;   // see parser_errors for the reason
const drop_reason_t DROP_BAD_IPV4_CHECKSUM   = 2;
const drop_reason_t DROP_PASS_LIMIT          = 3;   // more than MAX_PASSES entries into ingress
const drop_reason_t DROP_NOT_IP              = 4;   // routing or encryption needs an IP header
const drop_reason_t DROP_ROUTE_MISS          = 5;
const drop_reason_t DROP_ROUTE_TO_CRYPTO     = 6;   // a route may not point at CRYPTO_PORT
const drop_reason_t DROP_NOT_GENEVE          = 7;   // decap rule hit a packet without Geneve+TEB
const drop_reason_t DROP_NOT_ESP             = 8;   // decrypt rule hit a packet without ESP
const drop_reason_t DROP_SA_MISS             = 9;   // no decrypt SA for (tunnel, SPI): unknown SPI
const drop_reason_t DROP_BAD_CRYPTO_RETURN   = 10;  // frame from CRYPTO_PORT breaks the contract
const drop_reason_t DROP_BAD_RULE            = 11;  // rule parameters outside sizes.p4 bounds

// ---- Parser error reasons: index into the parser_errors counter -------------------------------
const bit<32> PARSER_ERROR_OTHER                 = 0;
const bit<32> PARSER_ERROR_PACKET_TOO_SHORT      = 1;
const bit<32> PARSER_ERROR_NO_MATCH              = 2;
const bit<32> PARSER_ERROR_STACK_OUT_OF_BOUNDS   = 3;
const bit<32> PARSER_ERROR_HEADER_TOO_SHORT      = 4;
const bit<32> PARSER_ERROR_IP_VERSION            = 5;
const bit<32> PARSER_ERROR_IPV4_HEADER_LENGTH    = 6;
const bit<32> PARSER_ERROR_IPV4_OPTIONS          = 7;
const bit<32> PARSER_ERROR_GENEVE_VERSION        = 8;
const bit<32> PARSER_ERROR_GENEVE_OPTIONS_TOO_LONG = 9;
const bit<32> PARSER_ERROR_GENEVE_OPTION_TOO_LONG  = 10;
const bit<32> PARSER_ERROR_GENEVE_OPTION_LENGTH  = 11;
const bit<32> PARSER_ERROR_CRYPTO_SHIM           = 12;

#endif  // TUNNEL_OFFLOAD_DEFINES_P4
