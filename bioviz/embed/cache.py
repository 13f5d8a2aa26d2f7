"""Embedding caches: ``<dataset>/embeddings/<name>.parquet`` and resumable partial chunks.

A cache is trusted only when its embedder name, full config, bioviz version and the dataset
fingerprint all equal the current ones; anything else is recomputed, never silently reused.
Every file goes through ``bioviz.atomic`` (temporary file, then rename), so an interrupted run
leaves either the old complete file or the new one.
"""
from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd

from .. import __version__, atomic

CONFOUNDERS = "confounders"


def file_stem(name: str) -> str:
    return name.replace(":", "__")


def cache_path(screen, name: str) -> Path:
    return screen.embeddings_dir / f"{file_stem(name)}.parquet"


def partial_dir(screen, name: str) -> Path:
    return screen.embeddings_dir / ".partial" / file_stem(name)


def canonical(obj):
    """JSON round trip, so tuples/lists and numpy scalars compare as they will after reading back."""
    return json.loads(json.dumps(obj, sort_keys=True, default=str))


def read_meta(path: Path) -> dict | None:
    try:
        return atomic.read_parquet_metadata(path)
    except Exception:  # a truncated or foreign file is simply not a valid cache
        return None


def meta_matches(meta: dict | None, name: str, config: dict, fingerprint: str) -> bool:
    return bool(meta) and meta.get("embedder") == name and meta.get("version") == __version__ \
        and meta.get("fingerprint") == fingerprint and canonical(meta.get("config")) == canonical(config)


def is_valid(screen, emb, fingerprint: str) -> bool:
    path = cache_path(screen, emb.name)
    return path.exists() and meta_matches(read_meta(path), emb.name, emb.config, fingerprint)


def features_frame(well_ids, X: np.ndarray) -> pd.DataFrame:
    X = np.asarray(X, dtype=np.float32)
    df = pd.DataFrame(X, columns=[f"f{i}" for i in range(X.shape[1])])
    df.insert(0, "well_id", list(well_ids))
    return df


def write_cache(screen, emb, df: pd.DataFrame, fingerprint: str, **extra) -> None:
    meta = {"embedder": emb.name, "config": canonical(emb.config), "user_config": canonical(emb.user_config),
            "version": __version__, "fingerprint": fingerprint, "n_features": int(df.shape[1] - 1), **extra}
    atomic.write_parquet(df, cache_path(screen, emb.name), metadata=meta)


# -- partial chunks (resume) ----------------------------------------------------------------------
def chunk_key(emb, fingerprint: str, chunk_size: int, n_sites: int) -> str:
    blob = json.dumps([emb.name, canonical(emb.config), __version__, fingerprint, chunk_size, n_sites],
                      sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:20]


def chunk_path(screen, name: str, k: int) -> Path:
    return partial_dir(screen, name) / f"chunk_{k:04d}.parquet"


def chunk_valid(screen, name: str, k: int, key: str) -> bool:
    p = chunk_path(screen, name, k)
    if not p.exists():
        return False
    meta = read_meta(p)
    return bool(meta) and meta.get("key") == key and meta.get("chunk") == k


def write_chunk(screen, name: str, k: int, key: str, df: pd.DataFrame) -> None:
    atomic.write_parquet(df, chunk_path(screen, name, k), metadata={"key": key, "chunk": k})


def read_chunks(screen, name: str, n_chunks: int) -> pd.DataFrame:
    return pd.concat([pd.read_parquet(chunk_path(screen, name, k)) for k in range(n_chunks)],
                     ignore_index=True)


def drop_stale_chunks(screen, name: str, key: str) -> None:
    """Chunks from another config or dataset state can never be reused; remove them."""
    d = partial_dir(screen, name)
    if not d.is_dir():
        return
    for p in d.glob("chunk_*.parquet"):
        meta = read_meta(p)
        if not meta or meta.get("key") != key:
            p.unlink(missing_ok=True)
    for p in d.glob(".*.tmp"):  # leftovers of a write killed mid-way
        p.unlink(missing_ok=True)


def clear_partials(screen, name: str) -> None:
    shutil.rmtree(partial_dir(screen, name), ignore_errors=True)
    parent = screen.embeddings_dir / ".partial"
    if parent.is_dir() and not any(parent.iterdir()):
        parent.rmdir()
