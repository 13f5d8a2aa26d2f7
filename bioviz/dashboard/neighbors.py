"""A perturbation's own signal first, then its nearest neighbours in every map (Relationships).

JUMP's match tables show a gene's phenotypic activity beside its matches, so a user is "confident
the gene itself has a phenotype" before trusting a match: a gene whose replicates are not retrieved
against controls has neighbours that are noise. :func:`query_activity` reads that from the
benchmark's ``activity.csv`` (copairs mAP against controls and between replicates, FDR-corrected
p). :func:`top_k_similar` is efaar's top-k lookup on a map built with the benchmark's recipe
(``bench.results.map_recipe``), and :func:`neighbours_table` does it for every map at once, with
the known relationships (every source of ``pairs.parquet``) marked.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from ..bench.attribution import embedder_kind, models_first
from .datasets import feature_columns

ACTIVITY_COLUMNS = {
    "activity mAP": "mean average precision of retrieving the perturbation's replicate wells against "
                    "control wells (copairs); 1 = its wells always rank before every control",
    "activity p (FDR)": "permutation p-value of the activity mAP, Benjamini-Hochberg corrected over perturbations",
    "active": "corrected p < 0.05: the perturbation has a phenotype this map can see",
    "consistency mAP": "mean average precision of retrieving the replicates against other perturbations' wells",
    "consistency p (FDR)": "permutation p-value of the consistency mAP, FDR-corrected",
    "consistent": "corrected p < 0.05: the replicates agree with each other more than with other perturbations",
    "efaar consistency": "efaar's perturbation-signal consistency: mean cosine between the perturbation's replicate "
                         "wells (consistency.csv)",
    "efaar consistency p": "efaar's p-value of that mean cosine against its null (controls or the genes given with "
                           "--null-genes; the null is named in consistency.csv)",
}


def query_activity(activity: pd.DataFrame | None, perturbation: str, consistency: pd.DataFrame | None = None
                   ) -> pd.DataFrame:
    """One row per embedder (models first): the perturbation's activity and consistency mAP and
    corrected p from ``activity.csv``, and efaar's replicate consistency (mean cosine, p) from
    ``consistency.csv`` when given. Empty when the table or the perturbation is absent."""
    cols = ["embedder", "kind", *ACTIVITY_COLUMNS]
    if activity is None or activity.empty:
        return pd.DataFrame(columns=cols)
    a = activity[activity["perturbation"].astype(str).str.upper() == str(perturbation).upper()]
    if a.empty:
        return pd.DataFrame(columns=cols)
    rows = []
    for emb in models_first(a["embedder"].unique()):
        e = a[a["embedder"] == emb]
        row = {"embedder": emb, "kind": embedder_kind(emb)}
        for metric, prefix, flag in (("activity", "activity", "active"), ("consistency", "consistency", "consistent")):
            m = e[e["metric"] == metric]
            row[f"{prefix} mAP"] = float(m["mean_average_precision"].iloc[0]) if len(m) else np.nan
            row[f"{prefix} p (FDR)"] = float(m["corrected_p_value"].iloc[0]) if len(m) else np.nan
            row[flag] = bool(m["below_corrected_p"].iloc[0]) if len(m) else None
        row["efaar consistency"], row["efaar consistency p"] = np.nan, np.nan
        if consistency is not None and len(consistency):
            c = consistency[(consistency["embedder"] == emb)
                            & (consistency["perturbation"].astype(str).str.upper() == str(perturbation).upper())]
            if len(c):
                row["efaar consistency"] = float(c["avgcossim"].iloc[0])
                row["efaar consistency p"] = float(c["pval"].iloc[0])
        rows.append(row)
    out = pd.DataFrame(rows, columns=cols)
    if consistency is None or out[["efaar consistency", "efaar consistency p"]].isna().all(axis=None):
        out = out.drop(columns=["efaar consistency", "efaar consistency p"])  # not computed for this screen
    return out


def activity_sentence(table: pd.DataFrame, perturbation: str) -> str:
    """One line on whether the query has a phenotype, by how many maps see it."""
    if table.empty:
        return f"{perturbation} has no activity score (not in activity.csv; controls have none)."
    active = table[table["active"] == True]  # noqa: E712 (None = not scored)
    n = int(table["active"].notna().sum())
    models = [e for e in active["embedder"] if embedder_kind(e) == "model"]
    if not len(active):
        return (f"**{perturbation}** is not distinguishable from controls in any of the {n} maps (corrected p ≥ 0.05): "
                "read its neighbours below with care: they may be noise.")
    if not models:
        return (f"**{perturbation}** is active (corrected p < 0.05) in {len(active)} of {n} maps, all of them "
                f"baselines ({', '.join(active['embedder'])}): it has a phenotype, but no model separates it from "
                "controls, so read the models' neighbours with care (a ★ partner among them is still evidence).")
    return (f"**{perturbation}** is active (corrected p < 0.05) in {len(active)} of {n} maps, including the "
            f"model(s) {', '.join(models)}: its phenotype is real, so its neighbours are worth reading.")


def top_k_similar(profiles: pd.DataFrame, query: str, k: int = 10, control_label: str | None = None) -> pd.DataFrame:
    """The ``k`` perturbations most cosine-similar to ``query`` in one map (one row per
    perturbation, feature columns f0..), most similar first; ties broken by name. Controls (and
    the query itself) are left out. Columns: rank, perturbation, cosine. Empty when the query is
    not in the map."""
    names = profiles["perturbation"].astype(str).to_numpy()
    up = np.char.upper(names.astype(str))
    hit = np.flatnonzero(up == str(query).upper())
    if not len(hit):
        return pd.DataFrame(columns=["rank", "perturbation", "cosine"])
    x = profiles[feature_columns(profiles)].to_numpy(np.float64)
    norms = np.linalg.norm(x, axis=1)
    norms[norms == 0] = 1.0
    v = x / norms[:, None]
    sims = v @ v[hit[0]]
    keep = up != up[hit[0]]
    if control_label is not None:
        keep &= names != str(control_label)
    idx = np.flatnonzero(keep)
    # stable: sort by name first, then by -cosine (mergesort keeps the name order on ties)
    idx = idx[np.argsort(names[idx], kind="mergesort")]
    idx = idx[np.argsort(-sims[idx], kind="mergesort")][:k]
    return pd.DataFrame({"rank": np.arange(1, len(idx) + 1), "perturbation": names[idx], "cosine": sims[idx]})


def known_partners(pairs: pd.DataFrame | None, query: str, truth_rel: pd.DataFrame | None = None) -> dict[str, str]:
    """{partner (upper-case): '+'-joined sources} for every known relationship of ``query``
    (every source of pairs.parquet, and the planted truth when given)."""
    out: dict[str, set] = {}
    q = str(query).upper()
    frames = []
    if pairs is not None and len(pairs):
        frames.append(pairs[["source", "entity1", "entity2"]].drop_duplicates())
    if truth_rel is not None and {"entity1", "entity2"} <= set(truth_rel.columns):
        frames.append(truth_rel[["entity1", "entity2"]].assign(source="planted").drop_duplicates())
    for f in frames:
        e1, e2 = f["entity1"].astype(str).str.upper(), f["entity2"].astype(str).str.upper()
        for other, src in zip(pd.concat([e2[e1 == q], e1[e2 == q]]),
                              pd.concat([f["source"][e1 == q], f["source"][e2 == q]])):
            out.setdefault(other, set()).add(str(src))
    return {k: "+".join(sorted(v)) for k, v in out.items()}


def neighbours_table(maps: dict[str, pd.DataFrame], query: str, k: int = 10, *, control_label: str | None = None,
                     known: dict[str, str] | None = None) -> pd.DataFrame:
    """Top-``k`` neighbours of ``query`` in every map (``{embedder: profiles}``), long form:
    embedder, kind, rank, perturbation, cosine, known (the sources that relate it to the query, ''
    when none). Models first."""
    known = known or {}
    parts = []
    for emb in models_first(maps):
        t = top_k_similar(maps[emb], query, k, control_label)
        if t.empty:
            continue
        t.insert(0, "kind", embedder_kind(emb))
        t.insert(0, "embedder", emb)
        t["known"] = [known.get(str(p).upper(), "") for p in t["perturbation"]]
        parts.append(t)
    if not parts:
        return pd.DataFrame(columns=["embedder", "kind", "rank", "perturbation", "cosine", "known"])
    return pd.concat(parts, ignore_index=True)


def neighbours_wide(long: pd.DataFrame) -> pd.DataFrame:
    """rank x embedder grid of neighbour names, a known partner marked with ★, for a compact view."""
    if long.empty:
        return pd.DataFrame()
    lab = long["perturbation"].astype(str) + np.where(long["known"] != "", " ★", "")
    w = long.assign(label=lab).pivot(index="rank", columns="embedder", values="label")
    w = w[[e for e in models_first(long["embedder"].unique()) if e in w.columns]]
    w.columns.name = None
    return w.reset_index()
