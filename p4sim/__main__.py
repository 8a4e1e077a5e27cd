"""``python -m p4sim``: the same as the ``p4sim`` console command."""

import sys

from p4sim.cli import main

sys.exit(main())
