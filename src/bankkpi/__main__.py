"""``python -m bankkpi``: the ``bankkpi`` command (:mod:`bankkpi.cli`) without the script."""

import sys

from bankkpi.cli import main

if __name__ == "__main__":
    sys.exit(main())
