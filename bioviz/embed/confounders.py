"""The confounder table: per site, what a map might be recalling instead of biology.

``embeddings/confounders.parquet``: ``well_id, cell_count, intensity_<CH> (one per channel),
focus, plate, batch, row, col, edge``. Built once from the cheap embedders (cell_count,
pixel_stats and the hidden ``focus`` score) so every UMAP colouring and diagnostic reads the same
numbers. It is rebuilt whenever the dataset fingerprint or one of its sources changes.

This module only reads the source caches and assembles the table; computing missing sources is
the engine's job (``bioviz.embed.engine.compute_confounders``), so the import runs one way:
engine -> confounders.
"""
from __future__ import annotations

import re

import numpy as np
import pandas as pd
from scipy import ndimage as ndi

from .. import __version__, atomic
from ..errors import EmbedderError
from . import cache
from .plate_layout import edge_flag
from .registry import SiteEmbedder, create_embedder, nuclear_channel, register_embedder

COLUMNS_FIXED = ("plate", "batch", "row", "col", "edge")
SOURCES = ("cell_count", "pixel_stats", "focus")


@register_embedder("focus", hidden=True, description="DNA-channel focus: variance of the Laplacian")
class Focus(SiteEmbedder):
    def defaults(self):
        return {"nuclear_channel": None}

    def prepare(self, screen, device="cpu"):
        self._nuc = nuclear_channel(screen.channels, self.config["nuclear_channel"])

    def site_features(self, img, seg=None):
        dna = img[self._nuc].astype(np.float64)
        m = dna.mean()
        # Divided by the mean so a bright stain does not read as a sharp image.
        lap = ndi.laplace(dna / m) if m > 0 else np.zeros_like(dna)
        return np.array([lap.var()])

    def feature_names(self, channels):
        return ["focus"]


def path(screen):
    return screen.embeddings_dir / "confounders.parquet"


def confounder_sources(screen):
    if not getattr(screen, "has_images", True):
        return []  # a profiles-only screen: the table comes from the profiles (profile_confounders)
    out = []
    for name in SOURCES:
        e = create_embedder(name)
        e.resolve(screen)
        out.append(e)
    return out


def _source_meta(screen, name, fingerprint):
    """A source cache counts if it matches the data, whatever options it was computed with."""
    p = cache.cache_path(screen, name)
    meta = cache.read_meta(p) if p.exists() else None
    if meta and meta.get("fingerprint") == fingerprint and meta.get("version") == __version__:
        return meta
    return None


def confounders_valid(screen, fingerprint=None) -> bool:
    fingerprint = fingerprint or screen.fingerprint()
    p = path(screen)
    meta = cache.read_meta(p) if p.exists() else None
    if not meta or meta.get("fingerprint") != fingerprint or meta.get("version") != __version__:
        return False
    if not getattr(screen, "has_images", True):
        src = _source_meta(screen, PROFILE_SOURCE, fingerprint)
        return cache.canonical((src or {}).get("config")) == cache.canonical(meta.get("sources", {}).get(PROFILE_SOURCE))
    for name in SOURCES:
        src = _source_meta(screen, name, fingerprint)
        if src is None or cache.canonical(src.get("config")) != cache.canonical(meta.get("sources", {}).get(name)):
            return False
    return True


def missing_sources(screen, fingerprint=None) -> list[str]:
    """Source embedders with no cache matching the data (the engine computes these)."""
    fingerprint = fingerprint or screen.fingerprint()
    if not getattr(screen, "has_images", True):
        return []
    return [n for n in SOURCES if _source_meta(screen, n, fingerprint) is None]


# -- profiles-only screens: confounders from the columns the profiles carry -------------------
PROFILE_SOURCE = "precomputed"
# CellProfiler / pycytominer spellings of the per-well cell count (case-insensitive; an optional
# Metadata_ or Image_ prefix is allowed), first found wins.
COUNT_NAMES = ("Count_Cells", "Cells_Count", "Count_Nuclei", "Nuclei_Count", "Cells_Number_Object_Number_count",
               "Object_Count", "cell_count", "n_cells")
