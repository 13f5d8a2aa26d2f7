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
    p.add_argument("--null-genes", default=None, metavar="FILE",
                   help="genes not expressed in this cell type, one per line (or a CSV with a gene column): the "
                        "null of the consistency and magnitude benchmarks, as efaar's authors use it (default: "
                        "groups of control wells)")
    p.add_argument("--n-boot", type=int, default=1000, help="bootstrap resamples for CIs and p-values")
    p.add_argument("--umap", action="store_true",
                   help="also compute the UMAP layouts the Embeddings page shows (as `bioviz umap` with its "
                        "defaults), so no page visit waits for one")
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
    null_genes = read_null_genes(screen, args.null_genes) if args.null_genes else None
    with step_bar(args.quiet) as progress:
        summary = run_benchmark(
            screen, names, args.adjust, out=args.out, sources=sources, relationships=rels, method=args.map_method,
            aggregation=args.aggregation, n_boot=args.n_boot, progress=progress, matched_null=args.matched_null,
            null_genes=null_genes,
        )
    out = results.results_dir(screen, args.out)
    written = [f for f in results.file_names() if (out / f).is_file()]
    print(f"wrote {', '.join(written)} to {out} "
          f"({len(summary['embedders'])} embedders, {summary['seconds']} s)")
    for src, why in summary.get("skipped_sources", {}).items():
        print(f"notice: {src} skipped: {why.split(': ', 1)[-1]}")
    if summary.get("efaar_null"):
        print(f"consistency and magnitude null: {summary['efaar_null']}")
    for bench, whys in summary.get("efaar_suite", {}).items():  # consistency / magnitude / cluster
        for why in whys:
            print(f"{bench}: {why}")
    for w in summary["warnings"]:
        print(f"warning: {w}", file=sys.stderr)
    if args.umap:
        from ..bench import umap_cache
        from ..embed import computed_embedders
        from .umap import compute_layouts

        done = set(computed_embedders(screen))
        names = [n for n in summary["embedders"] if n in done]  # confounder-only maps have no embedding file
        compute_layouts(screen, names, list(umap_cache.LEVELS), umap_cache.DEFAULT_SETTINGS, quiet=args.quiet)
    return 0


GENE_COLUMNS = ("gene", "genes", "symbol", "gene_symbol", "perturbation", "Metadata_Symbol")


def read_null_genes(screen, path) -> list[str]:
    """--null-genes: the gene list (a text file, one per line, or a CSV with one of GENE_COLUMNS or
    a single column). One line naming the file when it cannot be used."""
    from pathlib import Path

    import pandas as pd

    from ..errors import BenchmarkError

    p = Path(path).expanduser()
    if not p.is_file():
        raise BenchmarkError(f"--null-genes {path}: no such file")
    try:
        if p.suffix.lower() in (".csv", ".tsv"):
            t = pd.read_csv(p, sep="\t" if p.suffix.lower() == ".tsv" else ",", dtype=str)
            col = next((c for c in GENE_COLUMNS if c in t.columns), None)
            if col is None and t.shape[1] != 1:
                raise BenchmarkError(f"--null-genes {path}: no gene column (one of {', '.join(GENE_COLUMNS)}) "
                                     f"among {', '.join(map(str, t.columns[:6]))}")
            genes = t[col or t.columns[0]].dropna().astype(str).str.strip().tolist()
        else:
            genes = [ln.strip() for ln in p.read_text().splitlines() if ln.strip() and not ln.startswith("#")]
    except (UnicodeDecodeError, pd.errors.ParserError) as exc:
        raise BenchmarkError(f"--null-genes {path}: not a text or CSV gene list ({exc.__class__.__name__})") from None
    perts = set(screen.obs["perturbation"].astype(str))
    hits = sorted(set(genes) & perts)
    if not hits:
        raise BenchmarkError(f"--null-genes {path}: none of its {len(set(genes))} genes is a perturbation of this "
                             f"screen (e.g. {', '.join(genes[:3]) or 'the file is empty'})")
    if len(hits) < 2:
        raise BenchmarkError(f"--null-genes {path}: only {hits[0]} is a perturbation of this screen; the null "
                             "needs at least 2 genes")
    return genes


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
