"""tunnelctl: command-line client of the TunnelOffload API (entry point ``tunnelctl.__main__``).

gRPC's C core logs TLS handshake failures at INFO on stderr, repeating what tunnelctl's one-line
error already says; unless the user chose a verbosity, only its errors are shown. This must run
before grpc is first imported, hence here.
"""

import os

os.environ.setdefault("GRPC_VERBOSITY", "ERROR")
