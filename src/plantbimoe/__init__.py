"""PlantBiMoE: bidirectional Mamba + sparse Mixture-of-Experts masked DNA language model (pure PyTorch)."""

from .backbone import BackboneOutput, PlantBiMoEBlock, PlantBiMoEModel
from .bimamba import BiMamba
from .config import InitializerConfig, PlantBiMoEConfig, SSMConfig
from .convert import ours_to_released, released_to_ours
from .ffn import SwiGLU
from .mamba import Mamba
from .mlm import MaskedLMOutput, PlantBiMoEForMaskedLM, masked_lm_loss
from .moe import RouterOutput, SparseMoE
from .params import count_parameters
from .pooling import AttentionPool, center_pool, center_window_pool, cls_pool, masked_mean_pool
from .pretrained import export_pretrained, load_backbone_state, load_pretrained, load_released_folder
from .sequence_task import PlantBiMoEForSequenceTask

__all__ = [
    "AttentionPool",
    "BackboneOutput",
    "BiMamba",
    "InitializerConfig",
    "Mamba",
    "MaskedLMOutput",
    "PlantBiMoEBlock",
    "PlantBiMoEConfig",
    "PlantBiMoEForMaskedLM",
    "PlantBiMoEForSequenceTask",
    "PlantBiMoEModel",
    "RouterOutput",
    "SSMConfig",
    "SparseMoE",
    "SwiGLU",
    "center_pool",
    "center_window_pool",
    "cls_pool",
    "count_parameters",
    "export_pretrained",
    "load_backbone_state",
    "load_pretrained",
    "load_released_folder",
    "masked_lm_loss",
    "masked_mean_pool",
    "ours_to_released",
    "released_to_ours",
]
