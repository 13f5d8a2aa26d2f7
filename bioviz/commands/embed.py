"""``bioviz embed``: compute embeddings of a screen with registered embedders (cached)."""
from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
import tempfile
import time
from pathlib import Path

from . import DATASET_HELP, add_dataset, add_embedders, add_quiet, open_screen, progress_bar

HELP = "compute embeddings (baselines, networks, your model) of a dataset; cached"
DESCRIPTION = """\
Compute one site x feature matrix per embedder and cache it as
<dataset>/embeddings/<embedder>.parquet, plus the confounder table embeddings/confounders.parquet
(cell count, stain intensity, focus, plate, batch, row, col, edge). A cache is reused only when
the embedder options, the data and the bioviz version are unchanged; an interrupted run resumes
where it stopped.

Embedders (see docs/embedders.md):
{listing}

'all' = every embedder that needs no file of yours (weakly_supervised needs `bioviz train` first).

Options per embedder: --config NAME.OPTION=VALUE (repeatable; VALUE is JSON or a plain string).
Examples:
  bioviz embed --dataset data/demo --embedders all
  bioviz embed --dataset data/demo --embedders timm:resnet18 --config timm:resnet18.weights=ckpt.safetensors
  bioviz embed --dataset data/demo --embedders precomputed --config precomputed.path=profiles.parquet
  bioviz embed --dataset data/demo --embedders openphenom --config openphenom.snapshot=~/OpenPhenom \
      --config openphenom.trust_snapshot_code=true
  bioviz embed --dataset data/demo --embedders untrained_vit --config untrained_vit.img_size=224
"""


@contextlib.contextmanager
def native_stderr_to(path: Path):
    """Send file descriptor 2 to ``path`` while Python's ``sys.stderr`` (the progress bar, bioviz's
    one-line errors, a traceback) keeps the terminal.

    Ray's C++ core worker writes straight to descriptor 2, and on every run with a network actor it
    printed ``E ... core_worker.cc:2465: Actor ... has constructor arguments in the object store
    and max_restarts > 0 ... the actor restart will fail`` (ray#53727). That is harmless here: the
    driver holds the arguments for the whole run. But a user reads it as a failure. Ray keeps its
    own logs under its session folder, so nothing is lost.
    """
    sys.stderr.flush()
    saved = os.dup(2)
    log = open(path, "ab")
    os.dup2(log.fileno(), 2)
    old = sys.stderr
    sys.stderr = open(os.dup(saved), "w", buffering=1, encoding=getattr(old, "encoding", None) or "utf-8",
                      errors="backslashreplace")
    try:
        yield
    finally:
        sys.stderr.flush()
        sys.stderr.close()
        sys.stderr = old
        os.dup2(saved, 2)
        os.close(saved)
        log.close()


def _listing() -> str:
    try:
        from ..embed import describe_embedders

        rows = describe_embedders()
    except Exception:  # never break --help
        return "  (registry unavailable)"
    width = max(len(n) for n, _, _ in rows)
    return "\n".join(f"  {n:<{width}}  {d}" for n, d, _ in rows)


def add_parser(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser("embed", help=HELP, description=DESCRIPTION.format(listing=_listing()),
                              formatter_class=argparse.RawDescriptionHelpFormatter)
    add_dataset(p, required=False, help=DATASET_HELP + " (see docs/dataset-format.md); required unless --list")
    add_embedders(p, what="embedders to compute",
                  all_means="every embedder that needs no file of yours (see below)")
    p.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"],
                   help="where networks run; auto = GPU (bf16 autocast) if present (default: %(default)s)")
    p.add_argument("--batch-size", type=int, default=32, metavar="N", help="sites per batch (default: %(default)s)")
    p.add_argument("--workers", type=int, default=None, metavar="N",
                   help="processes reading images and computing per-site features (default: cores, at most 4)")
    p.add_argument("--config", action="append", default=[], metavar="NAME.OPTION=VALUE",
                   help="an option of one embedder, e.g. timm:resnet18.weights=ckpt.pt (repeatable)")
    p.add_argument("--force", action="store_true", help="recompute even when a valid cache exists")
    p.add_argument("--no-confounders", action="store_true", help="do not build embeddings/confounders.parquet")
    p.add_argument("--list", action="store_true", help="list the registered embedders and exit")
    add_quiet(p)
    # Ray engine (issue 11, bioviz/embed/ray_engine.py; docs/scale.md).
    p.add_argument("--engine", default="local", choices=["local", "ray"],
                   help="local: this process and its workers; ray: Ray Data tasks and actor pools, on a local "
                        "Ray or a cluster (same caches) (default: %(default)s)")
    p.add_argument("--ray-address", default=None, metavar="auto|ray://HOST:PORT",
                   help="join a Ray cluster (--engine ray); default: start a local Ray with this machine's cores")
    p.add_argument("--gpus-per-worker", type=float, default=None, metavar="F",
                   help="share of a GPU per network actor (--engine ray; default: the GPUs split between networks)")
    p.set_defaults(func=run)
    return p


