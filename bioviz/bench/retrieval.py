"""MOA and target retrieval for compound screens.

mAP (copairs): a compound's wells should retrieve wells of *other* compounds with the same MOA
(same compound is excluded from positives, else replicate similarity would pass for MOA
knowledge).  Nearest-neighbour accuracy: the closest well of a different compound shares the
MOA / at least one target.  Targets are ``|``-separated gene lists.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.preprocessing import normalize

from ..errors import BenchmarkError


def _labels(values) -> np.ndarray:
    s = pd.Series(values, dtype=object)
    return s.where(s.notna() & (s.astype(str).str.strip() != ""), None).to_numpy(dtype=object)


def moa_map(x: np.ndarray, compounds, moa, null_size: int = 2000, seed: int = 0) -> pd.DataFrame:
    """Per MOA: mAP of retrieving other compounds of that MOA; wells without MOA are skipped."""
    from copairs.map import average_precision, mean_average_precision

    moa = _labels(moa)
    keep = np.array([m is not None for m in moa])
    meta = pd.DataFrame({"compound": np.asarray(compounds, dtype=str)[keep], "moa": moa[keep].astype(str)})
    if meta["moa"].nunique() < 2:
        raise BenchmarkError("MOA retrieval needs at least two MOAs among annotated wells")
    from copairs.matching import UnpairedException

    try:
        ap = average_precision(meta, np.asarray(x, dtype=np.float64)[keep], ["moa"], ["compound"], [], ["moa"],
                               progress_bar=False).dropna(subset=["average_precision"])
    except UnpairedException:
        ap = pd.DataFrame()
    if ap.empty:
        raise BenchmarkError("no MOA is shared by two different compounds; MOA retrieval is undefined")
    return mean_average_precision(ap, ["moa"], null_size=null_size, threshold=0.05, seed=seed, progress_bar=False)


def nearest_neighbour_accuracy(x: np.ndarray, compounds, labels, multilabel_sep: str | None = None) -> dict:
    """Share of wells whose nearest (cosine) well of a different compound shares the label.

    Wells without a label are neither queries nor neighbours.  Returns accuracy, the number of
    queries, and chance (the same share for a random different-compound neighbour).
    """
    labels = _labels(labels)
    keep = np.array([v is not None for v in labels])
    comp = np.asarray(compounds, dtype=str)[keep]
    sets = [frozenset(str(v).split(multilabel_sep)) if multilabel_sep else frozenset([str(v)]) for v in labels[keep]]
    if len(sets) < 2 or len(set(comp)) < 2:
        raise BenchmarkError("nearest-neighbour retrieval needs labelled wells of at least two compounds")
    xn = normalize(np.asarray(x, dtype=np.float64)[keep])
    sim = xn @ xn.T
    same = comp[:, None] == comp[None, :]
    sim[same] = -np.inf
    nn = np.argmax(sim, axis=1)
    valid = ~same.all(axis=1)
    hits = np.array([bool(sets[i] & sets[j]) for i, j in zip(np.arange(len(nn)), nn)])
    share = np.array([[bool(a & b) for b in sets] for a in sets]) & ~same
    chance = (share.sum(axis=1) / np.maximum(1, (~same).sum(axis=1)))[valid].mean()
    return {"accuracy": float(hits[valid].mean()), "n": int(valid.sum()), "chance": float(chance),
            "hits": hits[valid]}
