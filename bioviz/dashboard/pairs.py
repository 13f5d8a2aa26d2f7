"""The Relationships drill-down: a gene's known pairs, how each embedder places them, example wells."""
from __future__ import annotations

import re

import numpy as np
import pandas as pd

from ..bench.attribution import attribution_baselines, models_first
from ..bench.efaar_suite import label_positions
from .datasets import embedder_kind, feature_columns


def parse_query(text: str | None, known=None) -> list[str]:
    """'TP53' -> ['TP53']; 'TP53 MDM2', 'TP53,MDM2', 'TP53/MDM2' -> a pair.

    A hyphen belongs to the symbol: HLA-A and NKX2-1 are single genes.  'TP53-MDM2' is read as a
    pair only when ``known`` (the symbols of the screen or table) lacks the whole token but has
    both halves.  Matching is case-insensitive later.
    """
    if not text:
        return []
    tokens = [t for t in re.split(r"[\s,;|/]+", text.strip()) if t]
    if len(tokens) == 1 and "-" in tokens[0] and known is not None:
        up = {str(k).upper() for k in known}
        tok = tokens[0]
        if tok.upper() not in up:
            for i in [m.start() for m in re.finditer("-", tok)]:
                a, b = tok[:i], tok[i + 1:]
                if a.upper() in up and b.upper() in up:
                    return [a, b]
    return tokens[:2]


def relationship_table(pairs: pd.DataFrame, source: str, query: str | None, recalled_col: str | None,
                       truth_rel: pd.DataFrame | None = None, *, kinds: dict | None = None) -> pd.DataFrame:
    """Known pairs of ``source`` involving the queried gene (or the queried pair), one row per pair:
    each embedder's percentile, which models and which baselines recall it.  Baselines are the
    attribution kinds (``baseline`` and ``handcrafted``: morphology, CellProfiler profiles), as in the
    benchmark's ``also_`` columns; ``kinds``: the kinds the benchmark recorded (summary.json)."""
    p = pairs[pairs["source"] == source]
    genes = [g.upper() for g in parse_query(query, known=pd.concat([p["entity1"], p["entity2"]]).unique())]
    e1 = p["entity1"].str.upper()
    e2 = p["entity2"].str.upper()
    if query and query.strip().upper() in set(e1) | set(e2):  # a compound id such as BRD-K92301463 is one name
        genes = [query.strip().upper()]
    if len(genes) == 1:
        p = p[(e1 == genes[0]) | (e2 == genes[0])]
    elif len(genes) == 2:
        p = p[((e1 == genes[0]) & (e2 == genes[1])) | ((e1 == genes[1]) & (e2 == genes[0]))]
    if p.empty:
        return pd.DataFrame(columns=["entity1", "entity2"])
    wide = p.pivot_table(index=["entity1", "entity2"], columns="embedder", values="percentile").round(1)
    order = models_first(wide.columns)
    wide = wide[order].add_suffix(" pct")
    out = wide.reset_index()
    if recalled_col and recalled_col in p.columns:
        hits = p[p[recalled_col].astype(bool)]
        by = hits.groupby(["entity1", "entity2"])["embedder"].apply(list)
        models = by.apply(lambda es: ", ".join(sorted(e for e in es if embedder_kind(e, kinds) == "model")))
        bases = by.apply(lambda es: ", ".join(sorted(attribution_baselines(es, kinds))))
        # one reindex, not a MultiIndex look-up per row (0.2 s a rerun over 5,000 pairs)
        key = pd.MultiIndex.from_arrays([out["entity1"], out["entity2"]])
        out["recalled by models"] = models.reindex(key).fillna("").to_numpy()
        out["baselines that also recall it"] = bases.reindex(key).fillna("").to_numpy()
    if truth_rel is not None and {"entity1", "entity2", "mechanism"} <= set(truth_rel.columns):
        t = truth_rel.drop_duplicates(["entity1", "entity2"]).set_index(["entity1", "entity2"])["mechanism"]
        t = t[~t.index.duplicated()]
        fwd = t.reindex(pd.MultiIndex.from_arrays([out["entity1"], out["entity2"]])).to_numpy()
        rev = t.reindex(pd.MultiIndex.from_arrays([out["entity2"], out["entity1"]])).to_numpy()
        out.insert(2, "planted mechanism", pd.Series(fwd).fillna(pd.Series(rev)).fillna("").to_numpy())
    return out


def model_only_pairs(pairs: pd.DataFrame, source: str, recalled_col: str, *, kinds: dict | None = None) -> pd.DataFrame:
    """Pairs a model recalls and no baseline does (the benchmark's ``also_`` attribution says
    ``alone``): what the model learned beyond trivial signals."""
    p = pairs[(pairs["source"] == source) & (pairs[f"also_{recalled_col}"] == "alone")]
    p = p[p["embedder"].map(lambda e: embedder_kind(e, kinds)) == "model"]
    out = p.groupby(["entity1", "entity2"])["embedder"].apply(lambda s: ", ".join(sorted(s)))
    return out.rename("recalled by").reset_index()


