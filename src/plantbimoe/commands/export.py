"""``plantbimoe export CHECKPOINT OUT_DIR``: a model in the released folder layout (safetensors)."""

from __future__ import annotations

import argparse

from .common import guarded, note


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "checkpoint",
        help="our .ckpt (pretraining or fine-tuned; also an fsdp2 sharded folder) or a released folder",
    )
    parser.add_argument("out_dir", help="folder to write (created; must be empty unless --overwrite)")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing folder")


def _run(args: argparse.Namespace) -> int:
    from ..pretrained import export_pretrained, read_checkpoint

    checkpoint = read_checkpoint(args.checkpoint)
    out = export_pretrained(checkpoint, args.out_dir, overwrite=args.overwrite)
    what = "masked LM" if checkpoint.task is None else f"fine-tuned {checkpoint.task['task_type']} model"
    note(f"exported {what} ({len(checkpoint.backbone)} backbone tensors, {len(checkpoint.head)} head "
         f"tensors) to {out}")
    return 0


def run(args: argparse.Namespace) -> int:
    return guarded("export", _run, args)
