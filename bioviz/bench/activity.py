"""Phenotypic activity and replicate consistency, with copairs (mAP, Kalinin et al. 2024).

activity: can a perturbation's replicate wells be retrieved from among control wells?
consistency: can they be retrieved from among the other perturbations' wells?
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from ..errors import BenchmarkError

# copairs materialises one feature row per pair it scores: at 10,240 dims (ResNet-50 per channel)
# and ~1,500 wells that took >13 GB. mAP only needs the geometry, which the leading PCs keep.
MAX_DIMS = 128


def _reduce_dims(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    if x.shape[1] > MAX_DIMS and x.shape[0] > MAX_DIMS:
        from sklearn.decomposition import PCA

        x = PCA(MAX_DIMS, random_state=0).fit_transform(x)
    return x


def _map(meta, feats, pos_sameby, pos_diffby, neg_sameby, neg_diffby, sameby, null_size, seed) -> pd.DataFrame:
    from copairs.map import average_precision, mean_average_precision

    from copairs.matching import UnpairedException

    try:
        ap = average_precision(meta, feats, pos_sameby, pos_diffby, neg_sameby, neg_diffby, progress_bar=False)
    except UnpairedException as exc:
        raise BenchmarkError(f"mAP: {exc} (no perturbation has two replicate wells)") from exc
    ap = ap.dropna(subset=["average_precision"])
    if ap.empty:
        return pd.DataFrame(columns=[*sameby, "mean_average_precision", "corrected_p_value", "below_corrected_p"])
    return mean_average_precision(ap, sameby, null_size=null_size, threshold=0.05, seed=seed, progress_bar=False)


def phenotypic_activity(
    x: np.ndarray, perturbations, is_control, null_size: int = 2000, seed: int = 0
) -> pd.DataFrame:
    """Per perturbation: mAP of its replicates against controls, BH-corrected p, significant flag.

    Columns ``perturbation, metric, mean_average_precision, corrected_p_value, below_corrected_p``.
    """
    perts = pd.Series(np.asarray(perturbations)).astype(str).to_numpy()
    ctrl = np.asarray(is_control, dtype=bool)
    if ctrl.sum() < 2:
        raise BenchmarkError("phenotypic activity needs at least two control wells")
    # each control well gets its own reference index, so controls are never each other's positives
    ref = np.where(ctrl, np.arange(len(perts)), -1)
    meta = pd.DataFrame({"perturbation": perts, "ref": ref})
    out = _map(meta, _reduce_dims(x), ["perturbation", "ref"], [], [], ["perturbation", "ref"],
               ["perturbation"], null_size, seed)
    out = out[out["perturbation"].isin(pd.unique(perts[~ctrl]))]
    return _tidy(out, "activity")


def replicate_consistency(
    x: np.ndarray, perturbations, is_control, null_size: int = 2000, seed: int = 0
) -> pd.DataFrame:
    """Per perturbation: mAP of its replicates against the other perturbations' wells."""
    perts = pd.Series(np.asarray(perturbations)).astype(str).to_numpy()
    keep = ~np.asarray(is_control, dtype=bool)
    if len(pd.unique(perts[keep])) < 2:
        raise BenchmarkError("replicate consistency needs at least two perturbations")
    meta = pd.DataFrame({"perturbation": perts[keep]})
    out = _map(meta, _reduce_dims(np.asarray(x)[keep]), ["perturbation"], [], [], ["perturbation"],
               ["perturbation"], null_size, seed)
    return _tidy(out, "consistency")


def _tidy(out: pd.DataFrame, metric: str) -> pd.DataFrame:
    out = out.reset_index(drop=True)
    out.insert(1, "metric", metric)
    return out[["perturbation", "metric", "mean_average_precision", "corrected_p_value", "below_corrected_p"]]