_INTENSITY = re.compile(r"^(?:Metadata_)?(Image|Cells|Nuclei|Cytoplasm)_Intensity_MeanIntensity_([A-Za-z0-9]+)$")
# Plate-map columns naming how densely wells were seeded (a density confounder by design).
DENSITY_NAMES = ("seeding_density", "cell_density", "cells_per_well")


def _strip(name: str) -> str:
    low = name.lower()
    for pre in ("metadata_", "image_"):
        if low.startswith(pre):
            low = low[len(pre):]
    return low


def _profile_columns(screen, fingerprint) -> tuple[dict[str, np.ndarray], dict | None]:
    """Numeric columns a profiles-only screen carries: metadata plus the precomputed table."""
    cols: dict[str, np.ndarray] = {}
    for c in screen.obs.columns:
        v = pd.to_numeric(screen.obs[c], errors="coerce")
        if v.notna().any():
            cols[str(c)] = v.to_numpy(dtype=float)
    meta = _source_meta(screen, PROFILE_SOURCE, fingerprint)
    if meta and meta.get("feature_names"):
        df = pd.read_parquet(cache.cache_path(screen, PROFILE_SOURCE))
        if df["well_id"].tolist() == screen.obs["well_id"].tolist():
            for i, n in enumerate(meta["feature_names"]):
                cols.setdefault(str(n), df[f"f{i}"].to_numpy(dtype=float))
        else:
            meta = None
    return cols, meta


def profile_confounders(screen, fingerprint=None) -> pd.DataFrame:
    """The confounder table of a screen without images, from the count and intensity columns its
    profiles (or metadata) carry: ``cell_count`` from Count_Cells / Cells_Count / ...,
    ``intensity_<CH>`` from ``*_Intensity_MeanIntensity_<CH>`` (Image, then Cells, Nuclei,
    Cytoplasm), ``seeding_density`` from the plate map, plus plate, batch, row, col, edge. What was
    not found is said in the table's ``note`` (``confounders_note``)."""
    fingerprint = fingerprint or screen.fingerprint()
    if confounders_valid(screen, fingerprint):
        return pd.read_parquet(path(screen))
    obs = screen.obs
    cols, src = _profile_columns(screen, fingerprint)
    out = pd.DataFrame({"well_id": obs["well_id"].to_numpy()})
    found = []
    by_stripped = {}
    for c in cols:
        by_stripped.setdefault(_strip(c), c)
    for want in COUNT_NAMES:
        c = by_stripped.get(want.lower())
        if c is not None and np.isfinite(cols[c]).all():
            out["cell_count"] = cols[c]
            found.append(f"cell_count from {c}")
            break
    rank = {"Image": 0, "Cells": 1, "Nuclei": 2, "Cytoplasm": 3}
    best: dict[str, tuple[int, str]] = {}
    for c in cols:
        m = _INTENSITY.match(c)
        if m and np.isfinite(cols[c]).all():
            r = (rank[m.group(1)], c)
            if m.group(2) not in best or r < best[m.group(2)]:
                best[m.group(2)] = r
    for ch, (_, c) in sorted(best.items()):
        out[f"intensity_{ch}"] = cols[c]
    if best:
        found.append(f"intensity from {', '.join(c for _, c in sorted(best.values()))}")
    for want in DENSITY_NAMES:
        c = next((c for c in cols if c.lower() == want), None)
        if c is not None and np.isfinite(cols[c]).all():
            out["seeding_density"] = cols[c]
            found.append(f"seeding_density from {c}")
            break
    out["plate"] = obs["plate"].astype(str).to_numpy()
    out["batch"] = obs["batch"].astype(str).to_numpy()
    out["row"] = obs["row"].astype(int).to_numpy()
    out["col"] = obs["col"].astype(int).to_numpy()
    out["edge"] = edge_flag(obs)
    lacks = [w for w, ok in (("cell count", "cell_count" in out), ("intensity", bool(best))) if not ok]
    note = "profiles only: " + ("; ".join(found) if found else "no count or intensity column")
    if lacks:
        note += (f"; no {' or '.join(lacks)} column in the profiles (looked for {', '.join(COUNT_NAMES[:4])}, "
                 "*_Intensity_MeanIntensity_<CH>), so the table holds " + ("what was found and " if found else "")
                 + "plate, batch, row, col, edge")
    if src is None and (getattr(screen, "config", None) or {}).get("precomputed"):
        note += "; compute the profiles first (bioviz embed --embedders precomputed) to read their columns"
    atomic.write_parquet(out, path(screen), metadata={
        "embedder": "confounders", "version": __version__, "fingerprint": fingerprint,
        "sources": {PROFILE_SOURCE: (src or {}).get("config")}, "note": note})
    return out


