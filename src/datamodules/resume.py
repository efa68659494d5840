"""Shared by the resumable loaders: does a checkpoint's saved position belong to this data stream?"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

log = logging.getLogger(__name__)


def same_stream(state: Mapping[str, Any], identity: Mapping[str, Any], what: str) -> bool:
    """True when `state` (a loader's saved state) was saved for the stream that `identity`
    describes (seed, sizes, batching, ...); otherwise one warning naming what changed, and the
    caller restarts the saved epoch from its first batch instead of resuming exactly."""
    changed = sorted(k for k, v in identity.items() if state.get(k) != v)
    if changed:
        log.warning("the checkpoint's %s differs in %s (saved %s, now %s): epoch %s restarts from its "
                    "first batch instead of resuming exactly", what, ", ".join(changed),
                    {k: state.get(k) for k in changed}, {k: identity[k] for k in changed},
                    state.get("epoch"))
    return not changed
