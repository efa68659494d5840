"""``plantbimoe-compare``: published MPGB results into TensorBoard, and the leaderboard.

    plantbimoe-compare tensorboard --logdir logs          # then: tensorboard --logdir logs
    plantbimoe-compare leaderboard logs/finetune_mpgb --out reports/leaderboard   # .md .csv .png
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from comparison.published import load_published


def _tensorboard(args: argparse.Namespace) -> int:
    from comparison.tensorboard import write_reference_runs

    published = load_published(args.data)
    folder = write_reference_runs(args.logdir, published, span=args.span)
    print(f"wrote {len(published.results)} reference runs under {folder}")
    print(f"view them beside your runs: tensorboard --logdir {args.logdir}")
    return 0


def _leaderboard(args: argparse.Namespace) -> int:
    from comparison.leaderboard import our_entries, published_entries, write_leaderboard
    from comparison.plot import plot_comparison
    from tasks.aggregate import aggregate, collect

    published = load_published(args.data)
    results = collect(args.runs)
    if not args.runs:
        print("no run folders given (e.g. logs/finetune_mpgb): published results only", file=sys.stderr)
    elif not results:
        print(f"no results.json under {', '.join(args.runs)}: published results only", file=sys.stderr)
    entries = our_entries(aggregate(results), published) + published_entries(published)
    out = Path(args.out)
    for path in write_leaderboard(entries, published, out):
        print(f"wrote {path}")
    if not args.no_plot:
        print(f"wrote {plot_comparison(entries, published, out.with_suffix('.png'))}")
    return 0


def main(argv: list[str] | None = None) -> int:
    """Command line entry point."""
    data = argparse.ArgumentParser(add_help=False)  # --data before or after the command
    data.add_argument("--data", default=argparse.SUPPRESS,
                      help="published results file (default: the shipped one)")
    parser = argparse.ArgumentParser(prog="plantbimoe-compare", description=__doc__.split("\n\n")[0],
                                     parents=[data])
    parser.set_defaults(data=None)
    commands = parser.add_subparsers(dest="command", required=True)
    board = commands.add_parser("tensorboard", parents=[data],
                                help="write the published results as TensorBoard runs")
    board.add_argument("--logdir", default="logs", help="log folder; runs go to <logdir>/published")
    board.add_argument("--span", type=int, default=0, help="also draw each value at this step (a flat line)")
    board.set_defaults(run=_tensorboard)
    table = commands.add_parser("leaderboard", parents=[data],
                                help="our aggregated runs beside the published results")
    table.add_argument("runs", nargs="*", default=[], help="run folders searched for results.json")
    table.add_argument("--out", default="reports/leaderboard", help="writes <out>.md, <out>.csv, <out>.png")
    table.add_argument("--no-plot", action="store_true", help="skip the comparison image")
    table.set_defaults(run=_leaderboard)
    args = parser.parse_args(argv)
    return args.run(args)


if __name__ == "__main__":
    sys.exit(main())
