"""Linear probe: frozen PlantBiMoE embeddings + L2 logistic (or ridge) regression, no fine-tuning.

What pretraining put into the features, measured on a labelled dataset: each sequence is embedded
once by the frozen backbone (a hidden state, mean over the bases and the centre token,
concatenated: the two poolings the task presets use), the features are standardised on train,
and the L2 strength is chosen on validation by the dataset's headline metric (the k-mer
baseline's fit and evaluation, ``baselines.kmer``). The hidden state is the final one (after
the last norm); with ``+probe_layers=all`` (or a list like ``[1,3,final]``, as ``plantbimoe
embed --layers``) every listed layer is probed, the one with the best validation score is kept and
tested, and each layer's scores go to results.json (``layers``). ``init_from`` gives the
backbone (a checkpoint, an exported folder or a shipped model's short name); without it the
backbone is randomly initialised from ``seed``, which is the control every probe needs. Same
overrides as train.py; results.json is labelled ``probe-<source>`` (or ``task.run_label``):

    python -m tasks.linear_probe experiment=finetune_arabidopsis init_from=arabidopsis-tiny
    python -m tasks.linear_probe experiment=finetune_arabidopsis data/mpgb=embedded/tair10_lncrna seed=2
    python -m tasks.linear_probe experiment=finetune_arabidopsis init_from=arabidopsis-tiny +probe_layers=all
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

import hydra
import numpy as np
import torch
from omegaconf import DictConfig, ListConfig, OmegaConf

from baselines.linear import DEFAULT_ALPHAS, SPLITS, fit_best_features, record_run
from datamodules.mpgb.sequences import LabeledSequences
from plantbimoe import PlantBiMoEConfig
from plantbimoe.inference.embedding import Layer, parse_layers
from plantbimoe.inference.forward import forward_batches
from plantbimoe.inference.runtime import Runtime
from plantbimoe.mlm import PlantBiMoEForMaskedLM
from plantbimoe.pooling import center_pool, masked_mean_pool
from plantbimoe.pretrained import read_checkpoint
from plantbimoe.tokenizer import CLS_ID, SEP_ID, add_special_tokens

log = logging.getLogger(__name__)
SPECIAL_IDS = (CLS_ID, SEP_ID)


def frozen_model(init_from: str | None, backbone: DictConfig, seed: int) -> PlantBiMoEForMaskedLM:
    """The backbone to probe: read from `init_from`, else randomly initialised from `seed`."""
    if init_from:
        return read_checkpoint(init_from).masked_lm()
    torch.manual_seed(seed)
    config = PlantBiMoEConfig.from_dict(OmegaConf.to_container(backbone, resolve=True))
    return PlantBiMoEForMaskedLM(config).eval()


def probe_features(model: PlantBiMoEForMaskedLM, data: LabeledSequences, runtime: Runtime,
                   layers: list[Layer]) -> np.ndarray:
    """(N, len(layers), 2 d) float32: per sequence ([CLS] bases [SEP], one forward pass) and layer,
    the hidden state averaged over the bases and at the centre token: the mean and centre
    poolings of the heads. A layer is ``"final"`` (after the last norm) or i (the residual stream
    after layer i)."""
    bounds = zip(data.offsets[:-1], data.offsets[1:], strict=True)
    rows = [add_special_tokens(data.tokens[a:b]) for a, b in bounds]
    out = np.zeros((len(rows), len(layers), 2 * model.config.d_model), dtype=np.float32)
    need_hidden = any(layer != "final" for layer in layers)
    for index, output, mask in forward_batches(model, rows, runtime, output_hidden_states=need_hidden):
        ids = torch.as_tensor(np.stack([np.pad(rows[i], (0, mask.shape[1] - len(rows[i]))) for i in index]))
        states = output.backbone.hidden_states
        for slot, layer in enumerate(layers):
            hidden = (output.backbone.last_hidden_state if layer == "final" else states[layer]).float()
            mean = masked_mean_pool(hidden, mask, ids, SPECIAL_IDS)
            out[index, slot] = torch.cat([mean, center_pool(hidden, mask)], dim=1).numpy()
    return out


def run_probe(datamodule, model: PlantBiMoEForMaskedLM, runtime: Runtime, layers: list[Layer],
              alphas: tuple[float, ...] = DEFAULT_ALPHAS) -> tuple[dict[str, float], dict[str, Any]]:
    """Embed every split once, fit on train for each layer and alpha, keep the (layer, alpha) with
    the best validation headline; return (its val + test metrics, {"layer", "alpha",
    "embed_seconds"}, plus "layers": every layer's validation and test headline when several)."""
    datamodule.setup("fit")
    datamodule.setup("test")
    start = time.perf_counter()
    with torch.no_grad():
        feats = {s: torch.from_numpy(probe_features(model, datamodule.splits[s], runtime, layers))
                 for s in SPLITS}
    embed_seconds = time.perf_counter() - start
    y = {s: torch.from_numpy(datamodule.splits[s].labels) for s in SPLITS}
    headline = datamodule.metric
    candidates = ((str(layer), {s: f[:, i] for s, f in feats.items()}) for i, layer in enumerate(layers))
    layer, fit, fits = fit_best_features(candidates, y, datamodule.task_type, datamodule.num_labels, headline,
                                         alphas, "probe layer ")
    chosen: dict[str, Any] = {"layer": layer, "alpha": fit.alpha, "embed_seconds": round(embed_seconds, 1)}
    if len(layers) > 1:
        chosen["layers"] = {key: {"val": f.val_metric, "test": f.metrics[f"test/{headline}"]}
                            for key, f in fits.items()}
    return fit.metrics, chosen


def probe_layers(spec: object, n_layer: int) -> list[Layer]:
    """The layers ``+probe_layers=...`` names: ``all``, a list (``[1,3,final]``) or unset (the final
    one)."""
    if spec is None:
        return ["final"]
    text = ",".join(map(str, spec)) if isinstance(spec, list | ListConfig) else str(spec)
    try:
        return parse_layers(text, n_layer)
    except ValueError as err:
        raise ValueError(f"probe_layers={text!r}: {err}") from None


def probe_label(cfg: DictConfig) -> str:
    label = cfg.task.get("run_label")
    if label:
        return str(label)
    return "probe-" + (Path(str(cfg.init_from)).name if cfg.get("init_from") else "random-init")


@hydra.main(version_base="1.3", config_path="../../conf", config_name="train")
def main(cfg: DictConfig) -> float:
    """Hydra entry point: the overrides of train.py (data, backbone, init_from, seed, task.run_label)."""
    datamodule = hydra.utils.instantiate(cfg.data)
    if not hasattr(datamodule, "splits"):
        raise ValueError("the linear probe needs an MPGB-format dataset: select data/mpgb=<dataset>")
    datamodule.prepare_data()
    model = frozen_model(cfg.get("init_from"), cfg.backbone, int(cfg.seed))
    runtime = Runtime(device=torch.device("cpu"), batch_size=int(cfg.data.batch_size))
    layers = probe_layers(cfg.get("probe_layers"), model.config.n_layer)
    metrics, chosen = run_probe(datamodule, model, runtime, layers)
    hparams = {"init_from": str(cfg.get("init_from")), **chosen}
    return record_run(cfg, datamodule, probe_label(cfg), metrics, hparams, cfg.get("init_from"))

if __name__ == "__main__":
    main()
