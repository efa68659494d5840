"""Messages that tell a user of this project nothing, silenced one by one (never a blanket filter).

- Lightning 2.6's own pytree helper trips torch's deprecation of ``isinstance(x, LeafSpec)`` on
  every step; nothing in this project can act on it.
- Lightning's "Tip: try installing litlogger/litmodels" advertisements.
"""

from __future__ import annotations

import logging
import warnings

LIGHTNING_INFO_LOGGER = "lightning.pytorch.utilities.rank_zero"


class _DropAdvertisements(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith("💡 Tip:")


def install() -> None:
    """Install the filters (idempotent)."""
    warnings.filterwarnings("ignore", message=r"`isinstance\(treespec, LeafSpec\)` is deprecated",
                            module=r"lightning\.pytorch\.utilities\._pytree")
    logger = logging.getLogger(LIGHTNING_INFO_LOGGER)
    if not any(isinstance(f, _DropAdvertisements) for f in logger.filters):
        logger.addFilter(_DropAdvertisements())
