"""Subcommands of ``bioviz`` (one module each) and the conventions they share.

Every command spells the same things the same way:

* ``--dataset NAME_OR_DIR``: a folder name under ``data/`` (e.g. ``demo``) or a path
  (:func:`add_dataset`, :func:`open_screen`);
* ``--embedders NAMES``: one comma list; ``all`` = every embedder that applies to this dataset
  (:func:`add_embedders`, :func:`split_names`);
* option choices come from the registries (``bench.maps.METHODS``, ``bench.adjust.ADJUSTABLE``...),
  never hand-typed lists;
* progress is one tqdm style on stderr, silenced by ``--quiet`` (:func:`add_quiet`,
  :func:`progress_bar`, :func:`step_bar`).
"""
from __future__ import annotations

import sys

DATASET_HELP = "a dataset folder name under data/ (e.g. demo) or a path to one"
EMBEDDERS_METAVAR = "NAMES"
ALL = "all"


def add_dataset(p, *, required: bool = True, help: str | None = None):
    p.add_argument("--dataset", required=required, default=None, metavar="NAME_OR_DIR",
                   help=help or DATASET_HELP)


def resolve_dataset(value):
    """``--dataset`` value -> folder (a name under data/ or a path); DatasetError if neither."""
    from ..dashboard.datasets import resolve_dataset as _resolve

    return _resolve(value)


def open_screen(value, **kwargs):
    """``--dataset`` value -> Screen (``read_screen`` options pass through)."""
    from ..screen import read_screen

    return read_screen(resolve_dataset(value), **kwargs)


def add_embedders(p, *, default: str = ALL, what: str = "embedders to use",
                  all_means: str = "every embedder that applies to this dataset"):
    p.add_argument("--embedders", default=default, metavar=EMBEDDERS_METAVAR,
                   help=f"{what}: a comma list, or '{ALL}' = {all_means} (default: %(default)s)")


def split_names(value) -> list[str] | None:
    """``'a,b'`` -> ['a', 'b']; ``'all'`` (or nothing) -> None, which each command reads as every
    embedder that applies to the dataset."""
    if value is None:
        return None
    items = value if isinstance(value, (list, tuple)) else [value]
    names = list(dict.fromkeys(n.strip() for item in items for n in str(item).split(",") if n.strip()))
    if not names or names == [ALL]:
        return None
    if ALL in names:
        from ..errors import BiovizError

        raise BiovizError(f"--embedders: '{ALL}' cannot be combined with names ({', '.join(names)})")
    return names


def add_quiet(p):
    p.add_argument("--quiet", "-q", action="store_true", help="no progress bars")


def _tqdm(**kwargs):
    from tqdm import tqdm

    return tqdm(dynamic_ncols=True, file=sys.stderr, **kwargs)


class _Bar:
    """One tqdm bar, closed on exit (shared by the progress callbacks below)."""

    bar = None

    def close(self):
        if self.bar is not None:
            self.bar.close()
            self.bar = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


class progress_bar(_Bar):
    """``progress(done, total, msg)`` callback (bioviz.embed's and train's shape) drawing one tqdm
    bar per message; ``with progress_bar(quiet, unit="site") as progress: ...`` closes it."""

    def __init__(self, quiet: bool = False, unit: str = "site"):
        self.quiet, self.unit, self.bar = quiet, unit, None

    def __call__(self, done, total, msg=""):
        if self.quiet:
            return
        if self.bar is None or self.bar.total != total or self.bar.desc != msg:
            self.close()
            self.bar = _tqdm(total=total, desc=msg, unit=self.unit)
        self.bar.update(done - self.bar.n)
        if done >= total:
            self.close()


class step_bar(_Bar):
    """``progress(msg)`` callback (run_benchmark's shape): one tqdm bar counting steps, the current
    step as its description."""

    def __init__(self, quiet: bool = False, unit: str = "step"):
        self.quiet, self.unit, self.bar = quiet, unit, None

    def __call__(self, msg: str):
        if self.quiet:
            return
        if self.bar is None:
            self.bar = _tqdm(total=None, unit=self.unit)
        self.bar.set_description_str(msg)
        self.bar.update(1)
