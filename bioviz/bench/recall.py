"""Known-relationship recall, number for number the EFAAR benchmark of efaar-benchmarking 1.0.

``efaar_benchmarking.benchmarking.known_relationship_benchmark`` takes the cosine similarity of
every pair of perturbations as the null, places each known pair's cosine in it with
``searchsorted`` (left and right) and counts a pair as recalled when its right rank is <= the
left threshold or its left rank is >= the right threshold.  It sorts the whole null and looks up
each pair with ``DataFrame.loc`` in a Python loop.

Here the same cosine matrix is computed by the same sklearn call (so every value is the same
float, bit for bit, including the asymmetries float32 BLAS kernels leave), but

- recall at a threshold pair needs only two order statistics of the null: a pair is recalled
  iff ``q < s[K_l]`` or ``q > s[K_r - 1]`` where ``s`` is the sorted null, ``K_l`` the largest
  count with ``K_l / N <= l`` and ``K_r`` the smallest with ``K_r / N >= r`` (the same float
  comparison efaar makes).  ``np.partition`` finds them in O(N);
- the upper triangle is compacted inside the cosine matrix's own buffer, so a 17,000-gene
  float64 map needs the 2.3 GB matrix and nothing of that size besides;
- known pairs are gathered with integer indices from the same matrix cells efaar reads.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import lru_cache

import numpy as np
import pandas as pd

from ..errors import BenchmarkError
from ..relationships import SOURCES, filter_relationships, load_relationships

DEFAULT_THRESHOLDS: tuple[tuple[float, float], ...] = ((0.05, 0.95), (0.1, 0.9))
MIN_PERTURBATIONS = 20


# -- input checks ---------------------------------------------------------------------------


def normalize_thresholds(thresholds) -> list[tuple[float, float]]:
    """(left, right) pairs ordered as efaar orders them (min, max), each within [0, 1]."""
    out = []
    for pair in thresholds or DEFAULT_THRESHOLDS:
        if len(pair) != 2:
            raise BenchmarkError(f"threshold pair {pair!r} must have two numbers, e.g. 0.05,0.95")
        lo, hi = float(min(pair)), float(max(pair))
        if not (0.0 <= lo <= 1.0 and 0.0 <= hi <= 1.0):
            raise BenchmarkError(f"threshold pair {pair!r} must lie within [0, 1]")
        out.append((lo, hi))
    return out


def threshold_label(pair: tuple[float, float]) -> str:
    """``0.05_0.95``: the suffix efaar gives its ``recall_<l>_<r>`` column."""
    lo, hi = pair
    return f"{lo}_{hi}"


def null_recall(threshold) -> float:
    """Recall of a map with no information: the share of random pairs beyond both thresholds.

    ``threshold``: a pair, or a label as written (``0.05_0.95``) or shown (``0.05/0.95``)."""
    if isinstance(threshold, str):
        threshold = re.split(r"[/_]", threshold.strip())[:2]
    lo, hi = (float(x) for x in threshold)
    return lo + (1 - hi)


def check_map(features, labels, *, what: str = "map") -> tuple[np.ndarray | pd.DataFrame, np.ndarray]:
    """Reject maps efaar would silently mis-score: too few rows, duplicated labels, NaN/inf."""
    labels = np.asarray(pd.Series(labels).astype(str).to_numpy(), dtype=object)
    n = len(labels)
    if features.shape[0] != n:
        raise BenchmarkError(f"{what}: {features.shape[0]} feature rows but {n} perturbation labels")
    if n < MIN_PERTURBATIONS:
        raise BenchmarkError(
            f"{what} has {n} perturbations; recall needs at least {MIN_PERTURBATIONS} for a meaningful null"
        )
    if features.shape[1] == 0:
        raise BenchmarkError(f"{what} has no numeric feature columns")
    dup = pd.Series(labels)[pd.Series(labels).duplicated()]
    if len(dup):
        raise BenchmarkError(
            f"{what} has duplicated perturbation labels ({len(dup)} rows, e.g. {dup.iloc[0]!r}); "
            "aggregate replicates to one row per perturbation first"
        )
    values = features.to_numpy() if isinstance(features, pd.DataFrame) else np.asarray(features)
    if not np.issubdtype(values.dtype, np.number):
        raise BenchmarkError(f"{what} has non-numeric feature values")
    bad = ~np.isfinite(values)
    if bad.any():
        r, c = np.argwhere(bad)[0]
        raise BenchmarkError(
            f"{what} has {int(bad.sum())} NaN/infinite feature values (first: perturbation {labels[r]!r}, "
            f"feature column {c})"
        )
    return features, labels


# -- the null and its order statistics --------------------------------------------------------


# A map whose cosines are +-1 for most pairs (one direction: a single count, or a second
# column that is constant for nearly every perturbation) has no recall to speak of: its cut points
# sit at -1 and +1 and nothing lies beyond them. Measured on demo seed 11: cell_count with its old
# two counts tied 96.7% of pairs (recall 0.000 reported as a number); with three counts 1.6%.
TIED = 1 - 1e-6
TIED_SHARE = 0.5


def degenerate_map(features, *, sample: int = 2000, seed: int = 0) -> str:
    """An empty string if the map can be scored, else why not ("not applicable: ..."). Uses at most ``sample``
    perturbations (the share of tied pairs is estimated, 2,000 rows = 2 M pairs)."""
    x = np.asarray(features, dtype=np.float64)
    if x.ndim != 2 or x.shape[1] < 2:
        return "not applicable: one feature, so every cosine is ±1"
    if len(x) > sample:
        x = x[np.random.default_rng(seed).choice(len(x), sample, replace=False)]
    norms = np.linalg.norm(x, axis=1)
    x = x[norms > 0] / norms[norms > 0, None]
    if len(x) < 2:
        return "not applicable: every perturbation sits at the controls' centre"
    c = compact_upper(x @ x.T)
    share = float((np.abs(c) >= TIED).mean())
    if share > TIED_SHARE:
        return f"not applicable: {share:.0%} of pairs tie at cosine ±1 (one direction in practice)"
    return ""


def cosine_matrix(features) -> np.ndarray:
    """The matrix efaar computes: ``sklearn.metrics.pairwise.cosine_similarity(X, X)``."""
    from sklearn.metrics.pairwise import cosine_similarity

    return cosine_similarity(features, features)


def compact_upper(matrix: np.ndarray) -> np.ndarray:
    """Overwrite ``matrix`` so its buffer starts with every ``matrix[i, j]``, ``i < j``; return that view.

    The values are a multiset (order statistics do not care about order), moved forward within
    the buffer so no second N-sized array is needed.  Moves never overtake unread cells: the
    destination of row i starts before row i's own cells.
    """
    n = matrix.shape[0]
    if matrix.flags.c_contiguous:
        flat = matrix.reshape(-1)
        pos = 0
        for i in range(n - 1):
            length = n - i - 1
            flat[pos : pos + length] = flat[i * n + i + 1 : (i + 1) * n]
            pos += length
    elif matrix.flags.f_contiguous:
        # column j holds the upper-triangle cells matrix[:j, j] at its start
        flat = matrix.T.reshape(-1)
        pos = 0
        for j in range(1, n):
            flat[pos : pos + j] = flat[j * n : j * n + j]
            pos += j
    else:  # pragma: no cover - sklearn always returns a contiguous matrix
        return matrix[np.triu_indices(n, k=1)]
    return flat[: n * (n - 1) // 2]


def _k_left(lo: float, n: int) -> int:
    """Largest count c in [-1, n] with c / n <= lo, evaluated as efaar's float64 division."""
    c = min(n, int(np.floor(lo * n)))
    while c < n and (c + 1) / n <= lo:
        c += 1
    while c >= 0 and c / n > lo:
        c -= 1
    return c


