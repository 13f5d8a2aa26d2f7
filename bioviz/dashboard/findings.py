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
            notes.append(f"Baseline **{worst['embedder']}** loses {worst[drop_col]:.2f} recall when adjusted "
                         f"({drop_col[5:]}): its score comes from that confounder.")
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
