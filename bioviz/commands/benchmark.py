"""``bioviz benchmark``: recall, probes, CKA, activity and attribution for every embedder of a dataset."""
from __future__ import annotations

import sys

HELP = "benchmark a dataset's embeddings against baselines; writes results/ for the dashboard"


def add_parser(subparsers):
    p = subparsers.add_parser("benchmark", help=HELP, description=HELP)
    p.add_argument("--dataset", required=True, metavar="DIR")
    p.add_argument("--embedders", nargs="+", default=None, metavar="NAME",
                   help="embedders to benchmark (default: every cached embedding); comma lists work too")
    p.add_argument("--adjust", default=None, metavar="LIST",
                   help="confounders to regress out for adjusted recall: density,intensity,focus,plate,position")
    p.add_argument("--sources", default=None, metavar="LIST", help="relationship sources (default all five)")
    p.add_argument("--map-method", default="pca_centerscale", choices=["pca_centerscale", "tvn", "centerscale", "none"])
    p.add_argument("--aggregation", default="mean", choices=["mean", "median"])
    p.add_argument("--n-boot", type=int, default=1000, help="bootstrap resamples for CIs and p-values")
    p.add_argument("--out", default=None, metavar="DIR", help="output folder (default <dataset>/results)")
    p.set_defaults(func=run)
    return p


def run(args) -> int:
    from ..bench.run import run_benchmark
    from ..screen import read_screen

    screen = read_screen(args.dataset, check_images=False)
    names = None
    if args.embedders:
        names = [n for item in args.embedders for n in item.split(",") if n]
        if names == ["all"]:
            names = None
    sources = [s.strip() for s in args.sources.split(",")] if args.sources else None
    summary = run_benchmark(
        screen, names, args.adjust, out=args.out, sources=sources, method=args.map_method,
        aggregation=args.aggregation, n_boot=args.n_boot,
        progress=lambda m: print(f"bioviz benchmark: {m}", file=sys.stderr),
    )
    out = args.out or screen.results_dir
    print(f"wrote recall.csv, pairs.parquet, probes.csv, cka.csv, activity.csv, summary.json to {out} "
          f"({len(summary['embedders'])} embedders, {summary['seconds']} s)")
    for w in summary["warnings"]:
        print(f"warning: {w}", file=sys.stderr)
    return 0
