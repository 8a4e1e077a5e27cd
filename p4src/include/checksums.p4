/*
 * checksums.p4 — IPv4 header checksums. A bad checksum on the outer or the inner IPv4 header
 * sets standard_metadata.checksum_error; ingress counts and drops such packets.
 *
 * UDP checksums P4 writes are 0: Geneve over IPv4 and IPv6 (RFC 8926 4.4.4 with RFC 6935/6936)
 * and NAT-T over IPv4 (the crypto worker computes it over IPv6, docs/dataplane.md).
 */
#ifndef TUNNEL_OFFLOAD_CHECKSUMS_P4
#define TUNNEL_OFFLOAD_CHECKSUMS_P4

#include "headers.p4"
#include "metadata.p4"

control VerifyChecksums(inout headers_t hdr, inout local_metadata_t meta) {
    apply {
        verify_checksum(hdr.ipv4.isValid(),
            { hdr.ipv4.version, hdr.ipv4.ihl, hdr.ipv4.dscp, hdr.ipv4.ecn, hdr.ipv4.total_len,
              hdr.ipv4.identification, hdr.ipv4.flags, hdr.ipv4.frag_offset, hdr.ipv4.ttl,
              hdr.ipv4.protocol, hdr.ipv4.src_addr, hdr.ipv4.dst_addr },
            hdr.ipv4.hdr_checksum, HashAlgorithm.csum16);
        verify_checksum(hdr.inner_ipv4.isValid(),
            { hdr.inner_ipv4.version, hdr.inner_ipv4.ihl, hdr.inner_ipv4.dscp,
              hdr.inner_ipv4.ecn, hdr.inner_ipv4.total_len, hdr.inner_ipv4.identification,
              hdr.inner_ipv4.flags, hdr.inner_ipv4.frag_offset, hdr.inner_ipv4.ttl,
              hdr.inner_ipv4.protocol, hdr.inner_ipv4.src_addr, hdr.inner_ipv4.dst_addr },
            hdr.inner_ipv4.hdr_checksum, HashAlgorithm.csum16);
    }
}

control ComputeChecksums(inout headers_t hdr, inout local_metadata_t meta) {
    apply {
        update_checksum(hdr.encap_ipv4.isValid(),
            { hdr.encap_ipv4.version, hdr.encap_ipv4.ihl, hdr.encap_ipv4.dscp,
              hdr.encap_ipv4.ecn, hdr.encap_ipv4.total_len, hdr.encap_ipv4.identification,
              hdr.encap_ipv4.flags, hdr.encap_ipv4.frag_offset, hdr.encap_ipv4.ttl,
              hdr.encap_ipv4.protocol, hdr.encap_ipv4.src_addr, hdr.encap_ipv4.dst_addr },
            hdr.encap_ipv4.hdr_checksum, HashAlgorithm.csum16);
        update_checksum(hdr.ipv4.isValid(),
            { hdr.ipv4.version, hdr.ipv4.ihl, hdr.ipv4.dscp, hdr.ipv4.ecn, hdr.ipv4.total_len,
              hdr.ipv4.identification, hdr.ipv4.flags, hdr.ipv4.frag_offset, hdr.ipv4.ttl,
              hdr.ipv4.protocol, hdr.ipv4.src_addr, hdr.ipv4.dst_addr },
            hdr.ipv4.hdr_checksum, HashAlgorithm.csum16);
    }
}

#endif  // TUNNEL_OFFLOAD_CHECKSUMS_P4
