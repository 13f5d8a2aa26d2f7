"""Embedders: turn a screen into site x feature matrices, cached per embedder (see docs/embedders.md).

    from bioviz.embed import embed, load_embedding, load_confounders
    embed(screen, "all", progress=lambda done, total, msg: ...)
    X = load_embedding(screen, "pixel_stats")      # well_id, f0, f1, ...

``embeddings/`` belongs to this package: the benchmark, the dashboard, the report and the CLI read
it only through the readers below (``embedding_status``, ``computed_embedders``,
``load_embedding``, ``load_confounders``, ``embedding_file``), so a stale or foreign cache is
refused in one place.
"""
from __future__ import annotations

import pandas as pd

from ..errors import EmbedderError
from . import cache
from . import confounders as _confounders
from .engine import compute_confounders
from .engine import embed
from .registry import (create_embedder, describe_embedders, list_embedders, register_embedder,
                       resolve_names)

# The built-in embedders: each module registers itself on import (as timm's models/__init__ does), so
# the registry imports none of them. Listing order is registry.ORDER, not this import order. None of
# these imports torch at module level, so `import bioviz.embed` stays light (tests/test_layers.py checks).
from . import (cell_count, morphology, networks, openphenom, pixel_stats, plate_layout,  # noqa: E402,F401
               precomputed, random_null, structure, weakly_supervised)
# confounders (imported above) registers the hidden `focus` source.

__all__ = ["list_embedders", "create_embedder", "register_embedder", "embed", "load_embedding",
           "computed_embedders", "load_confounders", "compute_confounders", "describe_embedders",
           "resolve_names", "embedding_info", "build_embedders_status", "embedding_status",
           "confounders_status", "embedding_file", "not_applicable_embedders", "confounders_note", "UP_TO_DATE", "STALE", "FOREIGN", "MISSING"]

# What embedding_status says of a cache file. A stale or foreign file is never loaded.
UP_TO_DATE = "up to date"
STALE = "stale: recompute"      # written by bioviz for other data, options, weights or version
FOREIGN = "foreign"             # not a bioviz cache of that embedder (no or other metadata)
MISSING = "missing"


def build_embedders_status(screen, names, configs=None) -> dict[str, bool]:
    """{name: has a valid cache} for the embedders a run would use (validates names and options)."""
    from .engine import build_embedders

    fp = screen.fingerprint()
    return {e.name: cache.is_valid(screen, e, fp) for e in build_embedders(screen, names, configs)}


def not_applicable_embedders(screen, names, configs=None) -> dict[str, str]:
    """{name: why it does not apply} for embedders ``all`` (in ``names``) leaves out on this screen,
    e.g. image embedders on a profiles-only screen: "no images (profiles only)"."""
    from .engine import plan_embedders

    return plan_embedders(screen, names, configs)[1]


def _fresh_meta(screen, name: str, fingerprint: str) -> dict | None:
    from .. import __version__

    p = cache.cache_path(screen, name)
    meta = cache.read_meta(p) if p.exists() else None
    if not meta or meta.get("embedder") != name or meta.get("fingerprint") != fingerprint \
            or meta.get("version") != __version__:
        return None
    # Re-deriving the config from the options it was run with catches changed weight files.
    try:
        e = create_embedder(name, **(meta.get("user_config") or {}))
        e.resolve(screen)
    except Exception:
        return None
    return meta if cache.canonical(e.config) == cache.canonical(meta.get("config")) else None


def computed_embedders(screen) -> list[str]:
    """Embedders with a valid, up-to-date cache for this screen, in registry order then by name."""
    if not screen.embeddings_dir.is_dir():
        return []
    fp = screen.fingerprint()
    found = []
    for p in sorted(screen.embeddings_dir.glob("*.parquet")):
        if p.stem == cache.CONFOUNDERS:
            continue
        meta = cache.read_meta(p)
        name = (meta or {}).get("embedder")
        if name and cache.file_stem(name) == p.stem and _fresh_meta(screen, name, fp):
            found.append(name)
    hidden = set(list_embedders(include_hidden=True)) - set(list_embedders())
    found = [n for n in found if n not in hidden]
    order = {n: i for i, n in enumerate(list_embedders())}
    return sorted(found, key=lambda n: (order.get(n, len(order)), n))


