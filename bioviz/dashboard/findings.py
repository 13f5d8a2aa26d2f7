"""Sentences for a review meeting: the scorecard's headline, and what the planted truth says.

``headline`` reads the scorecard (any screen): which baseline's recall is a confounder's, and how
the best model compares with the best baseline. ``truth_findings`` reads the per-pair table of a
simulated screen, where the answer is known: which baseline's recall is planted density, and which
model recovers planted-morphology pairs that no baseline recalls.
"""
from __future__ import annotations

import pandas as pd

from ..bench.attribution import embedder_kind

# A baseline whose mean recall falls by more than this when adjusted is called out as scoring
# through that confounder.
DROP_NOTE = 0.05


def headline(card: pd.DataFrame) -> list[str]:
    """Markdown sentences, one per kind of finding, from ``datasets.scorecard``'s table (models
    first, best recall first), so a reviewer sees the story without reading numbers."""
    drop_col = next((c for c in card.columns if c.startswith("drop")), None)
    base = card[card["kind"] == "baseline"]
    models = card[card["kind"] == "model"]
    notes = []
    if drop_col and len(base):
        worst = base.sort_values(drop_col, ascending=False).iloc[0]
        if worst[drop_col] > DROP_NOTE:
            notes.append(f"Baseline **{worst['embedder']}** loses {worst[drop_col]:.2f} recall when "
                         f"{drop_col[5:]}: its score comes from that confounder.")
    if len(models) and len(base):
        best = models.iloc[0]
        top_base = base.sort_values("mean recall", ascending=False).iloc[0]
        notes.append(f"Best model **{best['embedder']}**: mean recall {best['mean recall']:.2f} vs "
                     f"{top_base['mean recall']:.2f} for the best baseline ({top_base['embedder']}).")
    return notes


def truth_findings(pairs: pd.DataFrame, *, threshold: str = "0.05_0.95", source: str = "CORUM",
                   recall: pd.DataFrame | None = None, model_only: pd.DataFrame | None = None) -> list[str]:
    """Markdown sentences; empty when the pairs carry no planted mechanism."""
    threshold = str(threshold).replace("/", "_")  # the dashboard shows 0.05/0.95; files say 0.05_0.95
    flag, also = f"recalled_{threshold}", f"also_recalled_{threshold}"
    if pairs is None or "mechanism" not in pairs or flag not in pairs:
        return []
    p = pairs[(pairs["source"] == source) & (pairs["adjusted_for"].fillna("") == "")]
    if p.empty:
        return []
    notes = []
    rec = p[p[flag].astype(bool)]
    kinds = {e: embedder_kind(e) for e in p["embedder"].unique()}
    # the baseline whose recalled pairs are most concentrated on planted density
    share = (rec.assign(d=rec["mechanism"] == "density").groupby("embedder")["d"].agg(["mean", "size"]))
    share = share[[kinds[e] == "baseline" and n >= 5 for e, n in zip(share.index, share["size"])]]
    if len(share):
        e = share["mean"].idxmax()
        line = (f"**{e}**: {share.loc[e, 'mean']:.0%} of the {source} pairs it recalls are planted "
                f"*density* pairs (cells lost), not shared morphology")
        adj = pairs[(pairs["source"] == source) & (pairs["embedder"] == e) & (pairs["adjusted_for"].fillna("") != "")]
        gone = None
        if recall is not None and "reason" in recall:
            r = recall[(recall["embedder"] == e) & recall["reason"].astype(str).str.startswith("explained by")]
            gone = r["adjusted_for"].iloc[0] if len(r) else None
        if gone:
            line += f"; adjusted for {gone}, nothing is left of it (it is {gone})"
        elif len(adj):
            before = int(((p["embedder"] == e) & p[flag].astype(bool) & (p["mechanism"] == "density")).sum())
            after = int((adj[flag].astype(bool) & (adj["mechanism"] == "density")).sum())
            line += f"; adjusted for {adj['adjusted_for'].iloc[0]}, {before} of them fall to {after}"
        notes.append(line + ".")
    # models: planted-morphology pairs recalled by no baseline
    for e in [e for e, k in kinds.items() if k == "model"]:
        mine = rec[(rec["embedder"] == e) & (rec["mechanism"] == "morphology")]
        if also in mine:
            alone = int((mine[also] == "alone").sum())
            total = int((p[(p["embedder"] == e)]["mechanism"] == "morphology").sum())
            if len(mine):
                line = (f"**{e}** recalls {len(mine)} of {total} planted *morphology* {source} pairs; "
                        f"{alone} of them are recalled by no baseline (open them on *Relationships*)")
                mo = None if model_only is None else model_only[
                    (model_only["embedder"] == e) & (model_only["source"] == source)
                    & (model_only["threshold"].astype(str).str.replace("/", "_") == threshold)]
                if mo is not None and len(mo):
                    m = mo.iloc[0]
                    line += (f". Over all its {source} pairs, {int(m['count'])} are recalled by no baseline; "
                             f"by chance (its map's labels permuted {int(m['n_permutations'])} times) "
                             f"{m['chance_mean']:.1f} would be, 95% range {m['chance_low']:.0f}-{m['chance_high']:.0f}")
                notes.append(line + ".")
    return notes


