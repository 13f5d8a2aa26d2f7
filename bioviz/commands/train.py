"""``bioviz train``: train the weakly supervised embedder on a screen disjoint from the benchmark."""
from __future__ import annotations

import argparse

from . import _tqdm, add_dataset, add_quiet, resolve_dataset

HELP = "train the weakly supervised CNN (perturbation classification) on a training screen"
DESCRIPTION = """\
Train the small CNN behind the 'weakly_supervised' embedder to tell the perturbations of a
training screen apart (the field's weakly supervised recipe). Train on a screen that shares
no perturbations with the one you benchmark, e.g. the demo's --split train.
Deterministic for a seed on a given machine; the defaults take a few minutes on 2 CPU cores.

Example:
  bioviz demo --preset default --split train --out data/demo-train --seed 0
  bioviz train --dataset data/demo-train --out data/demo/models/weakly_supervised.pt
  bioviz embed --dataset data/demo --embedders weakly_supervised
"""


def add_parser(subparsers) -> argparse.ArgumentParser:
    from ..embed.weakly_supervised import NORMS

    p = subparsers.add_parser("train", help=HELP, description=DESCRIPTION,
                              formatter_class=argparse.RawDescriptionHelpFormatter)
    add_dataset(p, help="the training screen: a folder name under data/ or a path")
    p.add_argument("--out", required=True, metavar="MODEL.pt",
                   help="checkpoint to write; <benchmark dataset>/models/weakly_supervised.pt is the default "
                        "the embedder looks for")
    p.add_argument("--epochs", type=int, default=16, metavar="N", help="passes over all cell crops (default: %(default)s)")
    p.add_argument("--seed", type=int, default=0, metavar="N", help="(default: %(default)s)")
    p.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"], help="(default: %(default)s)")
    p.add_argument("--batch-size", type=int, default=256, metavar="N", help="cell crops per step (default: %(default)s)")
    p.add_argument("--norm", default=NORMS[0], choices=list(NORMS),
                   help="image: standardise each cell crop on its own, so stain intensity cannot be learned; "
                        "dataset: one mean/sd per channel (default: %(default)s)")
    p.add_argument("--lr", type=float, default=3e-3, help="peak learning rate (default: %(default)s)")
    p.add_argument("--width", type=int, default=16, metavar="N", help="channels of the first conv block (default: %(default)s)")
    p.add_argument("--workers", type=int, default=None, metavar="N", help="image reading processes")
    p.add_argument("--threads", type=int, default=2, metavar="N",
                   help="torch CPU threads; fixed so a seed gives the same model (default: %(default)s)")
    add_quiet(p)
    p.set_defaults(func=run)
    return p


def run(args) -> int:
    from ..embed.weakly_supervised import train

    bars: dict = {}

    def progress(done, total, msg):
        if args.quiet:
            return
        key = "read" if msg.startswith(("reading", "cropping")) else "train"
        bar = bars.get(key)
        if bar is None:
            bar = bars[key] = _tqdm(total=total, desc="segmenting and cropping cells" if key == "read" else "training",
                                   unit="site" if key == "read" else "batch")
        if key == "train":
            bar.set_postfix_str(msg)
        bar.update(done - bar.n)

    try:
        meta = train(resolve_dataset(args.dataset), args.out, epochs=args.epochs, seed=args.seed, device=args.device,
                     batch_size=args.batch_size, workers=args.workers, threads=args.threads, lr=args.lr, width=args.width,
                     norm=args.norm, progress=progress)
    finally:
        for bar in bars.values():
            bar.close()
    last = meta["history"][-1]
    print(f"wrote {args.out}: {meta['n_classes']} perturbations, {meta['epochs']} epochs in {meta['seconds']} s; "
          f"final loss {last['loss']:.3f}, train accuracy {last['train_accuracy']:.1%} "
          f"(chance {meta['chance_accuracy']:.1%})")
    return 0
