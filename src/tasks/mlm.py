"""Masked-language-model pretraining of PlantBiMoE."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any

import torch
from torch.optim import Optimizer
from torchmetrics import MeanMetric, Metric

from baselines.context_counts import ContextCounts
from plantbimoe import PlantBiMoEConfig, PlantBiMoEForMaskedLM
from plantbimoe.tokenizer import TOKEN_IDS
from tasks.base import OptimizedTask, to_plain_dict

NUCLEOTIDE_IDS = [TOKEN_IDS[b] for b in "ACGT"]


class NucleotideCounts(Metric):
    """Counts of A, C, G, T among the masked targets (summed across processes)."""

    def __init__(self) -> None:
        super().__init__()
        zeros = torch.zeros(len(NUCLEOTIDE_IDS), dtype=torch.float64)
        self.add_state("counts", default=zeros, dist_reduce_fx="sum")

    def update(self, labels: torch.Tensor) -> None:
        ids = torch.tensor(NUCLEOTIDE_IDS, device=labels.device)
        self.counts += (labels[:, None] == ids).sum(0).to(torch.float64)

    def compute(self) -> torch.Tensor:
        return self.counts


class MaskedLMTask(OptimizedTask):
    """MLM on batches from the pretraining datamodules (see docs/CONTRACTS.md).

    Logs ``train/loss`` (MLM + weighted MoE aux losses), ``train/mlm_loss``, ``val/loss`` (MLM
    only, comparable across runs), ``val/masked_acc``, ``val/perplexity``, ``val/baseline_loss``
    (cross-entropy of the training base frequencies on the same masked targets),
    ``moe/load_balance_loss``, ``moe/z_loss`` and ``moe/layer{i}/expert{e}`` (fraction of tokens).
    """

    def __init__(
        self,
        backbone: Mapping,
        optimizer: Callable[..., Optimizer],
        scheduler: Callable[..., Any] | None = None,
        softmask_weight: float = 1.0,
        log_expert_load_every: int = 25,
        context_k: int | None = 3,
        context_max_bases: int | None = 50_000_000,
    ) -> None:
        super().__init__(optimizer, scheduler)
        backbone_dict = to_plain_dict(backbone)
        self.save_hyperparameters({"backbone": backbone_dict, "softmask_weight": softmask_weight})
        self.config = PlantBiMoEConfig.from_dict(backbone_dict)
        self.model = PlantBiMoEForMaskedLM(self.config)
        self.softmask_weight = softmask_weight
        self.log_expert_load_every = log_expert_load_every
        self.tokens_seen = 0
        self.val_loss = MeanMetric()
        self.val_acc = MeanMetric()
        self.val_target_counts = NucleotideCounts()
        self.val_context_loss = MeanMetric()
        self.context_k, self.context_max_bases = context_k, context_max_bases
        self._context: ContextCounts | None = None
        self._context_fitted = False

    def forward(self, batch: dict[str, torch.Tensor]):
        weights = None
        if self.softmask_weight != 1.0 and "softmask" in batch:
            weights = torch.where(batch["softmask"], self.softmask_weight, 1.0).to(torch.float32)
        mask, labels = batch["attention_mask"], batch["labels"]
        return self.model(batch["input_ids"], attention_mask=mask, labels=labels, loss_weights=weights)

    def training_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> torch.Tensor:
        out = self(batch)
        self.tokens_seen += int(batch["attention_mask"].sum())
        size = batch["input_ids"].shape[0]
        self.log("train/loss", out.loss, prog_bar=True, batch_size=size)
        self.log("train/mlm_loss", out.mlm_loss, batch_size=size)
        self.log("moe/load_balance_loss", out.backbone.load_balance_loss, batch_size=size)
        self.log("moe/z_loss", out.backbone.z_loss, batch_size=size)
        self.log("train/tokens_seen", float(self.tokens_seen), batch_size=size)
        if self.global_step % self.log_expert_load_every == 0:
            self._log_expert_load(out.backbone.routing)
        return out.loss

    def _log_expert_load(self, routing: list) -> None:
        for layer, router in zip(self.config.moe_layer_indices(), routing, strict=True):
            for expert, share in enumerate(router.expert_load.detach().float().cpu().tolist()):
                self.log(f"moe/layer{layer}/expert{expert}", share)

    def validation_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> None:
        self._evaluate(batch)

    def test_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> None:
        self._evaluate(batch)

    def _evaluate(self, batch: dict[str, torch.Tensor]) -> None:
        out = self.model(batch["input_ids"], attention_mask=batch["attention_mask"], labels=batch["labels"])
        target = batch["labels"] != -100
        n = int(target.sum())
        if n == 0:
            return
        labels = batch["labels"][target]
        correct = (out.logits[target].argmax(-1) == labels).float().mean()
        self.val_loss.update(out.mlm_loss.detach(), weight=n)
        self.val_acc.update(correct, weight=n)
        self.val_target_counts.update(labels)
        context = self._context_model()
        if context is not None:
            total, count = context.loss(batch["input_ids"].cpu().numpy(), batch["labels"].cpu().numpy())
            if count:
                self.val_context_loss.update(torch.tensor(total / count), weight=count)

    def _context_model(self) -> ContextCounts | None:
        """The context-count floor, fitted once on the training shards (None without shards)."""
        if not self._context_fitted and self.context_k is not None and self._trainer is not None:
            sequences = getattr(getattr(self.trainer, "datamodule", None), "training_sequences", None)
            if sequences is not None:
                self._context = ContextCounts(self.context_k).fit(sequences(self.context_max_bases))
            self._context_fitted = True
        return self._context

    def on_validation_epoch_end(self) -> None:
        self._log_eval("val")

    def on_test_epoch_end(self) -> None:
        self._log_eval("test")

    def _log_eval(self, stage: str) -> None:
        if self.val_loss.update_count == 0:
            return
        loss = float(self.val_loss.compute())
        self.log(f"{stage}/loss", loss, prog_bar=stage == "val")
        self.log(f"{stage}/masked_acc", self.val_acc.compute())
        self.log(f"{stage}/perplexity", math.exp(min(loss, 50.0)))
        self.log(f"{stage}/baseline_loss", self._baseline_loss(self.val_target_counts.compute()))
        if self.val_context_loss.update_count:
            self.log(f"{stage}/context_baseline_loss", self.val_context_loss.compute())
        for metric in (self.val_loss, self.val_acc, self.val_target_counts, self.val_context_loss):
            metric.reset()

    def _baseline_loss(self, counts: torch.Tensor) -> float:
        """Cross-entropy of predicting every masked target from the training base frequencies."""
        freqs = None
        datamodule = getattr(self.trainer, "datamodule", None) if self._trainer is not None else None
        if datamodule is not None and hasattr(datamodule, "unigram_frequencies"):
            freqs = torch.as_tensor(datamodule.unigram_frequencies(), dtype=torch.float64)
        if freqs is None or freqs.numel() != 4:
            freqs = counts.double() / counts.sum()
        log_p = torch.log(freqs.clamp_min(1e-12).cpu())
        counts = counts.double().cpu()
        return float(-(counts * log_p).sum() / counts.sum())

    def on_save_checkpoint(self, checkpoint: dict) -> None:
        super().on_save_checkpoint(checkpoint)
        checkpoint["tokens_seen"] = self.tokens_seen

    def on_load_checkpoint(self, checkpoint: dict) -> None:
        super().on_load_checkpoint(checkpoint)
        self.tokens_seen = int(checkpoint.get("tokens_seen", 0))
