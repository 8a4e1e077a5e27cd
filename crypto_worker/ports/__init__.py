"""Port I/O for the crypto port: the embedded target's nanomsg socket, or a Linux interface."""
