"""Train PlantBiMoE: compose the Hydra config, fit, test, return the metric to optimise.

    python train.py                                              # embedded default (CPU)
    python train.py experiment=pretrain_42species trainer=a800x8 # the paper's recipe
    python train.py -m experiment=finetune_mpgb data/mpgb=glob(*) seed=1,2,3
"""

import hydra
from omegaconf import DictConfig

from tasks.runner import run


@hydra.main(version_base="1.3", config_path="conf", config_name="train")
def main(cfg: DictConfig) -> float | None:
    return run(cfg)


if __name__ == "__main__":
    main()
