"""``bioviz benchmark``: recall, probes, CKA, activity and attribution for every embedder of a dataset."""
from __future__ import annotations

import sys

from . import add_dataset, add_embedders, add_quiet, open_screen, split_names, step_bar

HELP = "benchmark a dataset's embeddings against baselines; writes results/ for the dashboard"


def add_parser(subparsers):
    from ..bench.adjust import ADJUSTABLE
    from ..bench.maps import AGGREGATIONS, METHODS
    from ..relationships import SOURCES

    p = subparsers.add_parser("benchmark", help=HELP, description=HELP)
    add_dataset(p)
    add_embedders(p, what="embedders to benchmark", all_means="every embedding of this dataset with an up-to-date cache")
    p.add_argument("--adjust", default=None, metavar="LIST",
                   help=f"confounders to regress out for adjusted recall, a comma list of: {','.join(ADJUSTABLE)}")
    p.add_argument("--matched-null", default=None, metavar="LIST",
                   help="also judge each known pair against pairs whose members share its confounder levels: a comma "
                        "list of nulls from density,intensity,focus,plate; '+' joins confounders into one null "
                        "(e.g. density,density+plate). Rows get null_model matched:<names>")
    p.add_argument("--sources", default=None, metavar="LIST",
                   help=f"relationship sources, a comma list (default all: {','.join(SOURCES)})")
    p.add_argument("--relationships", default=None, metavar="LIST",
                   help="more known pairs, scored like a source (same recall, CIs, baselines): a comma list of "
                        "metadata columns (pairs of perturbations sharing the column's value, e.g. moa or target) "
                        "and/or CSV files with entity1,entity2")
    p.add_argument("--map-method", default=METHODS[0], choices=list(METHODS),
                   help="how well embeddings are normalised before aggregation (default: %(default)s)")
    p.add_argument("--aggregation", default=AGGREGATIONS[0], choices=list(AGGREGATIONS),
                   help="how replicate wells become one profile (default: %(default)s)")
    p.add_argument("--n-boot", type=int, default=1000, help="bootstrap resamples for CIs and p-values")
    p.add_argument("--out", default=None, metavar="DIR", help="output folder (default <dataset>/results)")
    add_quiet(p)
    p.set_defaults(func=run)
    return p


def run(args) -> int:
    from ..bench import results
    from ..bench.run import run_benchmark

    screen = open_screen(args.dataset, check_images=False)
    names = split_names(args.embedders)  # None: every up-to-date cache
    sources = [s.strip() for s in args.sources.split(",")] if args.sources else None
    rels = relationship_args(screen, args.relationships)
    with step_bar(args.quiet) as progress:
        summary = run_benchmark(
            screen, names, args.adjust, out=args.out, sources=sources, relationships=rels, method=args.map_method,
            aggregation=args.aggregation, n_boot=args.n_boot, progress=progress, matched_null=args.matched_null,
        )
    out = results.results_dir(screen, args.out)
    written = [f for f in results.file_names() if (out / f).is_file()]
    print(f"wrote {', '.join(written)} to {out} "
          f"({len(summary['embedders'])} embedders, {summary['seconds']} s)")
    for src, why in summary.get("skipped_sources", {}).items():
        print(f"notice: {src} skipped: {why.split(': ', 1)[-1]}")
    for bench, whys in summary.get("efaar_suite", {}).items():  # consistency / magnitude / cluster
        for why in whys:
            print(f"{bench}: {why}")
    for w in summary["warnings"]:
        print(f"warning: {w}", file=sys.stderr)
    return 0


def relationship_args(screen, value) -> dict | None:
    """--relationships: {source name: entity1/entity2 pairs}; a name that is a file is read as a
    CSV of pairs, any other as a metadata column whose shared values make pairs."""
    from pathlib import Path

    from ..bench.run import relationships_from_column
    from ..relationships import read_relationship_csv

    if not value:
        return None
    out = {}
    for item in (v.strip() for v in value.split(",")):
        if not item:
            continue
        path = Path(item).expanduser()
        if path.suffix.lower() in (".csv", ".txt", ".tsv") or path.is_file():
            out[path.stem] = read_relationship_csv(path)
        else:
            out[item] = relationships_from_column(screen.obs, item, str(screen.control_label))
    return out or None
