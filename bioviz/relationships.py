"""Known gene-gene relationships: CORUM, HuMAP, Reactome, SIGNOR, StringDB and user tables.

The five public tables ship inside the PyPI package ``efaar-benchmarking==1.0`` (installed
with ``--no-deps``); we read its files, never import its code, so the heavy dependencies it
declares are not needed.
"""
from __future__ import annotations

from functools import lru_cache
from importlib import resources
from pathlib import Path

import numpy as np
import pandas as pd

from .errors import BenchmarkError

SOURCES = ("CORUM", "HuMAP", "Reactome", "SIGNOR", "StringDB")


def annotations_dir() -> Path:
    try:
        return Path(str(resources.files("efaar_benchmarking").joinpath("benchmark_annotations")))
    except ModuleNotFoundError as exc:  # pragma: no cover - depends on the install
        raise BenchmarkError(
            "the relationship tables are missing: run `pip install --no-deps efaar-benchmarking==1.0`"
        ) from exc


def filter_relationships(df: pd.DataFrame) -> pd.DataFrame:
    """Order each pair (entity1 < entity2), drop self-pairs and A-B/B-A duplicates.

    Same rows, same order as ``efaar_benchmarking.benchmarking.filter_relationships``,
    without its per-row Python lambda.
    """
    a = df["entity1"].astype(str).to_numpy(dtype=object)
    b = df["entity2"].astype(str).to_numpy(dtype=object)
    swap = b < a
    e1 = np.where(swap, b, a)
    e2 = np.where(swap, a, b)
    out = pd.DataFrame({"entity1": e1, "entity2": e2}, index=df.index)
    out = out[out.entity1 != out.entity2]
    return out.drop_duplicates()


@lru_cache(maxsize=None)
def _load_source(source: str) -> pd.DataFrame:
    path = annotations_dir() / f"{source}.txt"
    if not path.exists():
        raise BenchmarkError(f"unknown relationship source {source!r}; known: {', '.join(SOURCES)}")
    return filter_relationships(pd.read_csv(path, dtype=str, keep_default_na=False)).reset_index(drop=True)


def load_relationships(source: str) -> pd.DataFrame:
    """Known pairs of one public source as a DataFrame ``entity1, entity2`` (filtered)."""
    return _load_source(source).copy()


def read_relationship_csv(path) -> pd.DataFrame:
    """A user table of known pairs: a CSV with columns ``entity1,entity2`` (filtered)."""
    path = Path(path)
    if not path.exists():
        raise BenchmarkError(f"relationship file {path} does not exist")
    try:
        df = pd.read_csv(path, dtype=str, keep_default_na=False)
    except Exception as exc:
        raise BenchmarkError(f"relationship file {path} could not be read as CSV: {exc}") from exc
    missing = [c for c in ("entity1", "entity2") if c not in df.columns]
    if missing:
        raise BenchmarkError(f"relationship file {path} lacks column {missing[0]!r} (needs entity1,entity2)")
    return filter_relationships(df).reset_index(drop=True)


@lru_cache(maxsize=None)
def corum_complexes() -> dict[str, tuple[str, ...]]:
    """CORUM complexes: name -> gene symbols, from ``CORUM_clusters.tsv``."""
    out: dict[str, tuple[str, ...]] = {}
    with open(annotations_dir() / "CORUM_clusters.tsv") as fh:
        for line in fh:
            name, _, genes = line.rstrip("\n").partition("\t")
            if genes:
                out[name] = tuple(genes.split())
    return out
