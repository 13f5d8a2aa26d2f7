"""Linear probes: how much of each confounder an embedding carries.

Cross-validated R^2 of a ridge regression for every continuous confounder, and
cross-validated accuracy of predicting the plate (and batch) against chance.  A model that
predicts cell count with R^2 0.9 has learned density whether or not it meant to.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.decomposition import PCA
from sklearn.linear_model import RidgeClassifier, RidgeCV
from sklearn.metrics import r2_score
from sklearn.model_selection import KFold, StratifiedKFold, cross_val_predict
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

CONTINUOUS = ("cell_count", "seeding_density", "focus", "row", "col", "edge")
CATEGORICAL = ("plate", "batch")
MAX_DIMS = 128  # probes on a PCA of at most this many dims keep logistic fits fast on 2 cores
# The spellings of probes.csv's ``metric`` column, written here and read by the dashboard and the
# report (which used to guess at "r^2", "acc" and "chance_accuracy" too).
R2, ACCURACY, CHANCE = "r2", "accuracy", "chance"


def _reduce(x: np.ndarray) -> np.ndarray:
    x = StandardScaler().fit_transform(np.asarray(x, dtype=np.float64))
    if x.shape[1] > MAX_DIMS and x.shape[0] > MAX_DIMS:
        x = PCA(MAX_DIMS, random_state=0).fit_transform(x)
    return x


def ridge_r2(x: np.ndarray, y: np.ndarray, folds: int = 5, seed: int = 0) -> float:
    """Out-of-fold R^2 of ridge (alpha chosen by inner CV); NaN when y is constant."""
    return float(ridge_r2_many(x, np.asarray(y, dtype=np.float64)[:, None], folds, seed)[0])


def ridge_r2_many(x: np.ndarray, ys: np.ndarray, folds: int = 5, seed: int = 0) -> np.ndarray:
    """Out-of-fold R^2 for each column of ``ys``: one ridge fit per fold for all targets (each
    with its own alpha, chosen by efficient leave-one-out within the training folds)."""
    x = np.asarray(x, dtype=np.float64)
    ys = np.asarray(ys, dtype=np.float64)
    out = np.full(ys.shape[1], np.nan)
    ok = np.nanstd(ys, axis=0) > 0
    if not ok.any() or len(ys) < 2 * folds:
        return out
    y = ys[:, ok]
    pred = np.empty_like(y)
    for train, test in KFold(folds, shuffle=True, random_state=seed).split(x):
        sx = StandardScaler().fit(x[train])
        mu, sd = y[train].mean(axis=0), y[train].std(axis=0)
        sd[sd == 0] = 1.0
        model = RidgeCV(alphas=np.logspace(-3, 4, 15), alpha_per_target=True)
        model.fit(sx.transform(x[train]), (y[train] - mu) / sd)
        pred[test] = model.predict(sx.transform(x[test])).reshape(len(test), -1) * sd + mu
    out[ok] = [r2_score(y[:, k], pred[:, k]) for k in range(y.shape[1])]
    return out


def classification_accuracy(x: np.ndarray, labels, folds: int = 5, seed: int = 0) -> tuple[float, float]:
    """(out-of-fold accuracy, chance = share of the most common label); NaN with one label."""
    labels = pd.Series(np.asarray(labels)).astype(str).to_numpy()
    counts = pd.Series(labels).value_counts()
    if len(counts) < 2:
        return float("nan"), float("nan")
    folds = int(min(folds, counts.min())) if counts.min() >= 2 else 0
    if folds < 2:
        return float("nan"), float(counts.iloc[0] / len(labels))
    # a ridge classifier: a linear probe like logistic regression, at a fraction of the cost
    model = make_pipeline(StandardScaler(), RidgeClassifier(alpha=1.0))
    pred = cross_val_predict(model, x, labels, cv=StratifiedKFold(folds, shuffle=True, random_state=seed))
    return float(np.mean(pred == labels)), float(counts.iloc[0] / len(labels))


def confounder_probes(x: np.ndarray, confounders: pd.DataFrame, folds: int = 5, seed: int = 0) -> pd.DataFrame:
    """Rows ``confounder, metric, value``: ``r2`` per continuous confounder; ``accuracy`` and
    ``chance`` for plate and batch.  ``x`` rows are the wells of ``confounders`` in order."""
    xr = _reduce(x)
    rows = []
    cont = [c for c in confounders.columns if c in CONTINUOUS or c.startswith("intensity_")]
    r2 = ridge_r2_many(xr, confounders[cont].to_numpy(dtype=float), folds, seed) if cont else []
    rows += [(c, R2, float(v)) for c, v in zip(cont, r2)]
    for c in CATEGORICAL:
        if c in confounders.columns:
            acc, chance = classification_accuracy(xr, confounders[c], folds, seed)
            rows.append((c, ACCURACY, acc))
            rows.append((c, CHANCE, chance))
    return pd.DataFrame(rows, columns=["confounder", "metric", "value"])
