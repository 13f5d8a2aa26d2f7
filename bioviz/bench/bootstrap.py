"""Uncertainty of recall: a cluster bootstrap over known relationships (the null is held fixed).

The null has millions of pairs and its cut values barely move; the uncertainty that matters is
which relationships happen to be in the table.  Pairs are not independent: they share genes,
and the genes of one complex form many pairs at once.  So the resampled unit is a connected
component of the relationship graph (genes as nodes, known pairs as edges): a complex and
everything linked to it is drawn, or not, as a whole.  On the default demo this gives
intervals 1.9-2.6x wider than resampling pairs.  When a component spans most of the table
(dense sources such as StringDB) genes are resampled instead, and a pair enters a sample as
often as the product of its two genes' draws (:func:`pair_clusters`).

A recall of exactly 0 or 1 has no bootstrap spread; it gets the Wilson score interval with n
the number of resampled units (never the width-0 interval [0, 0]).

Paired comparisons resample the same units for both embedders; their p-values are corrected
across all comparisons written (Holm, :func:`holm`).
"""
from __future__ import annotations

import numpy as np
from scipy import sparse
from scipy.sparse.csgraph import connected_components
from scipy.stats import norm

# a component holding more than this share of the pairs is not a useful resampling unit
MAX_COMPONENT_SHARE = 0.5


def pair_clusters(entity1, entity2) -> tuple[np.ndarray, str]:
    """How pairs are resampled: (unit per pair, "complex" or "gene").

    "complex": connected components of the pair graph; a unit id per pair.  When one component
    would hold more than half of the pairs (dense sources such as StringDB), genes are resampled
    instead: the result is then an (n_pairs, 2) array of the two genes' ids, and a pair enters a
    bootstrap sample as often as the product of its two genes' draws.
    """
    a = np.asarray(entity1).astype(str)
    b = np.asarray(entity2).astype(str)
    if len(a) == 0:
        return np.zeros(0, dtype=np.int64), "complex"
    genes, codes = np.unique(np.concatenate([a, b]), return_inverse=True)
    ia, ib = codes[: len(a)], codes[len(a):]
    g = sparse.coo_matrix((np.ones(len(a)), (ia, ib)), shape=(len(genes), len(genes)))
    _, comp = connected_components(g, directed=False)
    lab = comp[ia]
    if np.bincount(lab).max() <= MAX_COMPONENT_SHARE * len(a):
        return lab, "complex"
    return np.column_stack([ia, ib]), "gene"


def wilson(k: float, n: float, level: float = 0.95) -> tuple[float, float]:
    """Wilson score interval of k successes in n trials."""
    if n <= 0:
        return float("nan"), float("nan")
    z = norm.ppf(0.5 + level / 2)
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return float(max(0.0, centre - half)), float(min(1.0, centre + half))


def _boot_ratios(values: np.ndarray, clusters, n_boot: int, seed: int) -> np.ndarray:
    """Bootstrap of the mean of ``values`` resampling ``clusters`` (None: pairs; 1-d: unit ids;
    (n, 2): the two genes of each pair, a pair weighted by the product of its genes' draws).
    Chunked so memory stays small."""
    v = np.asarray(values, dtype=float)
    rng = np.random.default_rng(seed)
    out = np.empty(n_boot)
    if clusters is not None and np.ndim(clusters) == 2:
        cl = np.asarray(clusters)
        genes, codes = np.unique(cl.ravel(), return_inverse=True)
        ia, ib = codes.reshape(-1, 2).T
        g = len(genes)
        step = max(1, 2_000_000 // max(1, len(v) + g))
        for s in range(0, n_boot, step):
            e = min(n_boot, s + step)
            w = rng.multinomial(g, np.full(g, 1.0 / g), size=e - s).astype(float)
            pw = w[:, ia] * w[:, ib]
            tot = pw.sum(axis=1)
            out[s:e] = np.divide(pw @ v, tot, out=np.full(e - s, np.nan), where=tot > 0)
        return out[np.isfinite(out)]
    if clusters is None:
        k, n = v, np.ones(len(v))
    else:
        ids = np.unique(np.asarray(clusters), return_inverse=True)[1]
        k, n = np.bincount(ids, weights=v), np.bincount(ids).astype(float)
    c = len(k)
    step = max(1, 2_000_000 // max(1, c))
    for s in range(0, n_boot, step):
        e = min(n_boot, s + step)
        idx = rng.integers(0, c, size=(e - s, c))
        out[s:e] = k[idx].sum(axis=1) / n[idx].sum(axis=1)
    return out


def _n_units(n_pairs: int, clusters) -> int:
    if clusters is None:
        return n_pairs
    if np.ndim(clusters) == 2:
        return len(np.unique(np.asarray(clusters)))
    return len(np.unique(np.asarray(clusters)))


def bootstrap_ci(recalled, n_boot: int = 1000, level: float = 0.95, seed: int = 0,
                 clusters=None) -> tuple[float, float]:
    """Percentile interval of the share of ``recalled`` pairs, resampling ``clusters`` (one id
    per pair; None: pairs themselves).  0 and 1 get the Wilson interval over the units."""
    r = np.asarray(recalled, dtype=float)
    if len(r) == 0:
        return float("nan"), float("nan")
    p = r.mean()
    if p in (0.0, 1.0):
        units = _n_units(len(r), clusters)
        return wilson(p * units, units, level)
    stats = _boot_ratios(r, clusters, n_boot, seed)
    a = (1 - level) / 2
    return float(np.quantile(stats, a)), float(np.quantile(stats, 1 - a))


def paired_bootstrap_pvalue(recalled_a, recalled_b, n_boot: int = 2000, seed: int = 0, clusters=None) -> dict:
    """One-sided p-value for "A recalls more than B" on the same pairs.

    Both are resampled with the same units (``clusters`` as in :func:`bootstrap_ci`);
    p = (1 + #{boot diff <= 0}) / (1 + n_boot), so it is never 0.  Returns diff (A - B on all
    pairs), ci of the diff, p_value.
    """
    a = np.asarray(recalled_a, dtype=float)
    b = np.asarray(recalled_b, dtype=float)
    if a.shape != b.shape:
        raise ValueError("paired bootstrap needs the two embedders' flags on the same pairs")
    if len(a) == 0:
        return {"diff": float("nan"), "ci_low": float("nan"), "ci_high": float("nan"), "p_value": float("nan")}
    diffs = _boot_ratios(a - b, clusters, n_boot, seed)
    return {
        "diff": float((a - b).mean()),
        "ci_low": float(np.quantile(diffs, 0.025)),
        "ci_high": float(np.quantile(diffs, 0.975)),
        "p_value": float((1 + np.sum(diffs <= 0)) / (1 + n_boot)),
    }


def holm(pvalues) -> np.ndarray:
    """Holm-Bonferroni adjusted p-values (NaN stays NaN and does not count as a test)."""
    p = np.asarray(pvalues, dtype=float)
    out = np.full(len(p), np.nan)
    ok = np.flatnonzero(np.isfinite(p))
    m = len(ok)
    if m == 0:
        return out
    order = ok[np.argsort(p[ok], kind="stable")]
    adj = np.minimum(1.0, np.maximum.accumulate(p[order] * (m - np.arange(m))))
    out[order] = adj
    return out
