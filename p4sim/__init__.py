"""p4sim: an embedded v1model target that runs P4_16 source with BMv2's semantics.

Public API: `load_program` (p4sim.program), `Switch` (p4sim.switch), the control-plane state in
p4sim.runtime and the errors in p4sim.errors.
"""
