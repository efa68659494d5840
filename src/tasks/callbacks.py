"""Callbacks: the end-of-run pretraining summary, replica check, and the step-aware progress bar."""

from __future__ import annotations

import json
import resource
import sys
import time
from pathlib import Path

from lightning import Callback, LightningModule, Trainer
from lightning.pytorch.callbacks import RichProgressBar
from rich.console import Console
from rich.table import Table

from plantbimoe import count_parameters
from plantbimoe.atomic import atomic_write_text


def peak_memory_gib(trainer: Trainer) -> float:
    """Peak memory of this process: torch's peak allocation on CUDA, else its maximum resident set."""
    if trainer.strategy.root_device.type == "cuda":
        import torch

        return torch.cuda.max_memory_allocated(trainer.strategy.root_device) / 2**30
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux, bytes on macOS
    return peak / (2**30 if sys.platform == "darwin" else 2**20)


def machine_name(trainer: Trainer) -> str:
    """What ran the training: the GPU model and count, else the CPU model and core count."""
    device = trainer.strategy.root_device
    if device.type == "cuda":
        import torch

        return f"{trainer.world_size} x {torch.cuda.get_device_name(device)}"
    from tasks.benchmark_report import machine

    return machine()


class PretrainSummary(Callback):
    """Prints and writes (``summary.json``) what a pretraining run achieved.

    Parameter counts, tokens seen, training tokens/s, and the final validation loss beside the
    base-frequency baseline and the context-count floor (baselines.context_counts) on the same
    masked targets.
    """

    def __init__(self, output_dir: str | None = None) -> None:
        self.output_dir = Path(output_dir) if output_dir else None
        self._start: float | None = None
        self._tokens_at_start = 0
        self.summary: dict = {}

    def on_train_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        self._start = time.perf_counter()
        self._tokens_at_start = getattr(pl_module, "tokens_seen", 0)

    def on_train_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        self._summarise(trainer, pl_module, None)

    def on_test_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        """The held-out test losses join summary.json (the model card reads them from there)."""
        if not self.summary:
            return
        metrics = {k: float(v) for k, v in trainer.callback_metrics.items() if v.numel() == 1}
        for name in ("loss", "baseline_loss", "context_baseline_loss", "masked_acc"):
            self.summary[f"test_{name}"] = metrics.get(f"test/{name}")
        if trainer.is_global_zero:
            self._write()

    def on_exception(self, trainer: Trainer, pl_module: LightningModule, exception: BaseException) -> None:
        """An interrupted run (Ctrl-C, SIGTERM, an error) still reports what it did."""
        if trainer.training and self._start is not None and not self.summary:
            self._summarise(trainer, pl_module, type(exception).__name__)

    def _summarise(self, trainer: Trainer, pl_module: LightningModule, stopped_by: str | None) -> None:
        elapsed = time.perf_counter() - (self._start or time.perf_counter())
        total, active = count_parameters(pl_module.model)
        tokens = getattr(pl_module, "tokens_seen", 0)
        metrics = {k: float(v) for k, v in trainer.callback_metrics.items() if v.numel() == 1}
        val_loss, baseline = metrics.get("val/loss"), metrics.get("val/baseline_loss")
        context = metrics.get("val/context_baseline_loss")
        self.summary = {
            "parameters_total": total,
            "parameters_active": active,
            "global_step": trainer.global_step,
            "tokens_seen": tokens,
            "train_seconds": round(elapsed, 1),
            "tokens_per_second": round((tokens - self._tokens_at_start) / max(elapsed, 1e-9), 1),
            "peak_memory_gib": round(peak_memory_gib(trainer), 3),
            "precision": str(trainer.precision),
            "machine": machine_name(trainer),
            "val_loss": val_loss,
            "val_baseline_loss": baseline,
            "val_masked_acc": metrics.get("val/masked_acc"),
            "beats_baseline": None if val_loss is None or baseline is None else val_loss < baseline,
            "val_context_baseline_loss": context,
            "beats_context_baseline": None if val_loss is None or context is None else val_loss < context,
            "interrupted_by": stopped_by,
        }
        if trainer.is_global_zero:
            self._print()
            self._write()

    def _write(self) -> None:
        if self.output_dir is not None:
            self.output_dir.mkdir(parents=True, exist_ok=True)
            atomic_write_text(self.output_dir / "summary.json", json.dumps(self.summary, indent=2) + "\n")

    def _print(self) -> None:
        s = self.summary
        title = "PlantBiMoE pretraining summary"
        if s["interrupted_by"]:
            title += f" (interrupted: {s['interrupted_by']})"
        table = Table(title=title, show_header=False)
        counts = f"{s['parameters_total']:,} / {s['parameters_active']:,}"
        table.add_row("parameters (total / active per token)", counts)
        table.add_row("optimizer steps", f"{s['global_step']:,}")
        table.add_row("tokens seen", f"{s['tokens_seen']:,}")
        table.add_row("training throughput", f"{s['tokens_per_second']:,} tokens/s")
        table.add_row("training time", f"{s['train_seconds'] / 60:.1f} min ({s['precision']})")
        table.add_row("peak memory", f"{s['peak_memory_gib']:.2f} GiB")
        if s["val_loss"] is not None:
            table.add_row("validation MLM loss", f"{s['val_loss']:.4f}")
        if s["val_baseline_loss"] is not None:
            verdict = "beats" if s["beats_baseline"] else "does NOT beat"
            table.add_row("base-frequency baseline", f"{s['val_baseline_loss']:.4f} (model {verdict} it)")
        if s["val_context_baseline_loss"] is not None:
            verdict = "beats" if s["beats_context_baseline"] else "does NOT beat"
            table.add_row("context-count floor", f"{s['val_context_baseline_loss']:.4f} (model {verdict} it)")
        Console().print(table)


