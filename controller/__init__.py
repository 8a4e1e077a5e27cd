"""TunnelOffload controller: the gRPC API server (tunneloffload.v1alpha1 and v2 on one port).

Request flow: ``servicer`` (gRPC in/out) → ``service`` (stream planning, capacity, apply) →
``validation`` (pure checks, typed errors) → ``store`` (SQLite, sealed keys) and ``dataplane``
(the narrow seam to the switch). See docs/api.md and docs/architecture.md.
"""
