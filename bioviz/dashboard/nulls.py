"""The three ways bioviz judges a known pair, side by side: against all pairs (efaar's null), after
regressing a confounder out (``bench.adjust``), and against a confounder-matched null
(``bench.matched_null``). Pure functions of the results tables, shared by the Recall page, Home's
findings, the Relationships drill-down and the report."""
from __future__ import annotations

import numpy as np
import pandas as pd

from ..bench.attribution import embedder_kind, models_first
from ..bench.recall import null_recall

ALL_PAIRS = "all pairs"
# Two estimates of "recall beyond the confounder" agree when they differ by at most this much
# (the width of the 'within 0.05 of chance' bar the calibration tests use).
AGREE = 0.05


def matched_models(recall: pd.DataFrame) -> list[str]:
    """The matched null models present (``matched:density``, ...), in the order written."""
    if recall is None or "null_model" not in recall:
        return []
    return [m for m in dict.fromkeys(recall["null_model"].astype(str)) if m.startswith("matched:")]


def _confounders(label: str) -> list[str]:
    return label.removeprefix("matched:").split("+") if label.startswith("matched:") else []


def matching_adjustment(recall: pd.DataFrame, matched: str, *, strict: bool = False) -> str | None:
    """The regression adjustment that answers the same question as ``matched`` (same confounders),
    else (unless ``strict``) the first adjustment present, else None."""
    adj = [a for a in dict.fromkeys(recall["adjusted_for"].astype(str)) if a]
    want = _confounders(matched)
    same = [a for a in adj if sorted(a.split("+")) == sorted(want)]
    return (same or ([] if strict else adj) or [None])[0]


def null_model_table(recall: pd.DataFrame, *, threshold: str, source: str, matched: str,
                     mechanism: str = "", adjusted: str | None = None) -> pd.DataFrame:
    """One row per embedder and way of judging: ``embedder, kind, null, recall, ci_low, ci_high,
    reason`` with ``null`` one of 'all pairs', 'adjusted for <x>' and the matched label. ``recall``:
    recall.csv with every null model (``read_table(..., null_model=None)``); thresholds as written
    (0.05_0.95) or shown (0.05/0.95)."""
    r = recall.copy()
    th = str(threshold).replace("/", "_")
    r = r[(r["threshold"].astype(str).str.replace("/", "_") == th) & (r["source"] == source)
          & (r["mechanism"].astype(str) == mechanism)]
    if "null_model" not in r:
        r["null_model"] = "all"
    if "reason" not in r:
        r["reason"] = ""
    adjusted = matching_adjustment(recall, matched) if adjusted is None else adjusted
    parts = [r[(r["null_model"] == "all") & (r["adjusted_for"] == "")].assign(null=ALL_PAIRS)]
    if adjusted:
        parts.append(r[(r["null_model"] == "all") & (r["adjusted_for"] == adjusted)].assign(null=f"adjusted for {adjusted}"))
    parts.append(r[(r["null_model"] == matched) & (r["adjusted_for"] == "")].assign(null=matched))
    out = pd.concat(parts, ignore_index=True)
    out["kind"] = [embedder_kind(e) for e in out["embedder"]]
    order = {e: k for k, e in enumerate(models_first(out["embedder"]))}
    nulls = {n: k for k, n in enumerate(dict.fromkeys(out["null"]))}
    out = out.sort_values(["embedder", "null"], key=lambda s: s.map(order) if s.name == "embedder" else s.map(nulls))
    cols = ["embedder", "kind", "null", "recall", "ci_low", "ci_high", "reason", "n_pairs"]
    return out[[c for c in cols if c in out]].reset_index(drop=True)


def compare_nulls(table: pd.DataFrame, chance: float = 0.10) -> pd.DataFrame:
    """Per embedder: recall under each null as columns (``all pairs``, ``adjusted``, ``matched``),
    and ``agree``: True when the adjustment and the matched null differ by <= 0.05, or both are
    within 0.05 of ``chance`` or below (both say nothing is left); NaN when one has no number."""
    rows = []
    for emb, g in table.groupby("embedder", sort=False):
        by = dict(zip(g["null"], g["recall"]))
        adj = next((v for k, v in by.items() if k.startswith("adjusted for")), np.nan)
        mat = next((v for k, v in by.items() if k.startswith("matched:")), np.nan)
        agree = np.nan if np.isnan(adj) or np.isnan(mat) else bool(
            abs(adj - mat) <= AGREE or max(adj, mat) <= chance + AGREE)  # both: nothing beyond chance
        rows.append(dict(embedder=emb, kind=embedder_kind(emb), all_pairs=by.get(ALL_PAIRS, np.nan), adjusted=adj,
                         matched=mat, agree=agree))
    return pd.DataFrame(rows, columns=["embedder", "kind", "all_pairs", "adjusted", "matched", "agree"])


