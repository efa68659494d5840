"""``plantbimoe score-windows MODEL FASTA -o OUT``: per-base scores along long sequences.

Sequences are tiled with overlap and the per-base outputs stitched (plantbimoe.inference.tracks).
``--region CHROM:START-END`` (1-based, inclusive) scores only that part of a whole-genome FASTA,
read through its index (plain or bgzip FASTA; plantbimoe.genome builds the .fai/.gzi if missing).
``.bedgraph`` output (scalar scores): a ``browser position`` line (with --region) and a ``track``
line, then one line per base in genome coordinates (0-based start; a record named CHROM:START-END,
as samtools faidx cuts them, is placed on CHROM); N bases are left out. For bigWig, drop the two
header lines and run ``bedGraphToBigWig`` with the genome's chrom.sizes.
``.npz`` output: one array per record (or the region), keyed by its name ((L,), (L, 4) or (L, d)).
"""

from __future__ import annotations

import argparse
from collections.abc import Iterator

import numpy as np

from .common import guarded, note


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from ..inference.runtime import add_runtime_arguments

    parser.add_argument("model", help="released-layout folder, exported folder or our .ckpt")
    parser.add_argument("fasta", help="FASTA (plain, gzip or bgzip) or embedded:NAME (plantbimoe data); each "
                                      "record is scored end to end unless --region picks a part of one "
                                      "(then plain or bgzip: read through its .fai index, built if missing)")
    parser.add_argument("-o", "--output", required=True, help="OUT.bedgraph (scalar scores) or OUT.npz")
    parser.add_argument("--score", choices=("ref_logprob", "entropy", "probs", "embeddings"),
                        default="ref_logprob",
                        help="masked log p(reference base) (default), masked entropy in bits, "
                             "masked A/C/G/T probabilities, or final hidden states")
    parser.add_argument("--region", default=None,
                        help="score only CHROM:START-END (1-based, inclusive) of the FASTA, e.g. "
                             "NC_003070.9:3001-9000; output coordinates stay those of the genome")
    parser.add_argument("--window", type=int, default=4096, help="tile length in bp (default 4096)")
    parser.add_argument("--overlap", type=int, default=512, help="tile overlap in bp (default 512)")
    parser.add_argument("--mask-stride", type=int, default=8,
                        help="each pass masks every MASK_STRIDE-th base (default 8: 12.5%%)")
    add_runtime_arguments(parser)


def _scored(args: argparse.Namespace, model, runtime) -> Iterator[tuple[str, str, int, np.ndarray]]:
    """(name, chromosome, 0-based genome offset, scores) per record, or for the --region."""
    from ..embedded import resolve_fasta
    from ..fasta import read_fasta
    from ..inference.regions import parse_region, read_region, record_origin
    from ..inference.tracks import position_scores
    from ..tokenizer import encode

    fasta = resolve_fasta(args.fasta)
    if args.region:
        region = parse_region(args.region)
        records = [(str(region), region.chrom, region.start, read_region(fasta, region))]
    else:
        records = ((r.name, *record_origin(r.name), r.sequence) for r in read_fasta(fasta))
    for name, chrom, offset, sequence in records:
        scores = position_scores(model, encode(sequence), runtime, args.score, args.window, args.overlap,
                                 args.mask_stride, desc=name)
        yield name, chrom, offset, scores


def _run(args: argparse.Namespace) -> int:
    from ..atomic import atomic_path, atomic_text
    from ..inference.regions import parse_region
    from ..inference.runtime import runtime_from_args
    from ..pretrained import load_pretrained

    bedgraph = args.output.endswith((".bedgraph", ".bedGraph", ".bedgraph.gz", ".bedGraph.gz"))
    if not bedgraph and not args.output.endswith(".npz"):
        raise ValueError(f"--output {args.output}: must end in .bedgraph (or .bedgraph.gz) or .npz")
    if bedgraph and args.score in ("probs", "embeddings"):
        raise ValueError(f"--score {args.score} has several values per base: write .npz")
    if args.region:
        parse_region(args.region)  # a malformed region fails before the model loads
    runtime = runtime_from_args(args)
    model = load_pretrained(args.model, runtime.device)
    bases = 0
    if bedgraph:
        with atomic_text(args.output) as handle:
            if args.region:
                handle.write(f"browser position {parse_region(args.region)}\n")
            handle.write(f'track type=bedGraph name="PlantBiMoE {args.score}" description="PlantBiMoE '
                         f'{args.score} per base ({args.model})" visibility=full autoScale=on\n')
            for _, chrom, offset, values in _scored(args, model, runtime):
                bases += len(values)
                for i in np.flatnonzero(~np.isnan(values)).tolist():
                    handle.write(f"{chrom}\t{offset + i}\t{offset + i + 1}\t{values[i]:.5g}\n")
    else:
        arrays = {name: values for name, _, _, values in _scored(args, model, runtime)}
        bases = sum(len(v) for v in arrays.values())
        with atomic_path(args.output) as tmp, open(tmp, "wb") as handle:
            np.savez(handle, **arrays)
    note(f"scored {bases} bases ({args.score}) -> {args.output}")
    return 0


def run(args: argparse.Namespace) -> int:
    return guarded("score-windows", _run, args)
