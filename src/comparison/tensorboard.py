"""Published results as TensorBoard runs beside ours (``tensorboard --logdir logs/``).

One run per published number, under ``<logdir>/published/<source>/<model>/<dataset or
task_<group>>``: the value as the scalar ``test/<metric>`` (the tag our fine-tuning runs log,
on the same 0-1 scale) and an hparams entry (model, source, level and the ``data/name``,
``data/task_group``, ``data/metric`` keys our runs' configs log), so the HPARAMS tab can
filter and sort them with our runs.
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

from torch.utils.tensorboard import SummaryWriter
from torch.utils.tensorboard.summary import hparams

from comparison.published import Published, Result

REFERENCE_DIR = "published"
MANIFEST = "published.json"


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", text).strip("_")


def run_path(result: Result) -> str:
    """The run's folder relative to the reference folder."""
    unit = result.dataset or f"task_{result.task_group}"
    return f"{result.source.key}/{_slug(result.model)}/{unit}"


def hparams_of(result: Result) -> dict[str, str]:
    """The hparams a reference run shows (keys shared with our runs' flattened configs)."""
    return {
        "model": result.name,
        "source": result.source.label,
        "level": "dataset" if result.dataset else "task",
        "data/name": result.dataset or f"{result.task_group} (task average)",
        "data/task_group": result.task_group,
        "data/metric": result.metric,
        "note": result.note,
    }


def write_run(folder: Path, result: Result, steps: tuple[int, ...]) -> None:
    """Scalar ``test/<metric>`` at each of `steps`, and the hparams summaries, in `folder`."""
    tag = f"test/{result.metric}"
    writer = SummaryWriter(log_dir=str(folder))
    try:
        for step in steps:
            writer.add_scalar(tag, result.value, global_step=step)
        for summary in hparams(hparams_of(result), {tag: result.value}):
            writer.file_writer.add_summary(summary)
    finally:
        writer.close()


def write_reference_runs(logdir: str | Path, published: Published, span: int = 0) -> Path:
    """Write every published result as a run under ``<logdir>/published`` and return that folder.

    With ``span > 0`` each value is drawn at steps 0 and `span` (a flat line across our training
    curves) instead of one point at step 0. An older reference folder is replaced whole; a folder
    of that name that this command did not write is left alone (error).
    """
    logdir = Path(logdir)
    target = logdir / REFERENCE_DIR
    if target.exists() and not (target / MANIFEST).is_file():
        raise FileExistsError(f"{target} exists and was not written by this command (no {MANIFEST})")
    partial = logdir / f"{REFERENCE_DIR}.partial"
    shutil.rmtree(partial, ignore_errors=True)
    steps = (0, span) if span > 0 else (0,)
    for result in published.results:
        write_run(partial / run_path(result), result, steps)
    manifest = {
        "runs": len(published.results),
        "sources": {k: {"citation": s.citation, "url": s.url} for k, s in published.sources.items()},
    }
    (partial / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n")
    if target.exists():
        shutil.rmtree(target)
    partial.rename(target)
    return target
