"""``python -m comparison`` runs the ``plantbimoe-compare`` command line."""

import sys

from comparison.cli import main

sys.exit(main())
