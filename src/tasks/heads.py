"""The sequence-task head lives in `plantbimoe.heads` (pure PyTorch, used by the library's
`PlantBiMoEForSequenceTask` and ``plantbimoe predict``); its names stay importable from here."""

from plantbimoe.heads import ATTENTION_MAX_OFFSET, POOLINGS, SequenceHead, check_pooling

__all__ = ["ATTENTION_MAX_OFFSET", "POOLINGS", "SequenceHead", "check_pooling"]
