"""Hugging Face checkpoints stored locally (AgroNT: ESM-style, DNABERT-2: BERT-style) as
fine-tuning backbones with the interface of `plantbimoe.PlantBiMoEModel` (``backbone=hf``).
Needs ``transformers`` (the ``hf`` extra); imported by nothing in src/plantbimoe."""

from plantbimoe_hf.backbone import HFBackbone, HFBackboneConfig, HFBackboneOutput

__all__ = ["HFBackbone", "HFBackboneConfig", "HFBackboneOutput"]
