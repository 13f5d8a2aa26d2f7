"""``bioviz umap``: compute the UMAP layouts the Embeddings page shows, ahead of time.

A layout of 222k wells takes minutes on 2 cores (docs/scale.md); the dashboard never starts one on
a page visit, it reads what this command wrote (``results/cache/umap/``, named by
``bioviz.bench.umap_cache``, keyed by the embedding file, the UMAP settings and the map recipe).
"""
from __future__ import annotations

import sys
import time

from . import add_dataset, add_embedders, add_quiet, open_screen, split_names

HELP = "compute the UMAP layouts the dashboard shows (cached; minutes at 200k wells)"
DESCRIPTION = """\
Compute 2-D UMAP layouts of computed embeddings, one per embedder and level (wells, or one point
per perturbation built with the benchmark's map recipe), and cache them under
<dataset>/results/cache/umap/. The Embeddings page reads them; a layout already there for the
same embedding file, settings and recipe is reused.

Examples:
  bioviz umap --dataset demo
  bioviz umap --dataset demo --embedders cell_count,untrained_vit --level well
"""


def add_parser(subparsers):
    import argparse

    p = subparsers.add_parser("umap", help=HELP, description=DESCRIPTION,
                              formatter_class=argparse.RawDescriptionHelpFormatter)
    add_dataset(p)
    add_embedders(p, what="embedders to lay out", all_means="every embedder computed for this dataset")
    p.add_argument("--level", choices=["well", "perturbation"], default=None,
                   help="one point per well or per perturbation (default: both)")
    p.add_argument("--n-neighbors", type=int, default=15, metavar="K", help="UMAP n_neighbors (default: %(default)s)")
    p.add_argument("--min-dist", type=float, default=0.1, metavar="D", help="UMAP min_dist (default: %(default)s)")
    p.add_argument("--seed", type=int, default=0, help="UMAP random_state (default: %(default)s)")
    p.add_argument("--force", action="store_true", help="recompute layouts that are already cached")
    add_quiet(p)
    p.set_defaults(func=run)
    return p


def run(args) -> int:
    from ..bench import umap_cache
    from ..embed import computed_embedders
    from ..errors import EmbedderError

    screen = open_screen(args.dataset)
    done = computed_embedders(screen)
    names = split_names(args.embedders)
    if names is None:
        names = done
        if not names:
            raise EmbedderError(f"no embeddings computed for {screen.name} yet; run first: "
                                f"bioviz embed --dataset {args.dataset} --embedders all")
    for n in names:
        if n not in done:
            raise EmbedderError(f"embedder {n!r} has no up-to-date embedding for {screen.name}; run first: "
                                f"bioviz embed --dataset {args.dataset} --embedders {n}")
    if args.n_neighbors < 2 or not 0 <= args.min_dist <= 1:
        raise EmbedderError("--n-neighbors must be at least 2 and --min-dist within 0..1")
    levels = [args.level] if args.level else list(umap_cache.LEVELS)
    settings = dict(n_neighbors=args.n_neighbors, min_dist=args.min_dist, seed=args.seed)
    compute_layouts(screen, names, levels, settings, quiet=args.quiet, force=args.force)
    return 0


def compute_layouts(screen, names, levels, settings: dict, *, quiet: bool = False, force: bool = False) -> list:
    """Compute (or reuse) the cached layouts of ``names`` x ``levels``, with progress, and print one
    line each; shared by ``bioviz umap`` and ``bioviz benchmark --umap``."""
    from tqdm import tqdm

    from ..bench import umap_cache

    jobs = [(n, lv) for n in names for lv in levels]
    outer = tqdm(total=len(jobs), unit="layout", file=sys.stderr, dynamic_ncols=True, disable=quiet)
    rows = []
    try:
        for name, level in jobs:
            outer.set_description_str(f"umap {name} ({level})")
            path = umap_cache.layout_path(screen, name, level, **settings)
            if force and path.is_file():
                path.unlink()
            cached = path.is_file()
            t0 = time.perf_counter()
            kw = None if quiet else {"desc": f"  {name} {level} epochs", "leave": False, "file": sys.stderr,
                                     "dynamic_ncols": True}
            lay = umap_cache.umap_layout(screen, name, level=level, tqdm_kwds=kw, **settings)
            rows.append((name, level, len(lay), "cached" if cached else f"{time.perf_counter() - t0:.1f} s", path))
            outer.update(1)
    finally:
        outer.close()
    for name, level, n, how, path in rows:
        print(f"{name:<30} {level:<12} {n:>7} points  ({how})")
    print(f"layouts in {umap_cache.cache_dir(screen)}")
    return rows
