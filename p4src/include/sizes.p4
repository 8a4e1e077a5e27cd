/*
 * sizes.p4 — every size of the TunnelOffload data plane, in one place.
 *
 * The controller reads these back from the P4Info (table sizes, counter sizes) and reports the
 * ones the API exposes through Capabilities. docs/dataplane.md ("Sizes") is the contract; change
 * both together.
 */
#ifndef TUNNEL_OFFLOAD_SIZES_P4
#define TUNNEL_OFFLOAD_SIZES_P4

// Tunnel indices 1 .. MAX_TUNNELS-1; 0 means "no previous tunnel". Sizes the per-tunnel counters.
// 65,536 is the most a 16-bit tunnel_index_t can number (defines.p4, the crypto shim).
#define MAX_TUNNELS 65536
// Crypto-worker SA indices 1 .. MAX_SAS-1; 0 means none. Sizes the decrypt SA table.
// Bounded by the 16-bit sa_index_t the crypto shim carries: more SAs need a wider shim field
// (a wire change of the crypto port, docs/dataplane.md).
#define MAX_SAS 65536
// Geneve options per encapsulated packet, and data bytes per option (option length <= 4 words).
#define MAX_GENEVE_OPTIONS 4
#define MAX_GENEVE_OPTION_DATA 16
// Derived bounds for the Geneve option region, counted in 32-bit words:
// per option one 4-byte option header plus up to MAX_GENEVE_OPTION_DATA / 4 data words,
// so MAX_GENEVE_OPTIONS * (1 + 4) = 20 words = 80 bytes = 640 bits.
#define MAX_GENEVE_OPTION_DATA_WORDS 4
#define MAX_GENEVE_OPTION_WORDS 20
#define GENEVE_OPTION_BITS 640
// Match passes per packet: entries into ingress (first arrival, recirculations, crypto returns).
#define MAX_PASSES 8

// Table sizes.
// Rules: one per tunnel, and one per SPI of an IPsec-decrypt tunnel (two during a rekey).
#define TUNNEL_RULES_SIZE 131072
#define DECRYPT_SAS_SIZE MAX_SAS
// ESP end points: one per decrypt tunnel (its match without the SPI).
#define ESP_ENDPOINTS_SIZE MAX_TUNNELS
#define ROUTES_V4_SIZE 1024
#define ROUTES_V6_SIZE 1024

// Per-tunnel byte totals (counters.p4): the out and drop-out counters count v1model's pass
// length; the difference to the frame the tunnel emitted, plus an offset of
// 2^(LENGTH_DELTA_BITS - 1), is counted bit by bit in LENGTH_DELTA_BITS packet cells per tunnel.
// Every such difference is below 256 bytes in size (docs/dataplane.md "Counters" derives it), so
// 9 bits hold it. TUNNEL_DELTA_CELLS is MAX_TUNNELS * LENGTH_DELTA_BITS (the controller reads both
// back from the P4Info and checks them).
#define LENGTH_DELTA_BITS 9
// 2^(LENGTH_DELTA_BITS - 1), a literal (p4c-bm2-ss shifts by literals only); the controller
// derives it from the P4Info's cell counts and tests/controller_dp checks this value.
#define LENGTH_DELTA_OFFSET 256
#define TUNNEL_DELTA_CELLS 589824

// Counter array sizes for the reason codes defined in defines.p4.
#define DROP_REASON_COUNT 16
#define PARSER_ERROR_REASON_COUNT 16

#endif  // TUNNEL_OFFLOAD_SIZES_P4
