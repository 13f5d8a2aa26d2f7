"""Linear CKA (Kornblith et al. 2019) between two well-level embeddings of the same wells."""
from __future__ import annotations

import numpy as np


def linear_cka(x: np.ndarray, y: np.ndarray) -> float:
    """||Y'X||_F^2 / (||X'X||_F ||Y'Y||_F) on column-centred X, Y; 0 when either is constant."""
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    if x.shape[0] != y.shape[0]:
        raise ValueError("CKA needs the same wells in both embeddings")
    x = x - x.mean(axis=0)
    y = y - y.mean(axis=0)
    # with fewer wells than features the n x n Gram form is cheaper; both give the same number
    if x.shape[0] < max(x.shape[1], y.shape[1]):
        kx, ky = x @ x.T, y @ y.T
        num = float(np.sum(kx * ky))
        den = float(np.linalg.norm(kx) * np.linalg.norm(ky))
    else:
        num = float(np.linalg.norm(y.T @ x) ** 2)
        den = float(np.linalg.norm(x.T @ x) * np.linalg.norm(y.T @ y))
    return num / den if den > 0 else 0.0
