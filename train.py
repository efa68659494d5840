"""Train PlantBiMoE: compose the Hydra config, fit, test, return the metric to optimise.

    python train.py                                              # embedded default (CPU)
    python train.py experiment=pretrain_42species trainer=a800x8 # the paper's recipe
    python train.py -m experiment=finetune_mpgb data/mpgb=glob(*) seed=1,2,3
    python train.py hydra.run.dir=logs/pretrain_arabidopsis_tiny/runs/<stamp> ckpt_path=last  # resume

A failing run prints one line (HYDRA_FULL_ERROR=1 for the traceback, which is also in the run's
train.log), exits 1 and leaves FAILED with the message in its run folder (tasks/failure.py).
"""

import hydra
from omegaconf import DictConfig

from tasks.failure import guarded_run


@hydra.main(version_base="1.3", config_path="conf", config_name="train")
def main(cfg: DictConfig) -> float | None:
    return guarded_run(cfg)


if __name__ == "__main__":
    main()
