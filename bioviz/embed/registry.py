"""The embedder registry, in the spirit of timm's ``create_model``.

An embedder turns a screen into a site x feature matrix. Two kinds exist:

* ``SiteEmbedder``: a pure function of one site's pixels (and, if asked, its segmentation).
  The engine runs these inside DataLoader workers, so CPU features parallelise for free.
* ``BatchEmbedder``: a network that embeds a batch of sites in the main process (GPU if any).
* ``TableEmbedder``: needs no pixels (plate layout, noise, a precomputed table).

``config`` is the embedder's full, JSON-able identity: the cache is valid only for the exact
config (and data fingerprint and bioviz version) it was computed with.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from ..errors import EmbedderError


class Embedder:
    name: str = ""
    kind: str = "site"            # "site" | "batch" | "table"
    needs_segmentation: bool = False
    revision: int = 1             # bump when the algorithm changes so old caches are recomputed

    def __init__(self, **cfg):
        self.user_config = dict(cfg)
        self.config = {"revision": self.revision, **self.defaults(), **cfg}
        unknown = set(cfg) - set(self.defaults())
        if unknown:
            raise EmbedderError(f"embedder {self.name}: unknown option(s) {', '.join(sorted(unknown))}; "
                                f"options are {', '.join(sorted(self.defaults())) or 'none'}")

    def defaults(self) -> dict:
        return {}

    # Fills config entries that depend on the screen (e.g. a default weights file inside it)
    # before the cache key is taken.
    def resolve(self, screen) -> None:
        pass

    # Called once per run, before any site, in the main process.
    def prepare(self, screen, device: str = "cpu") -> None:
        pass

    # Why this embedder cannot run on ``screen`` (e.g. "no images"), or None. ``all`` leaves such
    # embedders out with this reason; naming one explicitly is an error carrying it.
    def not_applicable(self, screen) -> str | None:
        if self.kind != "table" and not getattr(screen, "has_images", True):
            return "no images (profiles only)"
        return None


class SiteEmbedder(Embedder):
    kind = "site"

    def site_features(self, img: np.ndarray, seg) -> np.ndarray:  # pragma: no cover - abstract
        raise NotImplementedError


class BatchEmbedder(Embedder):
    kind = "batch"

    def batch_features(self, imgs: np.ndarray) -> np.ndarray:  # pragma: no cover - abstract
        raise NotImplementedError


class TableEmbedder(Embedder):
    kind = "table"

    def table_features(self, screen) -> np.ndarray:  # pragma: no cover - abstract
        raise NotImplementedError


@dataclass
class Entry:
    name: str
    factory: Callable[..., Embedder]
    needs_files: bool       # True: cannot run without user-supplied weights/tables
    hidden: bool            # internal helpers (e.g. the focus score) stay out of listings
    description: str
    prefix: bool = False    # "timm:" matches "timm:<model name>"


# Filled as embedder modules are imported: the built-ins by bioviz/embed/__init__.py (as timm's
# models/__init__ does), so this module imports no embedder and no embedder import loops back.
_REGISTRY: dict[str, Entry] = {}
# Listing order: cheap baselines, networks, nulls, then the ones that need user files.
ORDER = ("pixel_stats", "cell_count", "morphology", "structure", "untrained_vit", "untrained_vit_per_channel",
         "untrained_resnet", "untrained_resnet_per_channel", "weakly_supervised", "plate_layout", "random",
         "timm:", "openphenom", "precomputed")


def _entries() -> list["Entry"]:
    rank = {n: i for i, n in enumerate(ORDER)}
    return sorted(_REGISTRY.values(), key=lambda e: rank.get(e.name, len(rank)))


def register_embedder(name: str, *, needs_files: bool = False, hidden: bool = False,
                      description: str = ""):
    """Decorator: register an Embedder subclass (or factory) under ``name``.

    A name ending in ":" registers a family: ``timm:`` serves ``timm:resnet18`` etc.; the
    factory then receives ``model_name=`` as its first keyword.
    """
    def deco(factory):
        doc = description or (factory.__doc__ or "").strip().splitlines()[0:1]
        _REGISTRY[name] = Entry(name, factory, needs_files, hidden,
                                doc if isinstance(doc, str) else (doc[0] if doc else ""),
                                prefix=name.endswith(":"))
        return factory
    return deco


def _entry(name: str) -> Entry:
    if name in _REGISTRY and not _REGISTRY[name].prefix:
        return _REGISTRY[name]
    if ":" in name:
        fam = name.split(":", 1)[0] + ":"
        if fam in _REGISTRY and name != fam:
            return _REGISTRY[fam]
    known = ", ".join(list_embedders(include_families=True))
    raise EmbedderError(f"unknown embedder {name!r}; known: {known}")


def list_embedders(*, runnable_only: bool = False, include_families: bool = True,
                   include_hidden: bool = False) -> list[str]:
    """Registered names. ``runnable_only``: those that need no user files (what ``all`` means)."""
    out = []
    for e in _entries():
        if e.hidden and not include_hidden:
            continue
        if runnable_only and e.needs_files:
            continue
        if e.prefix:
            if include_families and not runnable_only:
                out.append(e.name + "<model>")
            continue
        out.append(e.name)
    return out


def describe_embedders() -> list[tuple[str, str, bool]]:
    """(name, one-line description, needs user files) for ``bioviz embed --list``."""
    return [(e.name + ("<model>" if e.prefix else ""), e.description, e.needs_files)
            for e in _entries() if not e.hidden]


def create_embedder(name: str, **cfg) -> Embedder:
    """Build an embedder by registered name with options ``cfg`` (raises EmbedderError)."""
    entry = _entry(name)
    kw = {"model_name": name.split(":", 1)[1], **cfg} if entry.prefix else cfg
    if isinstance(entry.factory, type):
        # Named before __init__ runs, so its option checks say which embedder they are about.
        emb = entry.factory.__new__(entry.factory)
        emb.name = name
        emb.__init__(**kw)
    else:
        emb = entry.factory(**kw)
    emb.name = name
    return emb


def resolve_names(names) -> list[str]:
    """'all' or 'a,b' or a list -> registered names in order, without duplicates."""
    if isinstance(names, str):
        names = [n for n in names.split(",")]
    out: list[str] = []
    for n in names:
        n = n.strip()
        if not n:
            continue
        expanded = list_embedders(runnable_only=True) if n == "all" else [n]
        for x in expanded:
            _entry(x)  # fail early on an unknown name
            if x not in out:
                out.append(x)
    if not out:
        raise EmbedderError("no embedders named; use --embedders all or a comma-separated list "
                            f"from: {', '.join(list_embedders())}")
    return out


def file_signature(path) -> dict:
    """Identity of a user file for the cache key: path, size and modification time."""
    p = Path(path).expanduser()
    if not p.exists():
        raise EmbedderError(f"file {p} does not exist")
    st = p.stat()
    if p.is_dir():
        sizes = sorted((f.name, f.stat().st_size, f.stat().st_mtime_ns) for f in p.iterdir() if f.is_file())
        return {"path": str(p.resolve()), "files": sizes}
    return {"path": str(p.resolve()), "size": st.st_size, "mtime_ns": st.st_mtime_ns}


def nuclear_channel(channels: list[str], preferred: str | None = None) -> int:
    """Index of the DNA stain: by name (DNA, Hoechst, DAPI, nuclei), else the first channel."""
    if preferred:
        if preferred not in channels:
            raise EmbedderError(f"nuclear channel {preferred!r} is not one of {', '.join(channels)}")
        return channels.index(preferred)
    for i, ch in enumerate(channels):
        if ch.lower() in {"dna", "hoechst", "dapi", "nuclei", "nucleus", "origdna"}:
            return i
    return 0


def cpu_count() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - macOS
        return os.cpu_count() or 1
