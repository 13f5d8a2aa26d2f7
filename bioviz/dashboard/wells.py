"""Per-well values for the Plates page: what a plate heatmap colours by, and the order a montage
strip shows wells in.

- :func:`distance_to_mean`: each well's cosine distance to the mean embedding of its
  perturbation's wells (an outlier replicate stands out on the plate);
- :func:`probe_residual`: the cell count (or any confounder) minus what the benchmark's linear probe
  predicts from the embedding, out of fold: the part of the confounder the embedding does not
  carry (1 - SS_res / SS_tot is the probe's R² in probes.csv);
- :func:`order_along` / :func:`umap_direction`: wells sampled evenly from one end of a value (a
  confounder, or a direction of a UMAP map) to the other, for the montage.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from ..errors import DatasetError
from .datasets import feature_columns

POSITION = ("row", "col")


def _placeholder(obs: pd.DataFrame) -> bool:
    """Every plate has all its wells at one position (a table imported without positions, filled
    with one constant): no layout to draw."""
    per_plate = obs.groupby("plate")[list(POSITION)].nunique().max(axis=1)
    return bool(len(obs) > obs["plate"].nunique() and (per_plate <= 1).all())


def has_positions(obs: pd.DataFrame) -> bool:
    return (all(c in obs.columns for c in POSITION) and obs[list(POSITION)].notna().all().all()
            and not _placeholder(obs))


def require_positions(obs: pd.DataFrame) -> None:
    """One line for a screen whose metadata has no row/col (the plate view needs both)."""
    missing = [c for c in POSITION if c not in obs.columns or obs[c].isna().any()]
    if missing:
        raise DatasetError(f"the plate view needs the well position: metadata column(s) {', '.join(missing)} "
                           "missing or empty (bioviz import fills them from the well name, e.g. B07)")
    if _placeholder(obs):
        raise DatasetError("the plate view needs the well position: every well of each plate has the same "
                           "row, col (placeholders), so wells cannot be placed on a plate")


def distance_to_mean(emb: pd.DataFrame, obs: pd.DataFrame) -> pd.Series:
    """Cosine distance (1 - cosine) of each well's embedding to the mean of its perturbation's
    wells, indexed by well_id; NaN for a perturbation with one well."""
    feats = feature_columns(emb)
    e = emb.set_index("well_id")[feats]
    pert = obs.set_index("well_id")["perturbation"].reindex(e.index)
    x = e.to_numpy(np.float64)
    means = pd.DataFrame(x, index=e.index).groupby(pert.to_numpy()).transform("mean").to_numpy()
    n = pert.map(pert.value_counts()).to_numpy()
    cos = np.einsum("ij,ij->i", x, means) / (np.linalg.norm(x, axis=1) * np.linalg.norm(means, axis=1) + 1e-12)
    out = pd.Series(1.0 - cos, index=e.index, name="distance to perturbation mean")
    out[n < 2] = np.nan
    return out


def probe_residual(x: np.ndarray, y: np.ndarray, folds: int = 5, seed: int = 0) -> np.ndarray:
    """Out-of-fold residual ``y - prediction`` of the benchmark's ridge probe (bench.probes: the
    same reduction, folds, scaling and RidgeCV alphas), so 1 - SS_res / SS_tot equals the R² in
    probes.csv."""
    from sklearn.linear_model import RidgeCV
    from sklearn.model_selection import KFold
    from sklearn.preprocessing import StandardScaler

    from ..bench.probes import _reduce

    xr = _reduce(x)
    y = np.asarray(y, dtype=np.float64)
    pred = np.empty_like(y)
    for train, test in KFold(folds, shuffle=True, random_state=seed).split(xr):
        sx = StandardScaler().fit(xr[train])
        mu, sd = y[train].mean(), y[train].std() or 1.0
        model = RidgeCV(alphas=np.logspace(-3, 4, 15), alpha_per_target=True)
        model.fit(sx.transform(xr[train]), ((y[train] - mu) / sd)[:, None])
        pred[test] = model.predict(sx.transform(xr[test])).reshape(-1) * sd + mu
    return y - pred


def order_along(frame: pd.DataFrame, value: str, n: int = 10) -> pd.DataFrame:
    """``n`` wells evenly spaced in rank along ``value`` (lowest first, highest last), NaNs left
    out; fewer when the frame has fewer wells."""
    f = frame[frame[value].notna()].sort_values([value, "well_id"], kind="mergesort")
    if f.empty:
        return f
    k = min(int(n), len(f))
    idx = np.unique(np.round(np.linspace(0, len(f) - 1, k)).astype(int))
    return f.iloc[idx].reset_index(drop=True)


def umap_direction(frame: pd.DataFrame, angle_deg: float) -> pd.Series:
    """Projection of each point of a UMAP frame (columns x, y) on the direction at ``angle_deg``
    (0 = left to right, 90 = bottom to top)."""
    a = np.deg2rad(float(angle_deg))
    return frame["x"] * np.cos(a) + frame["y"] * np.sin(a)


def plate_values(frame: pd.DataFrame, value: str) -> pd.DataFrame:
    """The columns a plate heatmap needs (well_id, plate, well, row, col, perturbation, value),
    one row per well position (the first site where a well has several)."""
    require_positions(frame)
    cols = [c for c in ("well_id", "plate", "well", "row", "col", "perturbation") if c in frame.columns]
    out = frame[cols + [value]].drop_duplicates(["plate", "row", "col"]).copy()
    out["row"] = out["row"].astype(int)
    out["col"] = out["col"].astype(int)
    if "well" not in out.columns:
        out["well"] = [f"{chr(65 + r)}{c:02d}" for r, c in zip(out["row"], out["col"])]
    return out.reset_index(drop=True)
