"""EFAAR's other benchmarks, number for number efaar-benchmarking 1.0, vectorised.

``efaar_benchmarking.benchmarking`` ships three benchmarks beside known-relationship recall:

- ``pert_signal_consistency_benchmark``: for each perturbation, the mean cosine similarity of its
  replicate wells (lower triangle of ``cosine_similarity``, clipped to [-1, 1]), with a p-value
  against the same statistic of null perturbations (non-expressed genes, or controls);
- ``pert_signal_magnitude_benchmark``: the energy distance (geomloss ``SamplesLoss("energy")``, x2)
  between a perturbation's wells and a sample of control wells, p-value against null
  perturbations;
- ``cluster_benchmark``: per CORUM complex, mean within-complex and between-complex cosine of an
  aggregated map and a two-sample Kolmogorov-Smirnov test of the two distributions.

efaar runs each perturbation (or complex) as its own joblib task: a ``DataFrame.loc`` lookup on
an unsorted non-unique index (O(wells) each), one small sklearn/geomloss call, and for magnitude
the full control x control distance matrix recomputed for every perturbation.  Here:

- consistency: rows are grouped once (a stable sort), and groups of equal size are stacked into
  one (G, r, d) batched product: the same sklearn arithmetic (row norms, division, A @ A.T),
  element by element, so the same floats;
- magnitude: geomloss's tensorized formula, written out: the control x control term is computed
  once, the well x control distances for all perturbations in one product;
- cluster: rows normalised once; each complex's rows against the whole map in one product, the KS
  statistic from counts (no sort of the k x (n - k) between-complex cosines) and its p-value from
  the same scipy routine ``ks_2samp`` uses.

The functions with efaar's names take efaar's arguments and return efaar's columns.  What efaar
cannot answer (no null perturbation in the screen, no replicates, fewer wells than the energy
distance needs) raises :class:`NotApplicable`; :func:`suite_rows` turns that into a
"not applicable: <why>" row, never a number.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

from ..errors import BenchmarkError

# efaar's pert_signal_magnitude_metric returns NaN below this many wells of a perturbation
MIN_MAGNITUDE_WELLS = 5
MIN_CONSISTENCY_WELLS = 2
# geomloss's tensorized backend clamps squared distances here (so a point's distance to itself is 1e-4)
_GEOMLOSS_CLAMP = 1e-8
# geomloss switches from its tensorized to its "online" (KeOps) backend above this many pairs
_GEOMLOSS_TENSORIZED_MAX = 5000**2


class NotApplicable(BenchmarkError):
    """A benchmark that does not apply to this screen; the message says why."""


# -- shared arithmetic --------------------------------------------------------------------------


def _float_array(x) -> np.ndarray:
    """The dtype sklearn's check_pairwise_arrays gives: float32 stays, anything else float64."""
    x = np.asarray(x)
    if x.dtype == np.float32 or x.dtype == np.float64:
        return x
    return x.astype(np.float64)


def _normalize_rows(x: np.ndarray, order: str = "F") -> np.ndarray:
    """``sklearn.preprocessing.normalize`` of ``x`` laid out as efaar's calls see it.

    efaar hands sklearn ``DataFrame.values`` (or ``np.array`` of a ``.loc`` slice).  A frame built
    from an array keeps it as one (features x rows) block, so those arrays are Fortran-ordered
    (``order="F"``); a frame whose ``.values`` is C-ordered (e.g. a groupby mean) gives C-ordered
    slices.  einsum sums a Fortran row in another order than a C row (last-bit differences,
    measured).  Each row's norm does not depend on the other rows, so normalising the whole
    matrix once gives every subset's values.  Returned C-ordered for the products that follow.
    """
    from sklearn.preprocessing import normalize

    arr = np.asfortranarray(x) if order == "F" else np.ascontiguousarray(x)
    return np.ascontiguousarray(normalize(arr))


def _pandas_order(features) -> str:
    """The memory order of ``features[mask].values`` in efaar (see :func:`_normalize_rows`)."""
    if isinstance(features, pd.DataFrame):
        return "F" if features.values.flags.f_contiguous and not features.values.flags.c_contiguous else "C"
    return "F"  # efaar's callers wrap arrays in a DataFrame, which stores them as one block


