"""The FASTA reader lives in `plantbimoe.fasta` (the model library's CLI reads FASTA without the
framework above it); this name is the same module object, so attribute patches reach the reader."""

import sys

from plantbimoe import fasta

sys.modules[__name__] = fasta
