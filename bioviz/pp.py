"""Preprocessing (scanpy-style ``pp``): get a screen, read its embeddings, turn one into a map.

    import bioviz as bv
    screen = bv.pp.make_demo("demo", preset="tiny", seed=1)   # or bv.pp.read_screen("data/demo")
    bv.tl.embed(screen, embedders=["pixel_stats", "cell_count"])
    m = bv.pp.perturbation_map(screen, embedder="cell_count", adjust=["density"])

Every function but the two that make a Screen takes the Screen first and keyword-only options;
the dataset folder is the data object (as AnnData is scanpy's): what is computed is read from it.
"""
from __future__ import annotations

import pandas as pd

from .screen import read_screen  # read_screen(path, *, check_images=True): the Screen in a dataset folder

__all__ = ["read_screen", "make_demo", "embedding", "confounders", "perturbation_map"]


def make_demo(out, *, preset: str = "tiny", seed: int = 0, split: str = "benchmark"):
    """Simulate a screen with planted truth into ``out`` (see ``bioviz demo``) and return it."""
    from .demo import make_demo as _make
    from .screen import read_screen as _read

    return _read(_make(out, preset=preset, seed=seed, split=split))


def embedding(screen, *, embedder: str) -> pd.DataFrame:
    """Site-level embedding ``well_id, f0..fN`` (EmbedderError if not computed or out of date)."""
    from .embed import load_embedding

    return load_embedding(screen, embedder)


def confounders(screen) -> pd.DataFrame:
    """Per-site confounder table (cell_count, intensity_<CH>, focus, plate, batch, row, col, edge)."""
    from .embed import load_confounders

    return load_confounders(screen)


def perturbation_map(screen, *, embedder: str, adjust=None, method: str | None = None,
                     aggregation: str | None = None) -> pd.DataFrame:
    """One row per perturbation (``perturbation, f0..``), built as the benchmark builds it.

    ``method``/``aggregation`` default to the recipe of the screen's last benchmark run
    (``results/summary.json``; the benchmark's defaults before any run), so the map is the one its
    recall was computed on. ``adjust``: confounders regressed out first (density, intensity, ...);
    default none (raw).
    """
    from .bench.adjust import adjust_embedding, parse_adjust
    from .bench.maps import build_map
    from .bench.results import map_recipe

    recipe = map_recipe(screen)
    emb = embedding(screen, embedder=embedder)
    adj = parse_adjust(adjust)
    if adj:
        emb = adjust_embedding(emb, confounders(screen), adj)
    return build_map(emb, screen.obs, str(screen.control_label), method=method or recipe["method"],
                     aggregation=aggregation or recipe["aggregation"])