def _groups(labels: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(unique labels in first-appearance order, row order grouped by label, group sizes).

    Within a group rows keep their original order, as ``DataFrame.loc[label]`` returns them.
    """
    codes, uniques = pd.factorize(labels)
    order = np.argsort(codes, kind="stable")
    sizes = np.bincount(codes, minlength=len(uniques))
    return np.asarray(uniques, dtype=object), order, sizes


def label_positions(labels) -> dict:
    """{label: positions of its rows, ascending}: the grouping of ``_groups`` as a look-up (the
    cluster benchmark's gene -> map rows, the dashboard's perturbation -> wells)."""
    uniques, order, sizes = _groups(np.asarray(labels, dtype=object))
    bounds = np.concatenate([[0], np.cumsum(sizes)])
    return {g: order[bounds[k]:bounds[k + 1]] for k, g in enumerate(uniques)}


def _check_wells(features, metadata: pd.DataFrame, pert_col: str) -> tuple[np.ndarray, np.ndarray]:
    if pert_col not in metadata.columns:
        raise BenchmarkError(f"metadata has no column {pert_col!r} (the perturbation labels)")
    x = _float_array(features.to_numpy() if isinstance(features, pd.DataFrame) else features)
    if x.ndim != 2:
        raise BenchmarkError(f"features must be a wells x features matrix, got shape {x.shape}")
    if len(x) != len(metadata):
        raise BenchmarkError(f"{len(x)} feature rows but {len(metadata)} metadata rows")
    if not np.isfinite(x).all():
        r = int(np.flatnonzero(~np.isfinite(x).all(axis=1))[0])
        raise BenchmarkError(f"features have NaN/infinite values (first in row {r}, {metadata[pert_col].iloc[r]!r})")
    return x, metadata[pert_col].to_numpy()


# -- perturbation-signal consistency ------------------------------------------------------------


def _mean_replicate_cosine(x: np.ndarray, order: np.ndarray, sizes: np.ndarray) -> np.ndarray:
    """efaar's ``pert_signal_consistency_metric`` (without the p-value) for every group.

    Groups with fewer than 2 rows give NaN.  Groups of equal size r are one (G, r, d) stack:
    ``cosine_similarity`` is normalise-then-A @ A.T, and numpy's batched matmul runs the same
    kernel for each (r, d) item, so every cosine is the float efaar's per-group call gives.
    """
    out = np.full(len(sizes), np.nan, dtype=np.float64)
    starts = np.concatenate([[0], np.cumsum(sizes)[:-1]])
    xn = _normalize_rows(x)
    for r in np.unique(sizes):
        if r < MIN_CONSISTENCY_WELLS:
            continue
        g = np.flatnonzero(sizes == r)
        rows = order[starts[g][:, None] + np.arange(r)[None, :]]  # (G, r)
        stack = xn[rows]  # (G, r, d)
        # one group at a time would be the same kernel; chunks bound the (G, r, r) temporary
        step = max(1, int(2e7 // (r * r)))
        lo, hi = np.tril_indices(r, k=-1)
        for a in range(0, len(g), step):
            s = stack[a : a + step]
            cos = np.clip(np.matmul(s, np.swapaxes(s, 1, 2)), -1, 1)
            vals = np.ascontiguousarray(cos[:, lo, hi])
            # row by row: a 2-D mean(axis=1) may sum sequentially instead of numpy's pairwise
            # 1-D summation efaar's .mean() uses (different last bits from 8 pairs on)
            out[g[a : a + step]] = [v.mean() for v in vals]
    return out


def pert_signal_consistency_benchmark(
    features, metadata: pd.DataFrame, pert_col: str, neg_ctrl_perts, keys_to_drop=()
) -> pd.DataFrame:
    """efaar's ``pert_signal_consistency_benchmark``: columns ``pert, avgcossim, pval``.

    ``features``: wells x features; ``metadata[pert_col]``: each well's perturbation;
    ``neg_ctrl_perts``: the null perturbations (non-expressed genes, or control pseudo-
    perturbations, see :func:`control_null`).  Rows: every perturbation not in the null, in
    first-appearance order; a perturbation with one well has NaN (as efaar).
    Raises :class:`NotApplicable` when efaar's answer would be an error or a noise number: no null
    perturbation in the screen, none of them with 2 wells, no perturbation with 2 wells.
    """
    x, labels = _check_wells(features, metadata, pert_col)
    keep = ~pd.Series(labels).isin(list(keys_to_drop)).to_numpy()
    x, labels = x[keep], labels[keep]
    uniques, order, sizes = _groups(labels)
    is_null = pd.Series(uniques).isin(list(neg_ctrl_perts)).to_numpy()
    if not is_null.any():
        raise NotApplicable("no null perturbation is in the screen (none of the given negative controls occurs)")
    if (sizes[is_null] < MIN_CONSISTENCY_WELLS).all():
        raise NotApplicable("no null perturbation has 2 or more wells, so there is no null of replicate cosines")
    if (sizes[~is_null] < MIN_CONSISTENCY_WELLS).all():
        raise NotApplicable("no perturbation has 2 or more wells (no replicates)")
    metric = _mean_replicate_cosine(x, order, sizes)
    # efaar: np.sort of the null values (NaN for 1-well nulls sort last and count in the length)
    null = np.sort(metric[is_null])
    query = metric[~is_null]
    pval = 1 - np.searchsorted(null, query) / len(null)
    pval[np.isnan(query)] = np.nan
    out = pd.DataFrame({"pert": uniques[~is_null], "avgcossim": query, "pval": pval})
    out.attrs.update(null_size=int(is_null.sum()))
    return out


# -- perturbation-signal magnitude --------------------------------------------------------------


def _sorted_positions(labels: np.ndarray) -> np.ndarray:
    """The row permutation of efaar's ``DataFrame(...).sort_index()`` (the same pandas call)."""
    return pd.Series(np.arange(len(labels)), index=pd.Index(labels)).sort_index().to_numpy()


def control_sample(labels: np.ndarray, control_key: str, max_controls: int, random_state=None) -> np.ndarray:
    """Row indices of efaar's control sample: ``features_df.sort_index().loc[control_key].sample(n)``.

    ``random_state``: None draws from numpy's global RandomState, as efaar's ``sample()`` does;
    an int or RandomState makes it reproducible (``RandomState(s)`` == ``np.random.seed(s)`` then efaar).
    """
    pos = _sorted_positions(labels)
    ctrl = pos[labels[pos] == control_key]
    if len(ctrl) == 0:
        raise NotApplicable(f"no well has the control label {control_key!r}, so there is nothing to measure against")
    n = min(int(max_controls), len(ctrl))
    if random_state is None:
        rs = np.random.mtrand._rand
    elif isinstance(random_state, np.random.RandomState):
        rs = random_state
    else:
        rs = np.random.RandomState(random_state)
    return ctrl[rs.choice(len(ctrl), size=n, replace=False)]  # pandas' sample(n) is this choice


def _geomloss_distances(u, v, d_uv=None):
    """geomloss.utils.distances on (B, n, d) tensors, operation for operation (``d_uv``: u @ v^T
    computed by the caller)."""
    import torch

    d_uu = (u * u).sum(-1).unsqueeze(2)
    if d_uv is None:
        d_uv = torch.matmul(u, v.permute(0, 2, 1))
    d_vv = (v * v).sum(-1).unsqueeze(1)
    return torch.sqrt(torch.clamp_min(d_uu - 2 * d_uv + d_vv, _GEOMLOSS_CLAMP))


def _energy_distances(x: np.ndarray, rows_by_group: list[np.ndarray], y: np.ndarray) -> np.ndarray:
    """``SamplesLoss("energy")(x_g, y).item() * 2`` for each group g: geomloss's tensorized formula.

    loss = 1/2 a.K_xx.a + 1/2 b.K_yy.b - a.K_xy.b with K = -sqrt(max(|u|^2 - 2u.v + |v|^2, 1e-8)),
    uniform weights a = 1/n, b = 1/m.  The controls' term b.K_yy.b does not depend on the group:
    computed once (efaar recomputes the m x m matrix for every perturbation: most of its time).
    The well x control distances of all groups of one size come from one batched product over
    Fortran-ordered items, which torch computes item for item as geomloss's (1, n, d) call does
    (bit-identical, tested); the n x n products, matrix-vector products and sums run per group
    with geomloss's shapes, because torch's batched kernels sum those in another order.  One torch thread for the loop:
    its operations are a few hundred numbers, and on a loaded 2-core machine two threads made
    this 64x slower (128 s against 2 s for 300 perturbations, measured).
    """
    import torch

    threads = torch.get_num_threads()
    with torch.no_grad():
        yt = torch.from_numpy(np.asfortranarray(y)).unsqueeze(0)  # efaar's np.array(sample) layout
        m = yt.shape[1]
        beta = (torch.ones(m).type_as(yt) / m).unsqueeze(0)
        b_y = (-_geomloss_distances(yt, yt) @ beta.unsqueeze(-1)).squeeze(-1)
        term_yy = 0.5 * (beta.reshape(1, -1) * b_y.reshape(1, -1)).sum(1)
        beta_col = beta.unsqueeze(-1)
        out = np.full(len(rows_by_group), np.nan)
        sizes = np.array([len(r) for r in rows_by_group])
        torch.set_num_threads(1)
        try:
            for n in np.unique(sizes):
                g = np.flatnonzero(sizes == n)
                alpha = (torch.ones(int(n)).type_as(yt) / int(n)).unsqueeze(0)
                alpha_col = alpha.unsqueeze(-1)
                step = max(1, int(4e6 // (n * (m + n))))  # bound the (G, n, m) distance block
                for a in range(0, len(g), step):
                    chunk = g[a : a + step]
                    idx = np.stack([rows_by_group[i] for i in chunk])  # (G, n)
                    # (G, d, n) C-ordered, transposed: every (n, d) item Fortran-ordered, as
                    # torch.from_numpy(np.array(features_df.loc[pert])) is in efaar
                    xt = torch.from_numpy(np.ascontiguousarray(x[idx].transpose(0, 2, 1))).transpose(1, 2)
                    # x @ x^T item by item: torch's batched kernel sums odd-sized items in
                    # another order than its single (1, n, d) product (measured, float32 and 64)
                    xx = torch.cat([torch.matmul(xt[j : j + 1], xt[j : j + 1].permute(0, 2, 1)) for j in range(len(chunk))])
                    k_xx = -_geomloss_distances(xt, xt, xx)
                    k_xy = -_geomloss_distances(xt, yt.expand(len(chunk), -1, -1))
                    for j, gi in enumerate(chunk):
                        a_x = (k_xx[j : j + 1] @ alpha_col).squeeze(-1)
                        b_x = (k_xy[j : j + 1] @ beta_col).squeeze(-1)
                        loss = 0.5 * (alpha * a_x).sum(1) + term_yy - (alpha * b_x).sum(1)
                        out[gi] = loss[0].item() * 2
        finally:
            torch.set_num_threads(threads)
    return out


def pert_signal_magnitude_benchmark(
    features,
    metadata: pd.DataFrame,
    pert_col: str,
    neg_ctrl_perts,
    control_key: str,
    max_controls: int = 1000,
    keys_to_drop=(),
    random_state=None,
) -> pd.DataFrame:
    """efaar's ``pert_signal_magnitude_benchmark``: columns ``pert, edist, pval``.

    Energy distance (x2, as efaar) between each perturbation's wells and a sample of at most
    ``max_controls`` wells labelled ``control_key``; p-value: share of null perturbations'
    distances above it (efaar's ``1 - searchsorted(null, d, 'right') / len(null)``).  A
    perturbation with fewer than 5 wells has NaN (efaar's minimum).  Rows: every perturbation not
    in the null (the control label included, as efaar), in first-appearance order.
    ``random_state``: see :func:`control_sample`.
    """
    if control_key in list(keys_to_drop):
        raise BenchmarkError("control_key should not be in keys_to_drop")
    x, labels = _check_wells(features, metadata, pert_col)
    keep = ~pd.Series(labels).isin(list(keys_to_drop)).to_numpy()
    x, labels = x[keep], labels[keep]
    uniques, order, sizes = _groups(labels)
    is_null = pd.Series(uniques).isin(list(neg_ctrl_perts)).to_numpy()
    if not is_null.any():
        raise NotApplicable("no null perturbation is in the screen (none of the given negative controls occurs)")
    if (sizes[is_null] < MIN_MAGNITUDE_WELLS).all():
        raise NotApplicable(
            f"no null perturbation has {MIN_MAGNITUDE_WELLS} or more wells (efaar's minimum for the energy distance)"
        )
    query_sizes = sizes[~is_null & (uniques != control_key)]  # the controls' own row is no signal
    if len(query_sizes) == 0 or (query_sizes < MIN_MAGNITUDE_WELLS).all():
        raise NotApplicable(
            f"every perturbation has fewer than {MIN_MAGNITUDE_WELLS} wells (efaar's minimum for the energy distance; "
            f"the most is {int(query_sizes.max()) if len(query_sizes) else 0})"
        )
    y = x[control_sample(labels, control_key, max_controls, random_state)]
    if int(sizes.max()) * len(y) > _GEOMLOSS_TENSORIZED_MAX:
        raise BenchmarkError(
            f"a perturbation with {int(sizes.max())} wells against {len(y)} controls exceeds geomloss's tensorized "
            "backend (efaar would switch to KeOps); lower max_controls"
        )
    starts = np.concatenate([[0], np.cumsum(sizes)[:-1]])
    # efaar reads each group from the sorted frame; the energy distance sums over its rows in that
    # order, so keep it: the sort_index permutation restricted to each group
    pos = _sorted_positions(labels)
    rank = np.empty(len(pos), dtype=np.int64)
    rank[pos] = np.arange(len(pos))
    big = np.flatnonzero(sizes >= MIN_MAGNITUDE_WELLS)
    groups = []
    for i in big:
        rows = order[starts[i] : starts[i] + sizes[i]]
        groups.append(rows[np.argsort(rank[rows], kind="stable")])
    edist = np.full(len(sizes), np.nan)
    edist[big] = _energy_distances(x, groups, y)
    null = np.sort(edist[is_null])
    query = edist[~is_null]
    pval = 1 - np.searchsorted(null, query, side="right") / len(null)
    pval[np.isnan(query)] = np.nan
    out = pd.DataFrame({"pert": uniques[~is_null], "edist": query, "pval": pval})
    out.attrs.update(null_size=int(is_null.sum()), n_controls=len(y))
    return out


# -- cluster benchmark ---------------------------------------------------------------------------


def benchmark_clusters(map_genes, source: str = "CORUM", min_genes: int = 10, clusters=None) -> dict:
    """efaar's ``get_benchmark_clusters``: ``{complex: sorted map genes}`` with >= ``min_genes``.

    ``clusters``: ``{name: genes}`` instead of a public source.  efaar returns nothing when the map
    has no genes; so does this.
    """
    if clusters is None:
        if source != "CORUM":
            raise BenchmarkError(
                f"cluster source {source!r} is not available: efaar-benchmarking 1.0 ships CORUM complexes only "
                "(its GO table is a storage pointer); pass clusters={name: genes}"
            )
        from ..relationships import corum_complexes

        clusters = corum_complexes()
    genes = set(map_genes)
    out = {}
    if not genes:
        return out
    for key, members in clusters.items():
        gns = set(members).intersection(genes)
        if len(gns) >= min_genes:
            out[key] = sorted(gns)
    return out


def _ks_test(d: float, n1: int, n2: int) -> tuple[float, float]:
    """(statistic, two-sided p-value) as ``scipy.stats.ks_2samp`` (method 'auto') reports them for
    the raw statistic d: its exact branch rounds d to the n1/n2 lattice."""
    from scipy.stats import distributions
    from scipy.stats._stats_py import _attempt_exact_2kssamp

    g = math.gcd(n1, n2)
    mode = "exact" if max(n1, n2) <= 10000 else "asymp"
    prob = -np.inf
    if mode == "exact":
        success, d, prob = _attempt_exact_2kssamp(n1, n2, g, d, "two-sided")
        if not success:
            mode = "asymp"
    if mode == "asymp":
        m, n = sorted([float(n1), float(n2)], reverse=True)
        en = m * n / (m + n)
        prob = distributions.kstwo.sf(d, np.round(en))
    return float(d), float(np.clip(prob, 0, 1))


def ks_statistic(within: np.ndarray, between: np.ndarray) -> float:
    """``ks_2samp(within, between).statistic`` from counts, the same float divisions as scipy.

    ks_2samp evaluates cdf1 - cdf2 at every point of both samples: two searchsorted passes of all
    k(k-1)/2 + k(n-k) values (most of efaar's cluster time at 8,000 genes).  cdf1 only steps at
    within values, so the maximum is attained at a within value, and the minimum at a within
    value or at the largest between value of a gap between two within values; both need only the
    counts of between values below / at each distinct within value: one sort of ``between`` and
    a searchsorted of the few within values into it.
    """
    n1, n2 = len(within), len(between)
    u = np.unique(within)  # sorted distinct within values
    c1_le = np.searchsorted(np.sort(within), u, side="right")
    sb = np.sort(between)
    c2_lt = np.searchsorted(sb, u, side="left")  # count(between < u[j])
    c2_le = np.searchsorted(sb, u, side="right")  # count(between <= u[j])
    cdf1 = c1_le / n1
    cand = [cdf1 - c2_le / n2]  # at each within value
    # the largest between value in the gap before u[j]: cdf1 = count(within < u[j]) / n1
    prev_c1 = np.concatenate([[0], c1_le[:-1]])
    prev_c2 = np.concatenate([[0], c2_le[:-1]])
    gap = c2_lt > prev_c2
    cand.append(prev_c1[gap] / n1 - c2_lt[gap] / n2)
    if c2_le[-1] < n2:  # between values above every within value: 1 - 1
        cand.append(np.array([n1 / n1 - n2 / n2]))
    diffs = np.concatenate(cand)
    max_s = diffs.max()
    min_s = np.clip(-diffs.min(), 0, 1)
    return float(min_s if min_s > max_s else max_s)


def cluster_benchmark(features, labels, source: str = "CORUM", min_genes: int = 10, clusters=None) -> pd.DataFrame:
    """efaar's ``cluster_benchmark`` on a map (one row per perturbation): same columns, same rows.

    ``features``: perturbations x features (array or DataFrame); ``labels``: their names.
    Columns: cluster, within_cossim_mean, between_cossim_mean, genes, cluster_size,
    not_cluster_size, ks_stat, ks_pval.  Raises :class:`NotApplicable` when no complex has
    ``min_genes`` genes in the map.
    """
    x = _float_array(features.to_numpy() if isinstance(features, pd.DataFrame) else features)
    labels = np.asarray(pd.Series(labels).to_numpy(), dtype=object)
    if len(x) != len(labels):
        raise BenchmarkError(f"{len(x)} feature rows but {len(labels)} perturbation labels")
    if not np.isfinite(x).all():
        raise BenchmarkError("map has NaN/infinite feature values")
    found = benchmark_clusters(list(labels), source, min_genes, clusters)
    if not found:
        raise NotApplicable(
            f"no {source if clusters is None else 'given'} cluster has {min_genes} or more genes in the map "
            f"({len(labels)} perturbations)"
        )
    order = _pandas_order(features)
    xn = _normalize_rows(x, order)
    # gene -> map rows once (efaar runs an isin over the map for every complex)
    # (a pandas groupby-apply here took 1.7 of 3.9 s at 8,000 genes: one Series per gene)
    where = label_positions(labels)
    rows = []
    for key, genes in found.items():
        inside = np.sort(np.concatenate([where[g] for g in genes]))
        ind = np.zeros(len(labels), dtype=bool)
        ind[inside] = True
        outside = np.flatnonzero(~ind)
        # efaar's two products with their shapes: OpenBLAS picks its kernel (and summation order)
        # by shape, so the k x n product sliced differs from the k x (n - k) one in the last bit
        a = xn[inside]
        within = (a @ xn[inside].T)[np.triu_indices(len(inside), k=1)]  # two buffers: gemm, as efaar
        b = xn[outside]
        if len(inside) == 1:
            # a one-row array is C- and F-contiguous at once: sklearn's einsum takes the C path
            a = _normalize_rows(x[inside], "C")
            if order == "F":
                # and numpy calls gemv, whose summation follows the matrix's layout (gemm's
                # does not, tested): give it efaar's column-major rows
                b = np.asfortranarray(b)
        between = (a @ b.T).ravel()
        with np.errstate(all="ignore"):
            w_mean = within.mean() if len(within) else np.nan
            b_mean = between.mean() if len(between) else np.nan
        if len(within) and len(between):
            stat, p = _ks_test(ks_statistic(within, between), len(within), len(between))
        else:  # scipy returns NaN (with a warning) for an empty sample
            stat, p = np.nan, np.nan
        rows.append([key, w_mean, b_mean, list(labels[ind]) if not np.isnan(p) else [], len(inside), len(outside),
                     stat, p])
    return pd.DataFrame(rows, columns=["cluster", "within_cossim_mean", "between_cossim_mean", "genes",
                                       "cluster_size", "not_cluster_size", "ks_stat", "ks_pval"])


# -- the null from the screen --------------------------------------------------------------------


@dataclass
class NullChoice:
    """Which perturbations form the null, and how to say so."""

    labels: np.ndarray  # per-well labels, control wells possibly relabelled into pseudo-perturbations
    null_perts: list
    description: str  # e.g. "negative controls: 75 pseudo-perturbations of 4 non-targeting wells"
    kind: str  # "controls" or "non-expressed genes"


def control_null(labels, control_label: str, size: int, *, reserve: float = 0.0, seed: int = 0) -> NullChoice:
    """A null of pseudo-perturbations made of control wells, ``size`` wells each.

    A screen has one control label over many wells; efaar's null needs many null perturbations
    with a perturbation's replicate structure, as non-expressed genes would give.  Control wells
    are shuffled (``seed``) and cut into groups of ``size`` named ``<control>#<i>``.  ``reserve``:
    the share of control wells kept under the control label (the reference sample of the
    magnitude benchmark must not contain its own null).
    """
    labels = np.asarray(pd.Series(labels).astype(str).to_numpy(), dtype=object).copy()
    ctrl = np.flatnonzero(labels == str(control_label))
    rng = np.random.default_rng(seed)
    ctrl = ctrl[rng.permutation(len(ctrl))]
    n_pool = len(ctrl) - int(round(reserve * len(ctrl)))
    n_groups = n_pool // size if size >= 1 else 0
    names = []
    for i in range(n_groups):
        name = f"{control_label}#{i}"
        labels[ctrl[i * size : (i + 1) * size]] = name
        names.append(name)
    desc = f"negative controls: {n_groups} pseudo-perturbations of {size} {control_label} wells"
    return NullChoice(labels=labels, null_perts=names, description=desc, kind="controls")


def expression_null(labels, genes) -> NullChoice:
    """The null efaar's authors use: perturbations of genes not expressed in the cell type."""
    labels = np.asarray(pd.Series(labels).astype(str).to_numpy(), dtype=object)
    present = sorted(set(map(str, genes)).intersection(labels))
    desc = f"non-expressed genes (user list): {len(present)} of {len(set(map(str, genes)))} in the screen"
    return NullChoice(labels=labels, null_perts=present, description=desc, kind="non-expressed genes")


# -- result rows for bench/run.py ---------------------------------------------------------------

CONSISTENCY_COLUMNS = ["embedder", "perturbation", "avgcossim", "pval", "null", "null_size", "note"]
MAGNITUDE_COLUMNS = ["embedder", "perturbation", "edist", "pval", "null", "null_size", "n_controls", "note"]
CLUSTER_COLUMNS = ["embedder", "cluster", "within_cossim_mean", "between_cossim_mean", "cluster_size",
                   "not_cluster_size", "ks_stat", "ks_pval", "genes", "note"]


def not_applicable_row(columns: list[str], embedder: str, why: str, **known) -> pd.DataFrame:
    """One row that says why a benchmark does not apply: numbers empty, ``note`` the reason."""
    row = {c: np.nan for c in columns}
    row.update(embedder=embedder, note=f"not applicable: {why}", **known)
    for c in ("perturbation", "cluster", "genes", "null"):
        if c in row and not isinstance(row[c], str):
            row[c] = ""
    return pd.DataFrame([row], columns=columns)


def replicate_size(labels, control_label: str) -> int:
    """The typical (median) number of wells of a non-control perturbation."""
    s = pd.Series(labels).astype(str)
    counts = s[s != str(control_label)].value_counts()
    return int(np.median(counts)) if len(counts) else 0


def suite_rows(
    embedder: str,
    wells: np.ndarray,
    labels,
    control_label: str,
    map_features: np.ndarray,
    map_labels,
    *,
    null_genes=None,
    max_controls: int = 1000,
    min_genes: int = 10,
    seed: int = 0,
) -> dict[str, pd.DataFrame]:
    """Consistency, magnitude and cluster results of one embedder, in the results files' columns.

    ``wells``: normalised well-level features (the map recipe before aggregation); ``labels``: each
    well's perturbation; ``map_features`` / ``map_labels``: the aggregated map (recall's).
    ``null_genes``: non-expressed genes; otherwise the null is made of control wells
    (:func:`control_null`).  A benchmark that does not apply gives one "not applicable" row.
    """
    labels = np.asarray(pd.Series(labels).astype(str).to_numpy(), dtype=object)
    meta_col = "perturbation"
    out = {}
    r = replicate_size(labels, control_label)
    # consistency: every control well may serve the null
    if null_genes is not None:
        nc = expression_null(labels, null_genes)
        drop = [str(control_label)]
    else:
        nc = control_null(labels, control_label, max(r, MIN_CONSISTENCY_WELLS), seed=seed)
        drop = [str(control_label)]  # leftover control wells (fewer than one group)
    try:
        res = pert_signal_consistency_benchmark(wells, pd.DataFrame({meta_col: nc.labels}), meta_col, nc.null_perts, drop)
        out["consistency"] = pd.DataFrame({
            "embedder": embedder, "perturbation": res["pert"].astype(str), "avgcossim": res["avgcossim"],
            "pval": res["pval"], "null": nc.description, "null_size": len(nc.null_perts),
            "note": np.where(res["avgcossim"].isna(), "one well: no replicate cosine", ""),
        }, columns=CONSISTENCY_COLUMNS)
    except BenchmarkError as exc:  # NotApplicable, or a screen efaar cannot score (said, not raised)
        out["consistency"] = not_applicable_row(CONSISTENCY_COLUMNS, embedder, str(exc), null=nc.description,
                                                null_size=len(nc.null_perts))
    # magnitude: the null must not be part of the control sample it is measured against
    if null_genes is not None:
        nm = nc
    else:
        nm = control_null(labels, control_label, max(r, 1), reserve=0.5, seed=seed)
    try:
        if r < MIN_MAGNITUDE_WELLS:
            raise NotApplicable(
                f"perturbations have {r} wells (median); efaar's energy distance needs {MIN_MAGNITUDE_WELLS} or more"
            )
        res = pert_signal_magnitude_benchmark(wells, pd.DataFrame({meta_col: nm.labels}), meta_col, nm.null_perts,
                                              str(control_label), max_controls=max_controls,
                                              random_state=np.random.RandomState(seed))
        res = res[res["pert"].astype(str) != str(control_label)]  # controls against their own sample
        out["magnitude"] = pd.DataFrame({
            "embedder": embedder, "perturbation": res["pert"].astype(str), "edist": res["edist"], "pval": res["pval"],
            "null": nm.description, "null_size": len(nm.null_perts), "n_controls": res.attrs.get("n_controls"),
            "note": np.where(res["edist"].isna(), f"fewer than {MIN_MAGNITUDE_WELLS} wells", ""),
        }, columns=MAGNITUDE_COLUMNS)
    except BenchmarkError as exc:  # NotApplicable, or a screen efaar cannot score (said, not raised)
        out["magnitude"] = not_applicable_row(MAGNITUDE_COLUMNS, embedder, str(exc), null=nm.description,
                                              null_size=len(nm.null_perts))
    try:
        res = cluster_benchmark(map_features, map_labels, min_genes=min_genes)
        res = res.assign(embedder=embedder, genes=res["genes"].map(" ".join), note="")
        out["cluster"] = res[CLUSTER_COLUMNS]
    except BenchmarkError as exc:  # NotApplicable, or a screen efaar cannot score (said, not raised)
        out["cluster"] = not_applicable_row(CLUSTER_COLUMNS, embedder, str(exc))
    return out
