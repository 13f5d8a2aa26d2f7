"""``bioviz demo``: write a simulated Cell Painting screen whose answers are known."""
from __future__ import annotations

import argparse

from . import add_quiet

HELP = "simulate a Cell Painting CRISPR screen with known answers"
DESCRIPTION = """\
Simulate a small arrayed CRISPR knockout screen imaged with Cell Painting (channels DNA, ER,
RNA, AGP, Mito), with the answers written beside it. Knocked-out genes are real genes from
CORUM protein complexes; each complex was given one planted effect: a shared change of cell
shape (morphology), fewer cells (density), a brighter or dimmer stain (intensity), or nothing.
Plates also carry the usual nuisances: batch-to-batch stain differences, uneven illumination,
sparser edge wells and a few out-of-focus images.

The folder is an ordinary bioviz dataset (dataset.json, metadata.csv, images/) plus truth/:
  truth/genes.csv          gene, complex, mechanism, effect_size, channel
  truth/wells.csv          well_id, true_cell_count, out_of_focus, edge
  truth/relationships.csv  entity1, entity2, source, mechanism (known gene pairs in the screen)
Use it to check that a model recovers what was planted, and which baselines do just as well.

Examples:
  bioviz demo --preset tiny --out data/tiny                  # ~150 wells, seconds
  bioviz demo --preset default --out data/demo               # ~1,500 wells, under a minute
  bioviz demo --preset default --out data/train --split train   # other genes, for training
"""


def add_parser(subparsers) -> argparse.ArgumentParser:
    from ..demo import PRESETS, SPLITS

    p = subparsers.add_parser("demo", help=HELP, description=DESCRIPTION,
                              formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--preset", choices=list(PRESETS), default="tiny",
                   help="screen size: tiny (~150 wells, 64x64 images) or default (~1,500 wells, "
                        "128x128 images); default: %(default)s")
    p.add_argument("--out", required=True, metavar="DIR",
                   help="folder to write (created; a previous demo folder there is replaced)")
    p.add_argument("--seed", type=int, default=0, metavar="N",
                   help="random seed; the same seed writes identical files (default: %(default)s)")
    p.add_argument("--split", choices=list(SPLITS), default="benchmark",
                   help="benchmark: the screen to score; train: a screen of other genes (no overlap) "
                        "with more replicates, for training a model (default: %(default)s)")
    add_quiet(p)
    p.set_defaults(func=run)
    return p


def run(args) -> int:
    import sys

    from ..demo import make_demo

    out = make_demo(args.out, preset=args.preset, seed=args.seed, split=args.split,
                    progress=args.preset != "tiny" and not args.quiet)
    from ..screen import read_screen

    screen = read_screen(out)
    truth = screen.truth
    mech = truth.genes["mechanism"].value_counts()
    print(f"wrote {out}: {screen.n_sites} wells, {truth.genes.shape[0]} genes "
          f"({', '.join(f'{k} {v}' for k, v in mech.items())}), "
          f"{int(screen.obs['is_control'].sum())} control wells", file=sys.stdout)
    print(f"next: bioviz info --dataset {out}", file=sys.stdout)
    return 0
