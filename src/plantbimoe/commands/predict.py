"""``plantbimoe predict CHECKPOINT INPUT -o OUT.tsv``: apply a fine-tuned sequence-task model."""

from __future__ import annotations

import argparse
import csv

from .common import add_input_format, guarded, note, read_id_sequences


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from ..inference.runtime import add_runtime_arguments

    parser.add_argument("checkpoint", help="a fine-tuned .ckpt from train.py, or its exported folder")
    parser.add_argument("input", help="FASTA, or CSV/TSV with a 'sequence' column (and 'id' or 'name')")
    parser.add_argument("-o", "--output", required=True, help="TSV to write (.gz for gzip)")
    rc = parser.add_mutually_exclusive_group()
    rc.add_argument("--rc-average", dest="rc_average", action="store_true", default=None,
                    help="average outputs over each sequence and its reverse complement")
    rc.add_argument("--no-rc-average", dest="rc_average", action="store_false",
                    help="forward strand only (default: the task's rc_eval setting)")
    parser.add_argument("--threshold", type=float, default=0.5,
                        help="probability cut for binary and multi-label predictions (default 0.5)")
    parser.add_argument("--max-length", type=int, default=None,
                        help="crop longer sequences to their central MAX_LENGTH bp (default: the crop the "
                             "model was fine-tuned with, data.crop, if any; else whole sequences)")
    tiles = parser.add_mutually_exclusive_group()
    tiles.add_argument("--tiles", dest="tiles", action="store_true", default=None,
                       help="read a sequence longer than the crop as crop-long windows overlapping by "
                            "half and average their outputs, instead of its central crop")
    tiles.add_argument("--no-tiles", dest="tiles", action="store_false",
                       help="the central crop only (default: tiles if the model was evaluated on tiles, "
                            "data.eval_tiles)")
    add_input_format(parser)
    add_runtime_arguments(parser)


def _run(args: argparse.Namespace) -> int:
    from ..atomic import atomic_text
    from ..inference.runtime import runtime_from_args
    from ..sequence_task import PlantBiMoEForSequenceTask, central_crop

    runtime = runtime_from_args(args)
    predictor = PlantBiMoEForSequenceTask.from_pretrained(args.checkpoint, args.rc_average).to(runtime.device)
    ids, sequences = read_id_sequences(args.input, args.input_format)
    max_length = args.max_length or predictor.crop
    tiles = predictor.eval_tiles if args.tiles is None else args.tiles
    if tiles and not max_length:
        raise ValueError("--tiles needs a crop: the model's data.crop or --max-length")
    cropped = sum(len(s) > max_length for s in sequences) if max_length else 0
    if tiles:
        outputs = predictor.predict_tiled(sequences, max_length, runtime, desc="predict")
    else:
        outputs = predictor.predict([central_crop(s, max_length) for s in sequences], runtime, desc="predict")
    probs = predictor.spec.probabilities(outputs)
    labels = predictor.spec.predictions(probs, args.threshold)
    regression = predictor.task_type == "regression"
    header = ["id", "prediction"] + ([] if regression else [f"prob_{k}" for k in range(probs.shape[1])])
    with atomic_text(args.output) as handle:
        writer = csv.writer(handle, delimiter="\t", lineterminator="\n")
        writer.writerow(header)
        for i, name in enumerate(ids):
            writer.writerow([name, labels[i]] + ([] if regression else [f"{p:.6f}" for p in probs[i]]))
    strands = "both strands" if predictor.rc_average else "forward strand"
    crop = f"; {cropped} cropped to their central {max_length} bp" if cropped else ""
    if cropped and tiles:
        crop = f"; {cropped} read as {max_length}-bp tiles"
    note(f"predicted {len(ids)} sequences ({predictor.task_type}, {strands}{crop}) -> {args.output}")
    return 0


def run(args: argparse.Namespace) -> int:
    return guarded("predict", _run, args)
