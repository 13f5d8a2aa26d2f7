"""Embedders: turn a screen into site x feature matrices, cached per embedder (see docs/embedders.md).

    from bioviz.embed import embed, load_embedding, load_confounders
    embed(screen, "all", progress=lambda done, total, msg: ...)
    X = load_embedding(screen, "pixel_stats")      # well_id, f0, f1, ...
"""
from __future__ import annotations

import pandas as pd

from ..errors import EmbedderError
from . import cache
from .confounders import load_confounders
from .engine import compute_confounders, embed
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
           "resolve_names", "embedding_info", "build_embedders_status"]


def build_embedders_status(screen, names, configs=None) -> dict[str, bool]:
    """{name: has a valid cache} for the embedders a run would use (validates names and options)."""
    from .engine import build_embedders

    fp = screen.fingerprint()
    return {e.name: cache.is_valid(screen, e, fp) for e in build_embedders(screen, names, configs)}


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