def embedding_info(screen, name: str) -> dict | None:
    """The cache metadata (config, feature_names, n_features, seconds, device) of a valid cache."""
    return _fresh_meta(screen, name, screen.fingerprint())


def load_embedding(screen, name: str) -> pd.DataFrame:
    """``well_id`` + float32 ``f0..fN`` in the screen's site order; EmbedderError if missing or stale."""
    p = cache.cache_path(screen, name)
    if not p.exists():
        raise EmbedderError(f"embedding {name!r} has not been computed for {screen.name}; run: "
                            f"bioviz embed --dataset {screen.root} --embedders {name}")
    if _fresh_meta(screen, name, screen.fingerprint()) is None:
        raise EmbedderError(f"embedding {name!r} of {screen.name} is out of date (data, options or weights "
                            f"changed); run: bioviz embed --dataset {screen.root} --embedders {name}")
    df = pd.read_parquet(p)
    if df["well_id"].tolist() != screen.obs["well_id"].tolist():
        df = df.set_index("well_id").loc[screen.obs["well_id"]].reset_index()
    return df


def embedding_file(screen, name: str):
    """Where the cache of ``name`` lives (for a file-identity cache key; read it with load_embedding)."""
    return cache.cache_path(screen, name)


def _status_of(screen, stem_path, fingerprint: str) -> tuple[str, str]:
    """(embedder name, status) of one parquet under embeddings/."""
    meta = cache.read_meta(stem_path)
    name = (meta or {}).get("embedder")
    if not name or cache.file_stem(name) != stem_path.stem or not meta.get("fingerprint"):
        return stem_path.stem.replace("__", ":"), FOREIGN
    return name, (UP_TO_DATE if _fresh_meta(screen, name, fingerprint) else STALE)


def embedding_status(screen, names=None) -> dict[str, str]:
    """{embedder: UP_TO_DATE | STALE | FOREIGN | MISSING} for every cache in ``embeddings/``
    (hidden helper caches left out) plus ``names`` (e.g. the registered ones) that have none.
    Models first in registry order, then by name."""
    out: dict[str, str] = {}
    d = screen.embeddings_dir
    if d.is_dir():
        fp = screen.fingerprint()
        for p in sorted(d.glob("*.parquet")):
            if p.stem == cache.CONFOUNDERS or p.name.startswith("."):
                continue
            name, status = _status_of(screen, p, fp)
            out[name] = status
    hidden = set(list_embedders(include_hidden=True)) - set(list_embedders())
    out = {n: s for n, s in out.items() if n not in hidden}
    for n in names or ():
        out.setdefault(n, MISSING)
    order = {n: i for i, n in enumerate(list_embedders())}
    return dict(sorted(out.items(), key=lambda kv: (order.get(kv[0], len(order)), kv[0])))


def confounders_status(screen) -> str:
    """UP_TO_DATE, STALE or MISSING for ``embeddings/confounders.parquet``."""
    if not _confounders.path(screen).exists():
        return MISSING
    return UP_TO_DATE if _confounders.confounders_valid(screen) else STALE


def confounders_note(screen) -> str:
    """What a profiles-only screen's confounder table was built from and what it lacks ('' if nothing to say)."""
    return _confounders.confounders_note(screen)


def load_confounders(screen, *, missing_ok: bool = False) -> pd.DataFrame | None:
    """The per-well confounder table (``well_id, cell_count, intensity_<CH>, focus, plate, batch,
    row, col, edge``); EmbedderError naming the command when it is stale (or missing, unless
    ``missing_ok``: then None)."""
    if missing_ok and not _confounders.path(screen).exists():
        return None
    return _confounders.load_confounders(screen)