class ReplicaConsistencyCheck(Callback):
    """After training, checks that every data-parallel replica holds the same weights.

    Each rank hashes its parameters into one float64 checksum; the checksums are all-gathered and
    written to ``replica_checksums.json``. Diverged replicas (a broken gradient all-reduce) raise.
    A no-op in single-process runs and under FSDP2 (sharded weights).
    """

    def __init__(self, output_dir: str | None = None) -> None:
        self.output_dir = Path(output_dir) if output_dir else None

    def on_train_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        if trainer.world_size < 2:
            return
        import torch

        try:
            from torch.distributed.tensor import DTensor
        except ImportError:  # torch < 2.5
            from torch.distributed._tensor import DTensor

        if any(isinstance(p, DTensor) for p in pl_module.parameters()):
            return  # sharded (FSDP2): each rank holds a different part, there are no replicas

        checksum = torch.zeros((), dtype=torch.float64, device=pl_module.device)
        for i, param in enumerate(pl_module.parameters()):
            checksum += (param.detach().double().flatten() * (1.0 + 1e-3 * i)).sum()
        gathered = trainer.strategy.all_gather(checksum).flatten().cpu().tolist()
        if trainer.is_global_zero and self.output_dir is not None:
            self.output_dir.mkdir(parents=True, exist_ok=True)
            (self.output_dir / "replica_checksums.json").write_text(json.dumps(gathered) + "\n")
        if max(gathered) - min(gathered) > 1e-6 * max(1.0, abs(gathered[0])):
            raise RuntimeError(f"data-parallel replicas hold different weights: checksums {gathered}")


class StepProgressBar(RichProgressBar):
    """Lightning's rich progress bar; a run bounded by max_steps reads "Epoch 0 (step budget 120)"
    where Lightning would print "Epoch 0/-2" (max_epochs is -1 for step-bounded runs)."""

    def _get_train_description(self, current_epoch: int) -> str:
        if (self.trainer.max_epochs or -1) >= 0:
            return super()._get_train_description(current_epoch)
        description = f"Epoch {current_epoch}"
        if self.trainer.max_steps > 0:
            description += f" (step budget {self.trainer.max_steps})"
        return f"{description:{len(self.validation_description)}}"
