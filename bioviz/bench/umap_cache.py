"""UMAP layouts computed once per (embedder, settings, map recipe, embedding file) and kept on disk.

This module alone names the layout cache: ``<dataset>/results/cache/umap/<embedder>__<level>__<key>.parquet``
(columns ``id, x, y``). A layout of 222k wells takes minutes; recolouring must take well under a
second, so the layout is read back whenever its key matches. The key hashes the embedding file's
identity (path, size, mtime), the metadata file's, the UMAP settings and, for perturbation points,
the benchmark's map recipe (``bench.results.map_recipe``): a recomputed embedding or another recipe
gets a new key, so a stale layout is never shown. Embeddings are read through ``bioviz.embed``,
which refuses stale or foreign caches.

It lives in ``bioviz.bench`` (below the dashboard) so that ``bioviz umap`` computes layouts ahead
of time without importing the dashboard; ``bioviz.dashboard.umap_cache`` is this same module.
The dashboard reads layouts with ``compute=False`` and never starts a UMAP on a page visit.
"""
from __future__ import annotations

import contextlib
import hashlib
import io
import json
import re
from pathlib import Path

import numpy as np
import pandas as pd

from .. import atomic
from ..errors import DatasetError

LEVELS = ("well", "perturbation")
# the layout the Embeddings page opens with (its sliders' defaults) and `bioviz umap` computes
DEFAULT_SETTINGS = {"n_neighbors": 15, "min_dist": 0.1, "seed": 0}
SUBDIR = ("umap",)  # under Screen.cache_dir (results/cache)
COLUMNS = ("id", "x", "y")


def feature_columns(df: pd.DataFrame) -> list[str]:
    return [c for c in df.columns if re.fullmatch(r"f\d+", str(c))]


def cache_dir(screen) -> Path:
    return Path(screen.cache_dir).joinpath(*SUBDIR)


def _identity(path: Path):
    p = Path(path)
    if not p.is_file():
        return None
    st = p.stat()
    return (str(p), st.st_size, st.st_mtime_ns)


def _recipe(screen, level: str) -> dict | None:
    if level != "perturbation":
        return None  # wells are laid out from the embedding itself
    from ..bench.results import map_recipe

    r = map_recipe(screen)
    return {"method": r["method"], "aggregation": r["aggregation"]}