def perturbation_rows(obs: pd.DataFrame) -> dict[str, np.ndarray]:
    """Upper-cased perturbation name -> positions of its wells in ``obs``.  Built once per screen
    (the dashboard caches it): scanning 222,601 Arrow-backed names on every pair change cost 0.35 s
    of the drill-down's 1.4 s on the RxRx3-core stand-in."""
    return label_positions(obs["perturbation"].astype(str).str.upper().to_numpy(dtype=object))


def example_wells(obs: pd.DataFrame, a: str, b: str, control_label: str, n: int = 3,
                  seed: int = 0, *, rows: dict[str, np.ndarray] | None = None) -> dict[str, pd.DataFrame]:
    """Up to ``n`` wells of each perturbation and ``n`` negative controls drawn from the plates those
    wells sit on, so a difference is not a plate difference.  ``rows``: ``perturbation_rows(obs)``,
    when the caller keeps it."""
    rows = perturbation_rows(obs) if rows is None else rows
    out = {}
    plates = set()
    for g in (a, b):
        w = obs.iloc[rows.get(g.upper(), np.array([], dtype=np.int64))]
        w = w.sample(min(n, len(w)), random_state=seed) if len(w) else w
        out[g] = w
        plates |= set(w["plate"])
    ctrl = obs[obs["is_control"] & obs["plate"].isin(plates)]
    out[control_label] = ctrl.sample(min(n, len(ctrl)), random_state=seed) if len(ctrl) else ctrl
    return out


def confounder_comparison(conf: pd.DataFrame, obs: pd.DataFrame, groups: dict[str, pd.DataFrame], *,
                          rows: dict[str, np.ndarray] | None = None) -> pd.DataFrame:
    """Mean confounder values of every well of each perturbation (controls: same plates).
    ``rows``: ``perturbation_rows(obs)``, when the caller keeps it."""
    rows = perturbation_rows(obs) if rows is None else rows
    num = [c for c in conf.columns if c != "well_id" and pd.api.types.is_numeric_dtype(conf[c])
           and c not in ("row", "col")]
    # conf is written in obs's well order by bioviz.embed: then obs positions index it directly
    # (an isin over 222,601 well ids cost 0.07 s per group)
    aligned = len(conf) == len(obs) and conf["well_id"].equals(obs["well_id"])
    is_ctrl = obs["is_control"].to_numpy(bool)
    out = {}
    for label, wells in groups.items():
        mine = rows.get(str(label).upper())
        if mine is None or not len(mine) or is_ctrl[mine].any():
            plates = set(wells["plate"])
            mine = (np.flatnonzero(is_ctrl & obs["plate"].isin(plates).to_numpy(bool)) if plates
                    else obs.index.get_indexer(wells.index))
        if aligned:
            sub = conf.iloc[mine]
        else:
            sub = conf[conf["well_id"].isin(set(obs["well_id"].iloc[mine]))]
        out[f"{label} (n={len(sub)})"] = sub[num].astype(float).mean()
    return pd.DataFrame(out)


def null_similarities(profiles: pd.DataFrame, control_label: str | None = None, n_sample: int = 20000,
                      seed: int = 0) -> np.ndarray:
    """Cosine similarities of random perturbation pairs (all pairs when there are few): the null a
    known pair's similarity is placed on."""
    p = profiles if control_label is None else profiles[profiles["perturbation"] != control_label]
    v = p[feature_columns(p)].to_numpy(np.float64)
    v = v / (np.linalg.norm(v, axis=1, keepdims=True) + 1e-12)
    n = len(v)
    if n < 2:
        return np.array([])
    if n * (n - 1) // 2 <= n_sample:
        iu = np.triu_indices(n, 1)
        return np.einsum("ij,ij->i", v[iu[0]], v[iu[1]])
    rng = np.random.default_rng(seed)
    i = rng.integers(0, n, n_sample)
    j = rng.integers(0, n, n_sample)
    keep = i != j
    return np.einsum("ij,ij->i", v[i[keep]], v[j[keep]])


def pair_similarity(profiles: pd.DataFrame, a: str, b: str) -> float | None:
    up = profiles["perturbation"].astype(str).str.upper().to_numpy(dtype=object)
    ia, ib = np.flatnonzero(up == a.upper()), np.flatnonzero(up == b.upper())
    if not len(ia) or not len(ib):
        return None
    # only the two rows: converting the whole 17,000 x 384 map on every pair change cost 0.1 s per map
    va, vb = profiles[feature_columns(profiles)].iloc[[ia[0], ib[0]]].to_numpy(np.float64)
    return float(va @ vb / (np.linalg.norm(va) * np.linalg.norm(vb) + 1e-12))


def percentile_in(null: np.ndarray, value: float) -> float:
    if len(null) == 0:
        return float("nan")
    # Mid-rank, as the benchmark's pair percentiles: ties count half.
    srt = np.sort(null)
    lt = np.searchsorted(srt, value, side="left")
    le = np.searchsorted(srt, value, side="right")
    return float(100.0 * (lt + le) / (2.0 * len(srt)))