def parse_configs(items) -> dict:
    """['timm:vit.b.weights=/x'] -> {'timm:vit.b': {'weights': '/x'}} (the option is after the last dot)."""
    from ..errors import EmbedderError

    out: dict = {}
    for item in items:
        left, sep, value = item.partition("=")
        name, dot, key = left.rpartition(".")
        if not sep or not dot or not name or not key:
            raise EmbedderError(f"--config {item!r}: expected NAME.OPTION=VALUE, e.g. precomputed.path=table.csv")
        try:
            parsed = json.loads(value)
        except json.JSONDecodeError:
            parsed = value
        out.setdefault(name, {})[key] = parsed
    return out


def run(args) -> int:
    from ..embed import build_embedders_status, describe_embedders, embed
    from ..errors import DatasetError

    if args.list:
        for name, desc, needs in describe_embedders():
            print(f"{name:<30} {desc}{'  [needs --config]' if needs else ''}")
        return 0
    if not args.dataset:
        raise DatasetError("--dataset NAME_OR_DIR is required")
    screen = open_screen(args.dataset)
    configs = parse_configs(args.config)
    from ..embed import resolve_names
    from ..errors import EmbedderError

    names = resolve_names(args.embedders)
    stray = [k for k in configs if k not in names]
    if stray:  # most likely a typo; silently ignoring it would compute the defaults
        raise EmbedderError(f"--config names {stray[0]!r}, which is not among the embedders run ({', '.join(names)})")
    status = build_embedders_status(screen, args.embedders, configs)
    from ..embed import not_applicable_embedders

    for name, why in not_applicable_embedders(screen, args.embedders, configs).items():
        print(f"{name:<30} not applicable: {why}")
    progress = progress_bar(args.quiet, unit="site")

    t0 = time.perf_counter()
    engine = getattr(args, "engine", "local")
    if engine != "ray" and (args.ray_address or args.gpus_per_worker is not None):
        raise EmbedderError("--ray-address and --gpus-per-worker need --engine ray")
    try:
        if engine == "ray":
            from ..embed.ray_engine import embed_ray

            with native_stderr_to(Path(tempfile.gettempdir()) / f"bioviz-ray-{os.getpid()}.log"):
                results = embed_ray(screen, args.embedders, address=args.ray_address,
                                    gpus_per_worker=args.gpus_per_worker, device=args.device,
                                    batch_size=args.batch_size, progress=progress, configs=configs,
                                    force=args.force, confounders=not args.no_confounders)
        else:
            results = embed(screen, args.embedders, device=args.device, batch_size=args.batch_size,
                            workers=args.workers, progress=progress, configs=configs, force=args.force,
                            confounders=not args.no_confounders)
    finally:
        progress.close()
    for name, df in results.items():
        how = "cached" if status.get(name) and not args.force else "computed"
        print(f"{name:<30} {df.shape[0]:>6} sites x {df.shape[1] - 1:>6} features  ({how})")
    if not args.no_confounders:
        from ..embed import embedding_file

        print(f"{'confounders':<30} {embedding_file(screen, 'confounders')}")
        from ..embed import confounders_note

        if confounders_note(screen):
            print(f"{'':<30} {confounders_note(screen)}")
    print(f"done in {time.perf_counter() - t0:.1f} s; caches in {screen.embeddings_dir}")
    return 0