def layout_key(screen, embedder: str, level: str, n_neighbors: int, min_dist: float, seed: int) -> str:
    from ..embed import embedding_file

    emb = _identity(embedding_file(screen, embedder))
    if emb is None:
        raise DatasetError(f"embedder {embedder!r} has not been computed for this dataset")
    meta = next((m for m in (_identity(Path(screen.root) / f) for f in ("metadata.csv", "metadata.parquet")) if m),
                None)
    blob = json.dumps(dict(embedder=embedder, level=level, n_neighbors=int(n_neighbors),
                           min_dist=float(min_dist), seed=int(seed), size=emb[1], mtime=emb[2],
                           meta=meta[1:] if meta else None, recipe=_recipe(screen, level), v=3,  # v3: PCA start
                           # perturbation layouts made before controls were left out (they kept the control
                           # row) get another key, so they are never shown as the benchmark's map
                           **({"controls": "dropped"} if level == "perturbation" else {})), sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def layout_path(screen, embedder: str, level: str, n_neighbors: int = 15, min_dist: float = 0.1,
                seed: int = 0) -> Path:
    key = layout_key(screen, embedder, level, n_neighbors, min_dist, seed)
    return cache_dir(screen) / f"{embedder.replace(':', '__')}__{level}__{key}.parquet"


def perturbation_profiles(emb: pd.DataFrame, obs: pd.DataFrame, control_label: str, *,
                          method: str = "pca_centerscale", aggregation: str = "mean") -> pd.DataFrame:
    """One row per perturbation (controls kept, for reference): the benchmark's own map, built with
    the recipe it used (pass ``**map_args(screen)``), so the picture and the scores come from the
    same numbers."""
    from ..bench.maps import build_map

    n_feat = len(feature_columns(emb))
    return build_map(emb, obs, control_label, n_components=min(128, n_feat, max(2, len(emb) - 1)),
                     keep_controls=True, method=method, aggregation=aggregation)


def map_args(screen) -> dict:
    """``method`` and ``aggregation`` of the benchmark's recipe, for ``perturbation_profiles``.
    Views show the raw map, as the pairs' percentiles they sit beside (``adjusted_for`` '')."""
    return _recipe(screen, "perturbation")


def compute_layout(x: np.ndarray, n_neighbors: int = 15, min_dist: float = 0.1, seed: int = 0,
                   tqdm_kwds: dict | None = None) -> np.ndarray:
    """2-D UMAP of the rows of ``x``. ``tqdm_kwds``: show UMAP's own per-epoch bar (e.g.
    ``{"desc": "cell_count", "file": sys.stderr}``) without its verbose log lines."""
    n = len(x)
    if n < 4:
        out = np.zeros((n, 2))
        out[:, 0] = np.arange(n)
        return out
    import umap

    kw = {}
    if tqdm_kwds is not None:
        kw["tqdm_kwds"] = {"disable": False, **tqdm_kwds}  # "disable" given: verbose stays off
    # PCA start for every embedder, not umap-learn's spectral default: a kNN graph that falls apart into
    # many components (the RxRx3-core stand-in's 2-count cell_count map, 222,601 wells) sends spectral
    # init through one eigensolve per component, still running after 30 min; the PCA start took 275 s
    # for the whole layout. PCA also keeps the global arrangement (Kobak & Linderman 2021).
    reducer = umap.UMAP(n_neighbors=max(2, min(int(n_neighbors), n - 2)), min_dist=float(min_dist),
                        random_state=int(seed), n_components=2, low_memory=True,
                        init="pca" if n > 10 else "random", **kw)
    with contextlib.redirect_stdout(io.StringIO()):  # pynndescent/numba chatter on big inputs
        return reducer.fit_transform(np.asarray(x, dtype=np.float32))


def umap_layout(screen, embedder: str, *, level: str = "well", n_neighbors: int = 15, min_dist: float = 0.1,
                seed: int = 0, compute: bool = True, tqdm_kwds: dict | None = None) -> pd.DataFrame | None:
    """-> DataFrame ``id, x, y`` (id = well_id or perturbation). Read from the disk cache when
    present; computed and written otherwise (None when ``compute`` is False and it is missing)."""
    from ..embed import load_embedding

    if level not in LEVELS:
        raise DatasetError(f"map level {level!r} must be one of {', '.join(LEVELS)}")
    path = layout_path(screen, embedder, level, n_neighbors, min_dist, seed)
    if path.is_file():
        return pd.read_parquet(path)
    if not compute:
        return None
    emb = load_embedding(screen, embedder)
    obs = screen.obs
    if level == "well":
        emb = emb[emb["well_id"].isin(set(obs["well_id"]))]
        ids = emb["well_id"].to_numpy()
        x = emb[feature_columns(emb)].to_numpy(np.float32)
    else:
        prof = perturbation_profiles(emb, obs, screen.control_label, **map_args(screen))
        # the map the benchmark scores has no control row (bench.maps.build_map drops it): the
        # control profile is the centre the others are normalised against, not a perturbation
        prof = prof[prof["perturbation"].astype(str) != str(screen.control_label)]
        ids = prof["perturbation"].astype(str).to_numpy()
        x = prof[feature_columns(prof)].to_numpy(np.float32)
    xy = compute_layout(x, n_neighbors, min_dist, seed, tqdm_kwds=tqdm_kwds)
    out = pd.DataFrame({"id": ids, "x": xy[:, 0].astype(np.float32), "y": xy[:, 1].astype(np.float32)})
    atomic.write_parquet(out, path, metadata=dict(embedder=embedder, level=level, n_neighbors=n_neighbors,
                                                  min_dist=min_dist, seed=seed))
    return out


def write_layout(screen, embedder: str, level: str, layout: pd.DataFrame, **settings) -> Path:
    """Store a layout computed elsewhere (e.g. by a batch job) under its cache key."""
    path = layout_path(screen, embedder, level, **settings)
    atomic.write_parquet(layout[list(COLUMNS)], path, metadata=dict(embedder=embedder, level=level, **settings))
    return path


def umap_command(embedder: str, level: str, root) -> str:
    """The command that computes a missing layout (shown where a page would otherwise compute it)."""
    lvl = "" if level == "well" else f" --level {level}"
    return f"bioviz umap --dataset {root} --embedders {embedder}{lvl}"