def _k_right(hi: float, n: int) -> int:
    """Smallest count c in [0, n + 1] with c / n >= hi."""
    c = max(0, int(np.ceil(hi * n)))
    while c > 0 and (c - 1) / n >= hi:
        c -= 1
    while c <= n and c / n < hi:
        c += 1
    return c


@dataclass
class NullCuts:
    """What the null contributes to recall: its size and, per threshold pair, two cut values."""

    size: int
    thresholds: list[tuple[float, float]]
    # per pair: (low_cut or None, high_cut or None, always_low, always_high)
    cuts: list[tuple] = field(default_factory=list)

    def recalled(self, query: np.ndarray) -> list[np.ndarray]:
        """One boolean array per threshold pair: efaar's recalled condition, pair by pair."""
        out = []
        for low_cut, high_cut, always_low, always_high in self.cuts:
            if always_low or always_high:
                out.append(np.ones(len(query), dtype=bool))
                continue
            flag = np.zeros(len(query), dtype=bool)
            if low_cut is not None:
                flag |= query < low_cut  # right rank <= l  <=>  fewer than K_l+1 null values <= q
            if high_cut is not None:
                flag |= query > high_cut  # left rank >= r  <=>  at least K_r null values < q
            out.append(flag)
        return out


def null_cuts(null: np.ndarray, thresholds) -> NullCuts:
    """Order statistics of ``null`` for every threshold pair; partitions ``null`` in place."""
    thresholds = normalize_thresholds(thresholds)
    n = int(null.shape[0])
    if n == 0:
        raise BenchmarkError("the null distribution is empty (a map needs at least two perturbations)")
    plan = []
    kth = set()
    for lo, hi in thresholds:
        kl, kr = _k_left(lo, n), _k_right(hi, n)
        low_idx = kl if 0 <= kl < n else None
        high_idx = kr - 1 if 1 <= kr <= n else None
        plan.append((kl, kr, low_idx, high_idx))
        kth.update(i for i in (low_idx, high_idx) if i is not None)
    value = select_ranks(null, sorted(kth))
    cuts = []
    for kl, kr, low_idx, high_idx in plan:
        cuts.append(
            (
                value[low_idx] if low_idx is not None else None,
                value[high_idx] if high_idx is not None else None,
                kl >= n,  # every q has right rank <= 1 <= l
                kr <= 0,  # every q has left rank >= 0 >= r
            )
        )
    return NullCuts(size=n, thresholds=thresholds, cuts=cuts)