def matched_null_findings(recall: pd.DataFrame | None, *, threshold: str) -> list[str]:
    """Sentences on the confounder-matched nulls (``dashboard.nulls.findings``): the matched null is
    cited as the main evidence where it and the regression adjustment agree, and each disagreement
    is named. On a simulated screen they speak of the planted pairs of the matched confounder's
    mechanism (planted density pairs under matched:density), else of every pair of the first source."""
    from .nulls import findings, matched_models, matching_adjustment

    if recall is None or not matched_models(recall):
        return []
    notes = []
    planted = "planted" in set(recall["source"])
    # Home states one comparison: the first matched null that has a regression on the same
    # confounders to agree or disagree with (the Recall page shows every null)
    paired = [m for m in matched_models(recall) if matching_adjustment(recall, m, strict=True)]
    for m in (paired or matched_models(recall))[:1]:
        first = m.removeprefix("matched:").split("+")[0]
        mech = first if planted and first in set(recall["mechanism"]) else ""
        one = recall[(recall["null_model"].isin(["all", m]))]
        notes += [n.replace("(planted)", f"(planted {mech} pairs)") if mech else n
                  for n in findings(one, threshold=threshold, mechanism=mech)]
    return notes



# Baselines that know nothing but where a well sits (plate_layout) or nothing at all (random).
LAYOUT_BASELINES = ("plate_layout", "random")


def layout_confounding(recall: pd.DataFrame | None, retrieval: pd.DataFrame | None = None) -> list[str]:
    """Sentences when ``plate_layout`` or ``random`` reaches a model's score within the model's 95% CI
    (baseline score >= the model's CI low end) on any metric: recall of any source and threshold
    (raw, all pairs) or MOA/target retrieval (nearest-neighbour accuracy, mAP) at any level.
    Then the benchmark is confounded with plate layout: these scores cannot tell biology from
    where wells sit."""
    metrics = []  # (metric label, {embedder: (value, ci_low, ci_high)})
    if recall is not None and len(recall):
        r = recall.copy()
        for c in ("adjusted_for", "mechanism"):
            r[c] = r[c].astype(object).where(r[c].notna(), "").astype(str)
        if "null_model" in r:
            r = r[r["null_model"].astype(str) == "all"]
        r = r[(r["adjusted_for"] == "") & (r["mechanism"] == "")]
        for (src, th), g in r.groupby(["source", "threshold"], sort=False):
            th = str(th).replace("_", "/")
            metrics.append((f"recall of {src} at {th}",
                            {e: (v, lo, hi) for e, v, lo, hi in zip(g["embedder"], g["recall"], g["ci_low"], g["ci_high"])}))
    if retrieval is not None and len(retrieval) and "ci_low" in retrieval:
        t = retrieval[retrieval["metric"].isin(["nn_accuracy", "mean_map"])]
        level = t["level"] if "level" in t else pd.Series("well", index=t.index)
        for (lab, lev, met), g in t.assign(level=level).groupby(["label", "level", "metric"], sort=False):
            what = "nearest-neighbour accuracy" if met == "nn_accuracy" else "mAP"
            metrics.append((f"{lab} {what} ({lev} level)",
                            {e: (v, lo, hi) for e, v, lo, hi in zip(g["embedder"], g["value"], g["ci_low"], g["ci_high"])}))
    notes = []
    models = sorted({e for _, d in metrics for e in d if embedder_kind(e) == "model"})
    for m in models:
        for b in LAYOUT_BASELINES:
            hits = [(label, d[b][0], d[m]) for label, d in metrics
                    if m in d and b in d and pd.notna(d[m][1]) and pd.notna(d[b][0]) and d[b][0] >= d[m][1]]
            if not hits:
                continue
            n = sum(1 for _, d in metrics if m in d and b in d)
            label, bv, (mv, lo, hi) = hits[0]
            notes.append(
                f"**{b}** reaches **{m}**'s score within its 95% CI on {len(hits)} of {n} metrics (e.g. {label}: "
                f"{bv:.3f} vs {mv:.3f} [{lo:.3f}, {hi:.3f}]): **the benchmark is confounded with plate layout** "
                + ("(a map of well positions alone scores as well)" if b == "plate_layout"
                   else "(random features score as well, so these metrics cannot separate the model from noise)")
                + ".")
    return notes
