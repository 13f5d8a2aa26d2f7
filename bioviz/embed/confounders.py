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
    for name in SOURCES:
        src = _source_meta(screen, name, fingerprint)
        if src is None or cache.canonical(src.get("config")) != cache.canonical(meta.get("sources", {}).get(name)):
            return False
    return True


def missing_sources(screen, fingerprint=None) -> list[str]:
    """Source embedders with no cache matching the data (the engine computes these)."""
    fingerprint = fingerprint or screen.fingerprint()
    return [n for n in SOURCES if _source_meta(screen, n, fingerprint) is None]


def assemble_confounders(screen, fingerprint=None) -> pd.DataFrame:
    """Build (or reuse) the confounder table from the source caches, which must exist."""
    fingerprint = fingerprint or screen.fingerprint()
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