def select_ranks(null: np.ndarray, ranks: list[int], sample_size: int = 200_000) -> dict:
    """``{k: k-th smallest value of null}`` (0-based), exactly; may reorder ``null``.

    Small nulls: ``np.partition``.  Large ones: a sorted random sample brackets each group of
    nearby ranks; one pass counts the values below the bracket and keeps those inside it (a few
    percent of the null), and only that remainder is partitioned.  If the sample misjudged a
    bracket (the ranks fall outside it) the exact fallback is the full partition.
    """
    n = len(null)
    if not ranks:
        return {}
    if n <= 4 * sample_size:
        null.partition(ranks)
        return {k: null[k] for k in ranks}
    rng = np.random.default_rng(0)
    sample = np.sort(null[rng.integers(0, n, sample_size)])
    groups: list[list[int]] = []
    for k in ranks:  # ranks within 20% of the null of each other share one bracket
        if groups and k - groups[-1][0] <= 0.2 * n:
            groups[-1].append(k)
        else:
            groups.append([k])
    out = {}
    for g in groups:
        lo_q, hi_q = g[0] / n, g[-1] / n
        margin = int(8 * np.sqrt(sample_size * max(lo_q * (1 - lo_q), hi_q * (1 - hi_q), 1e-4))) + 20
        i_lo = int(np.floor(lo_q * sample_size)) - margin
        i_hi = int(np.ceil(hi_q * sample_size)) + margin
        a = sample[i_lo] if i_lo > 0 else -np.inf
        b = sample[i_hi] if i_hi < sample_size else np.inf
        below = int(np.count_nonzero(null < a))
        inside = null[(null >= a) & (null <= b)]
        if not (below <= g[0] and g[-1] < below + len(inside)):
            null.partition(ranks)
            return {k: null[k] for k in ranks}
        inside.partition([k - below for k in g])
        out.update({k: inside[k - below] for k in g})
    return out


