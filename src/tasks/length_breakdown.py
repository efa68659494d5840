"""A fine-tuned model's headline metric by sequence length, on a labelled split file: where a
score on a variable-length task (lncRNA: 101-6,000 bp) comes from and where it is lost.

    python -m tasks.length_breakdown CHECKPOINT FILE --edges 512 1500 [--max-length N] [--[no-]tiles] [-o F]

The model reads each sequence as ``plantbimoe predict`` does: the central ``crop`` bases the
model was fine-tuned with (data.crop), unless ``--max-length`` names another crop (0: whole
sequences). With ``--tiles`` (the default for a model evaluated on tiles, data.eval_tiles;
``--no-tiles`` turns it off) a longer sequence is read instead as windows of that length
overlapping by half, and their raw outputs are averaged. Bins are by the whole sequence's
length. Prints a table; ``-o`` writes it as JSON.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np
import torch

from datamodules.mpgb.readers import read_dataset
from plantbimoe.atomic import atomic_text
from plantbimoe.inference.runtime import Runtime
from plantbimoe.inference.sequences import detect_format
from plantbimoe.sequence_task import PlantBiMoEForSequenceTask, central_crop
from tasks.metrics import build_metrics, metric_inputs


def breakdown(model: PlantBiMoEForSequenceTask, path: Path, edges: list[int], crop: int | None,
              runtime: Runtime, tiles: bool = False) -> list[dict[str, Any]]:
    """One row per length bin (and one for all sequences): its bounds, size and every metric."""
    if sorted(set(edges)) != edges or (edges and edges[0] < 1):
        raise ValueError(f"--edges must be increasing positive lengths, got {edges}")
    data = read_dataset(path, detect_format(path), model.task_type, model.num_labels, max_length=None)
    lengths = data.lengths()
    sequences = [data.sequence(i) for i in range(len(data))]
    if tiles and crop:
        outputs = torch.from_numpy(model.predict_tiled(sequences, crop, runtime))
    else:
        outputs = torch.from_numpy(model.predict([central_crop(s, crop) for s in sequences], runtime))
    labels = torch.from_numpy(np.asarray(data.labels))
    lows = [0, *edges[:-1]]
    bins = [(f"{lo + 1}-{hi}", (lengths > lo) & (lengths <= hi)) for lo, hi in zip(lows, edges, strict=True)]
    bins.append((f">{edges[-1]}", lengths > edges[-1]))
    rows = []
    for name, keep in [("all", np.ones(len(lengths), dtype=bool)), *bins]:
        row: dict[str, Any] = {"lengths": name, "n": int(keep.sum())}
        chosen = torch.from_numpy(keep)
        if row["n"] and not (model.task_type == "binary" and len(labels[chosen].unique()) < 2):
            metrics = build_metrics(model.task_type, model.num_labels)
            metrics.update(*metric_inputs(model.task_type, outputs[chosen], labels[chosen]))
            row |= {k: round(float(v), 4) for k, v in metrics.compute().items()}
        rows.append(row)
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tasks.length_breakdown",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("checkpoint", help="a fine-tuned .ckpt from train.py, or its exported folder")
    parser.add_argument("file", type=Path, help="labelled split file (FASTA, CSV or TSV, as the MPGB data)")
    parser.add_argument("--edges", type=int, nargs="+", required=True, help="upper bounds of the length bins")
    parser.add_argument("--max-length", type=int, default=None,
                        help="central crop the model reads (default: its data.crop; 0: whole sequences)")
    parser.add_argument("--tiles", action=argparse.BooleanOptionalAction, default=None,
                        help="read longer sequences as half-overlapping crop-long windows, outputs averaged "
                             "(default: as the model was evaluated, data.eval_tiles)")
    parser.add_argument("-o", "--output", type=Path, default=None, help="JSON file to write")
    args = parser.parse_args(argv)
    try:
        model = PlantBiMoEForSequenceTask.from_pretrained(args.checkpoint)
        crop = model.crop if args.max_length is None else args.max_length
        tiles = model.eval_tiles if args.tiles is None else args.tiles
        with torch.no_grad():
            rows = breakdown(model, args.file, args.edges, crop, Runtime(), tiles)
    except (OSError, ValueError) as e:
        print(f"length_breakdown: {e}", file=sys.stderr)
        return 2
    columns = ["lengths", "n", *sorted({k for r in rows for k in r} - {"lengths", "n"})]
    reading = f"{crop}-base tiles" if tiles and crop else f"crop: {crop or 'whole sequences'}"
    print(f"{args.checkpoint} on {args.file} ({reading})")
    print(" | ".join(columns))
    for row in rows:
        print(" | ".join(str(row.get(c, "n/a")) for c in columns))
    if args.output:
        with atomic_text(args.output) as handle:
            report = {"checkpoint": str(args.checkpoint), "file": str(args.file), "crop": crop,
                      "tiles": bool(tiles and crop), "rows": rows}
            json.dump(report, handle, indent=2)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
