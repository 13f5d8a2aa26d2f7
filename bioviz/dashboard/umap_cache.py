"""UMAP layouts computed once per (embedder, settings, embedding file) and kept on disk.

A layout of 222k wells takes minutes; recolouring must take well under a second, so the layout is
a parquet under ``<dataset>/results/cache/umap/`` whose name carries a hash of everything it
depends on. A recomputed embedding (new size/mtime) gets a new key, so a stale layout is never
shown.
"""
from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pandas as pd

from .. import atomic
from ..errors import DatasetError
from .datasets import embedding_file, feature_columns, read_embedding

LEVELS = ("well", "perturbation")


def cache_dir(root: Path) -> Path:
    return Path(root) / "results" / "cache" / "umap"


def layout_key(root: Path, embedder: str, level: str, n_neighbors: int, min_dist: float, seed: int) -> str:
    path = embedding_file(root, embedder)
    if not path.is_file():
        raise DatasetError(f"embedder {embedder!r} has not been computed for this dataset")
    st = path.stat()
    meta = Path(root) / "metadata.csv"
    mst = meta.stat() if meta.is_file() else None
    blob = json.dumps(dict(embedder=embedder, level=level, n_neighbors=int(n_neighbors),
                           min_dist=float(min_dist), seed=int(seed), size=st.st_size, mtime=st.st_mtime_ns,
                           meta=(mst.st_size, mst.st_mtime_ns) if mst else None, v=1), sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def layout_path(root: Path, embedder: str, level: str, n_neighbors: int = 15, min_dist: float = 0.1,
                seed: int = 0) -> Path:
    key = layout_key(root, embedder, level, n_neighbors, min_dist, seed)
    return cache_dir(root) / f"{embedder.replace(':', '__')}__{level}__{key}.parquet"


def perturbation_profiles(emb: pd.DataFrame, obs: pd.DataFrame, control_label: str) -> pd.DataFrame:
    """One row per perturbation (controls kept, for reference): the benchmark's own map, so the
    picture and the scores come from the same numbers."""
    from ..bench.maps import build_map

    n_feat = len(feature_columns(emb))
    return build_map(emb, obs, control_label, n_components=min(128, n_feat, max(2, len(emb) - 1)),
                     keep_controls=True)


def compute_layout(x: np.ndarray, n_neighbors: int = 15, min_dist: float = 0.1, seed: int = 0) -> np.ndarray:
    n = len(x)
    if n < 4:
        out = np.zeros((n, 2))
        out[:, 0] = np.arange(n)
        return out
    import umap

    reducer = umap.UMAP(n_neighbors=max(2, min(int(n_neighbors), n - 2)), min_dist=float(min_dist),
                        random_state=int(seed), n_components=2, low_memory=True,
                        init="spectral" if n > 10 else "random")
    return reducer.fit_transform(np.asarray(x, dtype=np.float32))


def umap_layout(root: Path, embedder: str, obs: pd.DataFrame, control_label: str, *, level: str = "well",
                n_neighbors: int = 15, min_dist: float = 0.1, seed: int = 0,
                compute: bool = True) -> pd.DataFrame | None:
    """-> DataFrame ``id, x, y`` (id = well_id or perturbation). Read from the disk cache when
    present; computed and written otherwise (None when ``compute`` is False and it is missing)."""
    if level not in LEVELS:
        raise DatasetError(f"map level {level!r} must be one of {', '.join(LEVELS)}")
    path = layout_path(root, embedder, level, n_neighbors, min_dist, seed)
    if path.is_file():
        return pd.read_parquet(path)
    if not compute:
        return None
    emb = read_embedding(root, embedder)
    if level == "well":
        emb = emb[emb["well_id"].isin(set(obs["well_id"]))]
        ids = emb["well_id"].to_numpy()
        x = emb[feature_columns(emb)].to_numpy(np.float32)
    else:
        prof = perturbation_profiles(emb, obs, control_label)
        ids = prof["perturbation"].astype(str).to_numpy()
        x = prof[feature_columns(prof)].to_numpy(np.float32)
    xy = compute_layout(x, n_neighbors, min_dist, seed)
    out = pd.DataFrame({"id": ids, "x": xy[:, 0].astype(np.float32), "y": xy[:, 1].astype(np.float32)})
    atomic.write_parquet(out, path, metadata=dict(embedder=embedder, level=level, n_neighbors=n_neighbors,
                                                  min_dist=min_dist, seed=seed))
    return out


def write_layout(root: Path, embedder: str, level: str, layout: pd.DataFrame, **settings) -> Path:
    """Store a layout computed elsewhere (e.g. by a batch job) under its cache key."""
    path = layout_path(root, embedder, level, **settings)
    atomic.write_parquet(layout[["id", "x", "y"]], path, metadata=dict(embedder=embedder, level=level, **settings))
    return path