def confounders_note(screen) -> str:
    """What the confounder table could not be built from ('' for an image screen's full table)."""
    p = path(screen)
    meta = cache.read_meta(p) if p.exists() else None
    return str((meta or {}).get("note") or "")


def assemble_confounders(screen, fingerprint=None) -> pd.DataFrame:
    """Build (or reuse) the confounder table from the source caches, which must exist."""
    fingerprint = fingerprint or screen.fingerprint()
    if not getattr(screen, "has_images", True):
        return profile_confounders(screen, fingerprint)
    if confounders_valid(screen, fingerprint):
        return pd.read_parquet(path(screen))
    missing = missing_sources(screen, fingerprint)
    if missing:
        raise EmbedderError(f"the confounder table of {screen.name} needs {', '.join(missing)}; run: "
                            f"bioviz embed --dataset {screen.root} --embedders pixel_stats")
    metas = {n: _source_meta(screen, n, fingerprint) for n in SOURCES}
    frames = {n: pd.read_parquet(cache.cache_path(screen, n)) for n in SOURCES}
    obs = screen.obs
    for n, df in frames.items():
        if df["well_id"].tolist() != obs["well_id"].tolist():
            raise EmbedderError(f"cache {n} does not list the screen's sites in order; rerun with --force")
    out = pd.DataFrame({"well_id": obs["well_id"].to_numpy()})
    out["cell_count"] = frames["cell_count"]["f0"].to_numpy().astype(np.int64)
    names = metas["pixel_stats"].get("feature_names") or []
    for ch in screen.channels:
        col = f"{ch}_mean"
        if col not in names:
            raise EmbedderError(f"pixel_stats cache lacks {col}; rerun bioviz embed --force --embedders pixel_stats")
        out[f"intensity_{ch}"] = frames["pixel_stats"][f"f{names.index(col)}"].to_numpy()
    out["focus"] = frames["focus"]["f0"].to_numpy()
    out["plate"] = obs["plate"].astype(str).to_numpy()
    out["batch"] = obs["batch"].astype(str).to_numpy()
    out["row"] = obs["row"].astype(int).to_numpy()
    out["col"] = obs["col"].astype(int).to_numpy()
    out["edge"] = edge_flag(obs)
    atomic.write_parquet(out, path(screen), metadata={
        "embedder": "confounders", "version": __version__, "fingerprint": fingerprint,
        "sources": {n: metas[n].get("config") for n in SOURCES}})
    return out


def load_confounders(screen) -> pd.DataFrame:
    """The confounder table; raises EmbedderError naming the command when it is missing or stale."""
    p = path(screen)
    if not p.exists():
        raise EmbedderError(f"no confounder table for {screen.name}; run: bioviz embed --dataset {screen.root} "
                            "--embedders pixel_stats")
    if not confounders_valid(screen):
        raise EmbedderError(f"the confounder table of {screen.name} is out of date (the data changed); "
                            f"run: bioviz embed --dataset {screen.root} --embedders pixel_stats")
    return pd.read_parquet(p)
