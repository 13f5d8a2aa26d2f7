"""``bioviz map``: write one embedder's perturbation map, the exact map the benchmark scores."""
from __future__ import annotations

import sys

HELP = "write one embedder's aggregated perturbation map (perturbation + features) to a parquet file"
DESCRIPTION = HELP + """

The map is what `bioviz benchmark` scores: efaar-benchmarking's recipe (pca_centerscale:
embed_by_pca per batch, centerscale_on_controls per batch, mean per perturbation; or tvn),
optionally after adjusting the wells for confounders. Any other tool can score it, efaar
itself included:

  bioviz map --dataset data/demo --embedder morphology --out morphology_map.parquet
  bioviz map --dataset data/demo --embedder pixel_stats --adjust density --out adjusted.parquet
"""


def add_parser(subparsers):
    import argparse

    from ..bench.maps import AGGREGATIONS, METHODS

    p = subparsers.add_parser("map", help=HELP, description=DESCRIPTION,
                              formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--dataset", required=True, metavar="DIR")
    p.add_argument("--embedder", required=True, metavar="NAME", help="a computed embedder (see bioviz info)")
    p.add_argument("--method", default="pca_centerscale", metavar="METHOD",
                   help=f"map recipe: {', '.join(METHODS)} (default: pca_centerscale)")
    p.add_argument("--aggregation", default="mean", metavar="AGG", help=f"{' or '.join(AGGREGATIONS)} (default: mean)")
    p.add_argument("--adjust", default=None, metavar="LIST",
                   help="confounders to regress out of the wells first: density,intensity,focus,plate,position")
    p.add_argument("--out", required=True, metavar="MAP.parquet")
    p.set_defaults(func=run)
    return p


def run(args) -> int:
    from .. import atomic
    from ..bench.maps import AGGREGATIONS, METHODS
    from ..bench.run import perturbation_map
    from ..errors import BenchmarkError
    from ..screen import read_screen

    if args.method not in METHODS:
        raise BenchmarkError(f"unknown map method {args.method!r}; choose from {', '.join(METHODS)} "
                             f"(e.g. bioviz map --dataset {args.dataset} --embedder {args.embedder} "
                             f"--method pca_centerscale --out {args.out})")
    if args.aggregation not in AGGREGATIONS:
        raise BenchmarkError(f"unknown aggregation {args.aggregation!r}; choose mean or median")
    screen = read_screen(args.dataset, check_images=False)
    m, res = perturbation_map(screen, args.embedder, method=args.method, aggregation=args.aggregation,
                              adjust=args.adjust)
    if res is not None:
        for why in res.skipped.values():
            print(f"bioviz map: warning: {why}", file=sys.stderr)
    if m is None:
        raise BenchmarkError(f"nothing left after adjusting {args.embedder} for {'+'.join(res.confounders)}: "
                             f"it is {res.reason}; no map written")
    atomic.write_parquet(m, args.out, metadata={"embedder": args.embedder, "method": args.method,
                                                "aggregation": args.aggregation,
                                                "adjust": "+".join(res.confounders) if res else ""})
    print(f"wrote {args.out}: {len(m)} perturbations x {m.shape[1] - 1} features "
          f"({args.embedder}, {args.method}, {args.aggregation}"
          + (f", adjusted for {'+'.join(res.confounders)}" if res and res.confounders else "") + ")")
    return 0
