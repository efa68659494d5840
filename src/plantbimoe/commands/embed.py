"""``plantbimoe embed MODEL INPUT -o OUT``: per-sequence embeddings of a FASTA/CSV/TSV file."""

from __future__ import annotations

import argparse

import numpy as np

from .common import add_input_format, guarded, note, read_id_sequences

SEQUENCES_PER_CHUNK = 1024


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from ..inference.runtime import add_runtime_arguments

    parser.add_argument("model", help="released-layout folder, exported folder or our .ckpt")
    parser.add_argument("input", help="FASTA, or CSV/TSV with a 'sequence' column (and 'id' or 'name'), or "
                                      "embedded:NAME (plantbimoe data)")
    parser.add_argument("-o", "--output", required=True,
                        help="OUT.npy (plus OUT.ids.txt with the ids) or OUT.parquet (needs pyarrow)")
    parser.add_argument("--pooling", choices=("mean", "center", "cls"), default="mean",
                        help="mean over the bases (default), the centre base, or [CLS]")
    parser.add_argument("--layers", default=None,
                        help="'final' (default: last hidden state after the final norm), 'all', or a "
                             "list like 0,3,final (residual stream after those layers)")
    parser.add_argument("--rc-average", action="store_true",
                        help="average each embedding with its reverse complement's")
    parser.add_argument("--max-length", type=int, default=32768,
                        help="longer sequences are tiled and stitched (default 32768 bp)")
    parser.add_argument("--overlap", type=int, default=256, help="tile overlap in bp (default 256)")
    add_input_format(parser)
    add_runtime_arguments(parser)


def _run(args: argparse.Namespace) -> int:
    from ..embedded import resolve_fasta
    from ..inference.embedding import embed_sequences, parse_layers
    from ..inference.runtime import runtime_from_args
    from ..inference.writers import require_parquet, save_embeddings
    from ..pretrained import load_pretrained

    if not args.output.endswith((".npy", ".parquet")):
        raise ValueError(f"--output {args.output}: must end in .npy or .parquet")
    if args.output.endswith(".parquet"):
        require_parquet()
    runtime = runtime_from_args(args)
    model = load_pretrained(args.model, runtime.device)
    layers = parse_layers(args.layers, model.config.n_layer)
    ids, sequences = read_id_sequences(resolve_fasta(args.input), args.input_format)
    chunks = []
    with runtime.bar(len(sequences), "embed", unit="seq") as bar:
        for start in range(0, len(sequences), SEQUENCES_PER_CHUNK):
            chunk = sequences[start : start + SEQUENCES_PER_CHUNK]
            chunks.append(embed_sequences(model, chunk, runtime, args.pooling, layers, args.rc_average,
                                          args.max_length, args.overlap))
            bar.update(len(chunk))
    array = np.concatenate(chunks)
    columns = [f"layer_{x}" if x != "final" else "final" for x in layers]
    columns = columns if len(layers) > 1 else ["embedding"]
    written = save_embeddings(args.output, ids, array, columns)
    note(f"embedded {len(ids)} sequences: array {tuple(array.shape)} -> {', '.join(map(str, written))}")
    return 0


def run(args: argparse.Namespace) -> int:
    return guarded("embed", _run, args)