def null_ranks(null: np.ndarray, query: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(count(null < q), count(null <= q))`` for every query, without sorting the null.

    One pass of ``searchsorted`` of the null into the (few) sorted queries: O(N log m).
    """
    query = np.asarray(query)
    if len(query) == 0:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    order = np.argsort(query, kind="stable")
    qs = query[order]
    m = len(qs)
    lt = np.zeros(m + 1, dtype=np.int64)
    le = np.zeros(m + 1, dtype=np.int64)
    step = 1 << 22
    for a in range(0, len(null), step):
        chunk = null[a : a + step]
        # v < q_j  <=>  searchsorted(qs, v, 'right') <= j
        lt += np.bincount(np.searchsorted(qs, chunk, side="right"), minlength=m + 1)
        # v <= q_j <=>  searchsorted(qs, v, 'left') <= j
        le += np.bincount(np.searchsorted(qs, chunk, side="left"), minlength=m + 1)
    count_lt = np.empty(m, dtype=np.int64)
    count_le = np.empty(m, dtype=np.int64)
    count_lt[order] = np.cumsum(lt)[:m]
    count_le[order] = np.cumsum(le)[:m]
    return count_lt, count_le


# -- relationships ---------------------------------------------------------------------------


def relationship_tables(sources=None, relationships=None) -> dict[str, pd.DataFrame]:
    """``{source name: filtered entity1/entity2 table}`` from public sources and/or user tables."""
    tables: dict[str, pd.DataFrame] = {}
    if relationships is not None:
        items = relationships.items() if isinstance(relationships, dict) else [("custom", relationships)]
        for name, df in items:
            if not {"entity1", "entity2"} <= set(df.columns):
                raise BenchmarkError(f"relationship table {name!r} needs columns entity1,entity2")
            tables[name] = filter_relationships(df[["entity1", "entity2"]].copy()).reset_index(drop=True)
    if sources is None and relationships is None:
        sources = SOURCES
    for s in sources or ():
        if s not in SOURCES:
            raise BenchmarkError(f"unknown relationship source {s!r}; known: {', '.join(SOURCES)}")
        tables[s] = load_relationships(s)
    return tables


@lru_cache(maxsize=None)
def _source_codes(source: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    return _codes(load_relationships(source))


def _codes(rels: pd.DataFrame) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(gene vocabulary, entity1 codes, entity2 codes): the table once as integers."""
    codes, uniques = pd.factorize(pd.concat([rels.entity1, rels.entity2], ignore_index=True))
    n = len(rels)
    return np.asarray(uniques, dtype=object), codes[:n], codes[n:]


def match_pairs(rels: pd.DataFrame, index: pd.Index, codes=None) -> tuple[pd.DataFrame, np.ndarray, np.ndarray]:
    """Pairs with both genes in the map (efaar's ``isin`` filter, same order), and their map rows.

    The table's genes are looked up in the map once per distinct gene, not once per pair.
    """
    vocab, c1, c2 = codes if codes is not None else _codes(rels)
    pos = index.get_indexer(vocab)
    i, j = pos[c1], pos[c2]
    keep = (i >= 0) & (j >= 0)
    return rels[keep].reset_index(drop=True), i[keep], j[keep]


def explain_no_match(source: str, rels: pd.DataFrame, labels) -> str:
    """Why a source matched no pair: no label is one of its genes, or genes never pair up."""
    genes = pd.Index(pd.unique(np.concatenate([rels.entity1.to_numpy(), rels.entity2.to_numpy()])))
    hits = pd.Index(labels).intersection(genes)
    if len(hits) == 0:
        ex = ", ".join(repr(x) for x in list(labels)[:3])
        return (
            f"{source}: no known pair has both genes in the map - none of the {len(labels)} perturbation "
            f"labels is a gene symbol in {source} (e.g. {ex})"
        )
    return (
        f"{source}: no known pair has both genes in the map - {len(hits)} of the {len(labels)} labels are "
        f"{source} genes, but no two of them are related in {source}"
    )


# -- the benchmark ---------------------------------------------------------------------------


@dataclass
class RecallRun:
    """Everything one map gives: the summary table, per-pair values and the null's cut values."""

    table: pd.DataFrame  # source, null_distribution_size, query_distribution_size, recall_<l>_<r>...
    pairs: dict[str, pd.DataFrame]  # per source: entity1, entity2, cosine, count_lt, count_le, recalled_*
    cuts: NullCuts
    skipped: dict[str, str]  # source -> why it matched no pair


def known_relationship_recall(
    features,
    labels,
    *,
    sources=None,
    relationships=None,
    thresholds=DEFAULT_THRESHOLDS,
    with_ranks: bool = False,
    what: str = "map",
) -> RecallRun:
    """Recall of known relationships in a map (one row per perturbation), as efaar computes it.

    ``features``: array or DataFrame of numeric features (passed unchanged to sklearn, as efaar
    passes its DataFrame, so the cosines are the same floats); ``labels``: perturbation names.
    ``sources``: public tables (default all five unless ``relationships`` is given);
    ``relationships``: a DataFrame or ``{name: DataFrame}`` of entity1/entity2 pairs.
    ``with_ranks``: also give each pair's null counts (for percentiles; O(N log m) more).
    Raises BenchmarkError when no source matches any pair, saying why.
    """
    features, labels = check_map(features, labels, what=what)
    thresholds = normalize_thresholds(thresholds)
    tables = relationship_tables(sources, relationships)
    custom = set(relationships) if isinstance(relationships, dict) else ({"custom"} if relationships is not None else set())
    index = pd.Index(labels)

    matched = {}
    skipped = {}
    for name, rels in tables.items():
        codes = _source_codes(name) if name in SOURCES and name not in custom else None
        sub, i, j = match_pairs(rels, index, codes)
        if len(sub) == 0:
            skipped[name] = explain_no_match(name, rels, labels)
        else:
            matched[name] = (sub, i, j)
    if not matched:
        raise BenchmarkError("no known relationship matched: " + "; ".join(skipped.values()))

    matrix = cosine_matrix(features)
    # efaar reads cossim_matrix.loc[e1, e2]: the same cell, which float32 kernels need not
    # make equal to [e2, e1]
    queries = {name: matrix[i, j] for name, (sub, i, j) in matched.items()}
    null = compact_upper(matrix)
    del matrix
    cuts = null_cuts(null, thresholds)

    rows = []
    pairs = {}
    for name, (sub, _, _) in matched.items():
        q = queries[name]
        flags = cuts.recalled(q)
        row = {"source": name, "null_distribution_size": cuts.size, "query_distribution_size": len(q)}
        pair_df = sub.copy()
        pair_df["cosine"] = q
        for pair, flag in zip(thresholds, flags):
            row[f"recall_{threshold_label(pair)}"] = int(flag.sum()) / len(q)
            pair_df[f"recalled_{threshold_label(pair)}"] = flag
        rows.append(row)
        pairs[name] = pair_df
    if with_ranks:
        for name, pair_df in pairs.items():
            lt, le = null_ranks(null, pair_df["cosine"].to_numpy())
            pair_df["count_lt"] = lt
            pair_df["count_le"] = le
            pair_df["percentile"] = (lt + le) / (2.0 * cuts.size)
    return RecallRun(table=pd.DataFrame(rows), pairs=pairs, cuts=cuts, skipped=skipped)


def recall_table(features, labels, **kwargs) -> pd.DataFrame:
    """Just efaar's table: source, null/query sizes, one recall column per threshold pair."""
    return known_relationship_recall(features, labels, **kwargs).table
