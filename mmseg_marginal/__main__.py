"""``python -m mmseg_marginal``: the command line (:mod:`mmseg_marginal.cli`)."""

import sys

from .cli import main

if __name__ == "__main__":
    sys.exit(main())