def findings(recall: pd.DataFrame, *, threshold: str, source: str | None = None, mechanism: str = "") -> list[str]:
    """Markdown sentences for Home and the report: where the matched null and the regression agree,
    the matched null is the evidence cited (it assumes nothing about the confounder's effect);
    where they disagree, say so with both numbers."""
    models = matched_models(recall)
    if not models:
        return []
    if source is None:
        srcs = list(dict.fromkeys(recall["source"]))
        source = "planted" if "planted" in srcs else (srcs[0] if srcs else None)
    if source is None:
        return []
    chance = null_recall(str(threshold))
    notes = []
    for matched in models:
        # agreement is only judged against the regression on the same confounders
        same = matching_adjustment(recall, matched, strict=True) or ""
        t = null_model_table(recall, threshold=threshold, source=source, matched=matched, mechanism=mechanism,
                             adjusted=same)
        reasons = t[(t["null"] == matched) & (t["reason"].astype(str) != "")]["reason"] if "reason" in t else []
        if len(reasons):
            notes.append(f"No {matched} null for {source}: {reasons.iloc[0]}.")
            continue
        cmp_ = compare_nulls(t, chance)
        if cmp_.empty:
            continue
        adj_name = next((n for n in t["null"] if n.startswith("adjusted for")), None)
        agree = cmp_[cmp_["agree"] == True]  # noqa: E712 - NaN means 'cannot tell'
        disagree = cmp_[cmp_["agree"] == False]  # noqa: E712
        for _, r in agree.iterrows():
            drop = r["all_pairs"] - r["matched"]
            if drop > AGREE:
                notes.append(f"**{r['embedder']}** ({source}): {r['all_pairs']:.2f} against all pairs, "
                             f"**{r['matched']:.2f} under the {matched} null** (chance {chance:.2f}); "
                             f"{adj_name} agrees ({r['adjusted']:.2f}).")
            elif r["kind"] == "model" or r["all_pairs"] > chance + AGREE:
                notes.append(f"**{r['embedder']}** ({source}) keeps its recall beyond the confounder: "
                             f"{r['all_pairs']:.2f} against all pairs, **{r['matched']:.2f} under the {matched} "
                             f"null**; {adj_name} agrees ({r['adjusted']:.2f}).")
        for _, r in disagree.iterrows():
            notes.append(f"**{r['embedder']}** ({source}): the {matched} null ({r['matched']:.2f}) and "
                         f"{adj_name} ({r['adjusted']:.2f}) disagree by {abs(r['matched'] - r['adjusted']):.2f}; "
                         "the regression assumes a linear, separable effect, the matched null does not, so "
                         "neither number alone settles it.")
        if adj_name is None:
            for _, r in cmp_.iterrows():
                if abs(r["all_pairs"] - r["matched"]) > AGREE:
                    notes.append(f"**{r['embedder']}** ({source}): {r['all_pairs']:.2f} against all pairs, "
                                 f"**{r['matched']:.2f} under the {matched} null** (chance {chance:.2f}).")
    return notes


# -- one pair -----------------------------------------------------------------------------------


def pair_nulls(pairs: pd.DataFrame, source: str, a: str, b: str) -> pd.DataFrame:
    """A known pair's percentile per embedder and null model (pairs.parquet with every null model,
    as ``datasets.normalize_pairs`` shapes it: percentiles in percent):
    ``embedder, null_model, cosine, percentile (percent), cell``."""
    if pairs is None or "null_model" not in pairs:
        return pd.DataFrame(columns=["embedder", "null_model", "cosine", "percentile", "cell"])
    key = {a.upper(), b.upper()}
    p = pairs[(pairs["source"] == source) & (pairs["adjusted_for"].astype(str) == "")]
    p = p[[{str(x).upper(), str(y).upper()} == key for x, y in zip(p["entity1"], p["entity2"])]]
    out = p[["embedder", "null_model", "cosine", "percentile"]].copy()
    out["cell"] = p["null_cell"].astype(str).to_numpy() if "null_cell" in p else ""
    return out.reset_index(drop=True)


def matched_cell(profiles: pd.DataFrame, obs: pd.DataFrame, confounders: pd.DataFrame | None, control,
                 matched: str, bins: dict, a: str, b: str, *, max_pairs: int = 200_000, seed: int = 0) -> dict | None:
    """The null cosines of the matched cell pair (a, b) falls in, from the map ``profiles``
    (perturbation + features, the benchmark's recipe) and the bins summary.json recorded:
    ``{values, value, percentile (percent), cell, size}``; None when a or b is not in the map or a
    confounder cannot be matched. Maps with more pairs than ``max_pairs`` use a random sample of
    pairs (the histogram's shape, not the benchmark's number)."""
    from ..bench.maps import feature_columns
    from ..bench.matched_null import null_cells, perturbation_levels

    p = profiles[profiles["perturbation"].astype(str) != str(control)].reset_index(drop=True)
    labels = p["perturbation"].astype(str).to_numpy()
    idx = {g.upper(): k for k, g in enumerate(labels)}
    if a.upper() not in idx or b.upper() not in idx:
        return None
    spec = _confounders(matched)
    levels, skipped = perturbation_levels(obs, confounders, control, labels, spec)
    if any(c not in levels for c in spec):
        return None
    cells = null_cells(levels, spec, bins)
    x = p[feature_columns(p, exclude=("perturbation",))].to_numpy(np.float64)
    x = x / (np.linalg.norm(x, axis=1, keepdims=True) + 1e-12)
    i, j = sorted((idx[a.upper()], idx[b.upper()]))
    target = int(cells.pair_codes(np.array([i]), np.array([j]))[0])
    n = len(labels)
    if n * (n - 1) // 2 <= max_pairs:
        ii, jj = np.triu_indices(n, 1)
    else:
        rng = np.random.default_rng(seed)
        ii, jj = rng.integers(0, n, max_pairs), rng.integers(0, n, max_pairs)
        keep = ii < jj
        ii, jj = ii[keep], jj[keep]
    m = cells.pair_codes(ii, jj) == target
    values = np.einsum("ij,ij->i", x[ii[m]], x[jj[m]])
    value = float(x[i] @ x[j])
    srt = np.sort(values)
    pct = 100.0 * (np.searchsorted(srt, value, "left") + np.searchsorted(srt, value, "right")) / (2.0 * max(len(srt), 1))
    return dict(values=values, value=value, percentile=float(pct) if len(srt) else float("nan"),
                cell=cells.describe(target), size=int(m.sum()))
