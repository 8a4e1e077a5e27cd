"""tunnelctl: command-line client of the TunnelOffload API (entry point ``tunnelctl.__main__``)."""
