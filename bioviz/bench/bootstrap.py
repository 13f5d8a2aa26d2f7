"""Uncertainty of recall: bootstrap over known relationships (the null is held fixed).

The null has millions of pairs and its cut values barely move; the uncertainty that matters
is which relationships happen to be in the table, so pairs are resampled with replacement.
"""
from __future__ import annotations

import numpy as np



def bootstrap_ci(recalled, n_boot: int = 1000, level: float = 0.95, seed: int = 0) -> tuple[float, float]:
    """Percentile bootstrap interval of the mean of a boolean ``recalled`` vector."""
    r = np.asarray(recalled, dtype=float)
    if len(r) == 0:
        return float("nan"), float("nan")
    stats = _boot_means(r, n_boot, seed)
    a = (1 - level) / 2
    return float(np.quantile(stats, a)), float(np.quantile(stats, 1 - a))


def _boot_means(r: np.ndarray, n_boot: int, seed: int) -> np.ndarray:
    # resample in chunks so 1000 x 100k pairs never sit in memory at once
    out = np.empty(n_boot)
    rng = np.random.default_rng(seed)
    step = max(1, 2_000_000 // max(1, len(r)))
    for a in range(0, n_boot, step):
        b = min(n_boot, a + step)
        idx = rng.integers(0, len(r), size=(b - a, len(r)))
        out[a:b] = r[idx].mean(axis=1)
    return out


def paired_bootstrap_pvalue(recalled_a, recalled_b, n_boot: int = 2000, seed: int = 0) -> dict:
    """One-sided p-value for "A recalls more than B" on the same pairs.

    Both vectors are resampled with the same indices; p = (1 + #{boot diff <= 0}) / (1 + n_boot),
    so it is never 0.  Returns diff (A - B on all pairs), ci of the diff, p_value.
    """
    a = np.asarray(recalled_a, dtype=float)
    b = np.asarray(recalled_b, dtype=float)
    if a.shape != b.shape:
        raise ValueError("paired bootstrap needs the two embedders' flags on the same pairs")
    if len(a) == 0:
        return {"diff": float("nan"), "ci_low": float("nan"), "ci_high": float("nan"), "p_value": float("nan")}
    diffs = _boot_means(a - b, n_boot, seed)
    return {
        "diff": float((a - b).mean()),
        "ci_low": float(np.quantile(diffs, 0.025)),
        "ci_high": float(np.quantile(diffs, 0.975)),
        "p_value": float((1 + np.sum(diffs <= 0)) / (1 + n_boot)),
    }
