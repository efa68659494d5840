"""The embedded corpus lives in `plantbimoe.embedded` (the model library's CLI resolves
``embedded:NAME`` without the framework above it); this name is the same module object, and
``python -m datamodules.embedded`` still lists the assemblies."""

import sys

from plantbimoe import embedded

if __name__ == "__main__":
    sys.exit(embedded.main())
sys.modules[__name__] = embedded
