"""The crypto worker: ESP (RFC 4303) with AES-GCM (RFC 4106) and AES-CCM (RFC 4309).

The switch cannot run AES, so it sends the frames that need ESP out of its crypto port wrapped in
the crypto shim header (docs/dataplane.md); this package transforms them and sends them back on
the same port. SAs are managed over a small gRPC service on a Unix domain socket.
"""
