"""Regress chosen confounders out of a well-level embedding before the map is built.

Adjusted recall asks: which relationships does an embedder still recall once everything that
is a linear function of, say, cell count is removed from every well's vector?
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from ..errors import BenchmarkError

ADJUSTABLE = ("density", "intensity", "focus", "plate", "position")
# The adjustment a view shows unless told otherwise, and the one Home's Compute runs: cell density is
# the confounder the baselines exist to expose (the cell_count baseline scores through it alone).
DEFAULT_ADJUST = "density"


def default_adjustment(labels) -> str | None:
    """Among ``adjusted_for`` labels (raw recall's empty label ignored): the first that adjusts for
    density (``density`` or a ``cell_count`` column), else the first, else None."""
    labels = [a for a in dict.fromkeys(labels) if a]
    density = [a for a in labels if "cell_count" in a or DEFAULT_ADJUST in a]
    return (density or labels or [None])[0]


def parse_adjust(spec) -> list[str]:
    """``"density,intensity"`` or a list -> checked names, in the order given, no repeats."""
    if spec is None or spec == "":
        return []
    names = [s.strip() for s in (spec.split(",") if isinstance(spec, str) else spec) if s and s.strip()]
    for n in names:
        if n not in ADJUSTABLE:
            raise BenchmarkError(f"unknown confounder {n!r} for --adjust; choose from {', '.join(ADJUSTABLE)}")
    return list(dict.fromkeys(names))


def confounder_design(confounders: pd.DataFrame, names) -> np.ndarray:
    """Design matrix (no intercept) of the named confounders, one row per well of ``confounders``."""
    blocks = []
    for name in parse_adjust(names):
        if name == "density":
            cols = ["cell_count"]
        elif name == "intensity":
            cols = [c for c in confounders.columns if c.startswith("intensity_")]
        elif name == "focus":
            cols = ["focus"]
        elif name == "position":
            cols = ["row", "col", "edge"]
        else:  # plate: one indicator per plate, first dropped (the intercept carries it)
            if "plate" not in confounders:
                raise BenchmarkError("confounder table lacks the plate column")
            dummies = pd.get_dummies(confounders["plate"].astype(str), drop_first=True, dtype=float)
            blocks.append(dummies.to_numpy())
            continue
        missing = [c for c in cols if c not in confounders.columns]
        if missing or not cols:
            raise BenchmarkError(f"confounder table lacks {missing[0] if missing else 'intensity_*'} (needed for {name})")
        block = confounders[cols].to_numpy(dtype=float)
        if not np.isfinite(block).all():
            raise BenchmarkError(f"confounder {name} has NaN values in the confounder table")
        blocks.append(block)
    if not blocks:
        return np.zeros((len(confounders), 0))
    return np.hstack(blocks)


def regress_out(x: np.ndarray, design: np.ndarray) -> np.ndarray:
    """Residuals of an OLS fit of every feature on ``[1, design]`` (the mean is kept)."""
    x = np.asarray(x, dtype=np.float64)
    if design.shape[1] == 0:
        return x.copy()
    d = design - design.mean(axis=0)
    sd = d.std(axis=0)
    d = d[:, sd > 0] / sd[sd > 0]  # constant confounders explain nothing; scaling keeps lstsq well-posed
    if d.shape[1] == 0:
        return x.copy()
    coef, *_ = np.linalg.lstsq(d, x - x.mean(axis=0), rcond=None)
    return x - d @ coef


def adjust_embedding(embedding: pd.DataFrame, confounders: pd.DataFrame, names) -> pd.DataFrame:
    """The embedding (``well_id`` + features) with the named confounders regressed out."""
    names = parse_adjust(names)
    if not names:
        return embedding
    conf = confounders.set_index("well_id").reindex(embedding["well_id"])
    if conf.isna().all(axis=1).any():
        n = int(conf.isna().all(axis=1).sum())
        raise BenchmarkError(f"{n} wells of the embedding have no row in the confounder table")
    design = confounder_design(conf.reset_index(), names)
    cols = [c for c in embedding.columns if c != "well_id"]
    out = pd.DataFrame(regress_out(embedding[cols].to_numpy(), design), columns=cols)
    out.insert(0, "well_id", embedding["well_id"].to_numpy())
    return out
