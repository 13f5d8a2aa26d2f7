"""``run_benchmark``: every embedder of a dataset through maps, recall, probes, CKA and activity,
written to ``<dataset>/results/`` where the dashboard reads them."""
from __future__ import annotations

import time

import numpy as np
import pandas as pd

from ..errors import BenchmarkError
from . import activity as act
from . import efaar_suite
from .adjust import DENSITY_DEGREE, NEGLIGIBLE, adjust as adjust_for, check_confounder, parse_adjust
from .attribution import attribute, attribution_baselines, chance_alone, embedder_kind, is_baseline
from .bootstrap import bootstrap_ci, holm, pair_clusters, paired_bootstrap_pvalue
from .cka import linear_cka
from .maps import aggregate, align, build_map, feature_columns, normalize_embedding
from .probes import confounder_probes, ridge_r2_many
from .recall import (DEFAULT_THRESHOLDS, degenerate_map, known_relationship_recall, normalize_thresholds,
                     threshold_label)
from .results import write_results

# -- inputs: read through bioviz.embed, the owner of embeddings/ -----------------------------


def available_embeddings(screen) -> list[str]:
    """Embedder names with an up-to-date cache under ``<dataset>/embeddings/`` (``bioviz.embed``)."""
    from .. import embed

    return list(embed.computed_embedders(screen))


def load_embedding(screen, name: str) -> pd.DataFrame:
    from .. import embed

    return embed.load_embedding(screen, name)


def load_confounders(screen) -> pd.DataFrame | None:
    """The per-well confounder table, or None when none was computed (stale ones raise)."""
    from .. import embed

    return embed.load_confounders(screen, missing_ok=True)


def confounder_baselines(conf: pd.DataFrame) -> dict[str, pd.DataFrame]:
    """Embeddings made of confounders alone: what recall a screen gives for free.

    Cell count alone is not one of them: a one-feature map has cosines of +-1 only (reported as
    "not applicable", bench.recall.degenerate_map). The ``cell_count`` embedder (three counts:
    kept, touching the border, crowded) is the density baseline.
    """
    out = {}
    groups = {
        "confounder:intensity": [c for c in conf.columns if c.startswith("intensity_")],
    }
    for name, cols in groups.items():
        # two features at least: a one-feature map's cosines are +-1 (one intensity column of a profile)
        if len(cols) >= 2 and all(c in conf for c in cols):
            df = conf[["well_id"]].copy()
            for i, c in enumerate(cols):
                df[f"f{i}"] = conf[c].to_numpy(dtype=float)
            out[name] = df
    return out


# -- truth -----------------------------------------------------------------------------------


def _truth_pairs(screen) -> pd.DataFrame | None:
    truth = getattr(screen, "truth", None)
    if truth is None or truth.relationships is None or truth.relationships.empty:
        return None
    rel = truth.relationships
    if "mechanism" not in rel:
        return None
    a, b = rel.entity1.astype(str).to_numpy(), rel.entity2.astype(str).to_numpy()
    out = pd.DataFrame({"entity1": np.minimum(a, b), "entity2": np.maximum(a, b), "mechanism": rel.mechanism.astype(str)})
    return out.drop_duplicates(["entity1", "entity2"])


def planted_pairs(truth: pd.DataFrame) -> pd.DataFrame:
    """The ``planted`` source: pairs whose two genes share a planted mechanism other than
    ``none``, one row (and one mechanism) each.  Known pairs whose genes share nothing planted
    (56% of them at seed 0) are public knowledge, not planted truth."""
    return truth[truth["mechanism"] != "none"].drop_duplicates(["entity1", "entity2"]).reset_index(drop=True)


# the mechanism each confounder adjustment is meant to remove, on planted data
ADJUST_MECHANISM = {"density": "density", "intensity": "intensity"}
# the confounder-table columns a probe on the adjusted embedding should no longer predict
ADJUST_PROBE = {"density": ["cell_count"], "focus": ["focus"], "position": ["row", "col", "edge"]}


def perturbation_map(screen, name: str, *, method: str = "pca_centerscale", aggregation: str = "mean",
                     adjust=None, embedding: pd.DataFrame | None = None, confounders=None):
    """(map, adjusted) for one embedder of ``screen``: the map ``bioviz map`` writes and
    ``run_benchmark`` scores (``perturbation`` + ``f0..``, controls dropped).

    ``adjusted`` is the :class:`~bioviz.bench.adjust.Adjusted` record (None without ``adjust``);
    when nothing is left after adjusting, the map is None.
    """
    emb = embedding if embedding is not None else load_embedding(screen, name)
    adj = parse_adjust(adjust)
    res = None
    if adj:
        conf = confounders if confounders is not None else load_confounders(screen)
        if conf is None:
            raise BenchmarkError("--adjust needs the confounder table embeddings/confounders.parquet "
                                 f"(run `bioviz embed --dataset {getattr(screen, 'root', 'DIR')}`)")
        x, meta = align(emb, screen.obs)
        batches = meta["batch"].astype(str).to_numpy() if "batch" in meta else None
        res = adjust_for(emb.set_index("well_id").loc[meta["well_id"]].reset_index(), conf, adj, batches)
        if res.nothing_left:
            return None, res
        emb = res.embedding
    m = build_map(emb, screen.obs, str(screen.control_label), method=method, aggregation=aggregation)
    return m, res


# -- the run ---------------------------------------------------------------------------------


def run_benchmark(
    screen,
    embedders=None,
    adjust=None,
    *,
    out=None,
    sources=None,
    relationships=None,
    thresholds=DEFAULT_THRESHOLDS,
    method: str = "pca_centerscale",
    aggregation: str = "mean",
    n_boot: int = 1000,
    null_size: int = 2000,
    with_confounder_baselines: bool = True,
    with_activity: bool = True,
    seed: int = 0,
    progress=None,
    matched_null=None,
    null_genes=None,
) -> dict:
    """Benchmark ``embedders`` (default: all cached) of ``screen``; write results; return summary.

    ``adjust``: confounder names (density, intensity, focus, plate, position); recall is reported
    both raw (``adjusted_for`` empty) and with all of them regressed out (``+``-joined).
    ``matched_null``: confounder-matched nulls (``bench.matched_null.parse_matched``: ``density``,
    ``density,plate``, ``density+intensity``); their rows carry ``null_model`` ``matched:<names>``,
    the all-pairs rows ``all``.
    ``null_genes``: genes not expressed in the cell type, the null of the consistency and magnitude
    benchmarks (efaar's); without them the null is made of control wells (bench.efaar_suite).
    """
    t0 = time.time()
    say = progress or (lambda msg: None)
    thresholds = normalize_thresholds(thresholds)
    labels = [threshold_label(p) for p in thresholds]
    adjust = parse_adjust(adjust)
    obs = screen.obs
    control = str(screen.control_label)
    # Maps are normalised to control wells: without any, only the well-level diagnostics apply.
    has_control = bool((obs["perturbation"].astype(str) == control).any())

    names = list(embedders) if embedders else available_embeddings(screen)
    if not names:
        raise BenchmarkError(f"no embeddings in {screen.embeddings_dir}; run `bioviz embed` first")
    embs = {n: load_embedding(screen, n) for n in names}
    conf = load_confounders(screen)
    if adjust and conf is None:
        raise BenchmarkError("--adjust needs the confounder table embeddings/confounders.parquet (run `bioviz embed`)")
    if conf is not None and with_confounder_baselines:
        for n, df in confounder_baselines(conf).items():
            embs.setdefault(n, df)
    warnings: list[str] = []

    truth = _truth_pairs(screen)
    rel_tables = dict(relationships or {})
    if truth is not None:
        rel_tables.setdefault("planted", planted_pairs(truth)[["entity1", "entity2"]])
    if sources is None:
        from ..relationships import SOURCES

        sources = list(SOURCES)
    skipped: dict[str, str] = {}
    if has_control:
        # A source none of whose pairs has both members among the perturbations (a compound
        # screen against gene tables) is skipped with its reason; the rest of the run goes on.
        sources, rel_tables, skipped = matching_sources(obs, control, sources, rel_tables)
        if not sources and not rel_tables:
            warnings.append("recall skipped: no relationship source matched a pair of perturbations")
    else:
        sources, rel_tables = [], {}
        warnings.append(f"no control wells (control label {control!r}): maps are normalised to controls, so "
                        "recall, activity and MOA retrieval were skipped; probes and CKA ran")

    kinds = _kinds(screen, embs)
    if adjust:
        batches_all = obs["batch"].astype(str).to_numpy() if "batch" in obs else None
        conf_obs = conf.set_index("well_id").reindex(obs["well_id"]).reset_index()
        for n in list(adjust):
            why = check_confounder(conf_obs, n, batches_all if batches_all is not None
                                   and len(pd.unique(batches_all)) > 1 else None)
            if why:
                warnings.append(why)
                adjust = [a for a in adjust if a != n]

    recall_rows, pair_frames, map_sizes, raw_maps = [], [], {}, {}
    nothing_left: dict[tuple[str, str], str] = {}
    adjusted_probe: dict[tuple[str, str], float] = {}
    adjust_info: dict[str, dict] = {}
    maps_for_chance: dict[str, tuple] = {}
    adjust_sets = [[]] + ([adjust] if adjust else [])
    for adj in adjust_sets if (sources or rel_tables) else []:
        adj_label = "+".join(adj)
        for name, emb in embs.items():
            say(f"recall: {name}" + (f" adjusted for {adj_label}" if adj else ""))
            m, res = perturbation_map(screen, name, method=method, aggregation=aggregation, adjust=adj,
                                      embedding=emb, confounders=conf)
            if res is not None:
                adjust_info[name] = {"kept": res.kept, "dropped": res.dropped, "degree": res.degree}
                if res.nothing_left:
                    nothing_left[(adj_label, name)] = res.reason
                    continue
                adjusted_probe[(adj_label, name)] = _adjusted_probe_r2(res.embedding, conf, adj, seed)
            feats = m[feature_columns(m, exclude=("perturbation",))]
            why = degenerate_map(feats.to_numpy(dtype=np.float64))
            if why:  # ties everywhere: the reason, never a recall computed on +-1 cosines
                nothing_left[(adj_label, name)] = why
                continue
            map_sizes[name] = len(m)
            if not adj:
                raw_maps[name] = m
            run = known_relationship_recall(
                feats, m["perturbation"], sources=sources,
                relationships=rel_tables or None, thresholds=thresholds, with_ranks=True, what=f"map of {name}",
            )
            skipped.update(run.skipped)
            if not adj and embedder_kind(name, kinds) == "model":
                maps_for_chance[name] = (feats.to_numpy(dtype=np.float64), pd.Index(m["perturbation"]), run.cuts)
            for src, pdf in run.pairs.items():
                pdf = pdf.assign(source=src, embedder=name, adjusted_for=adj_label, null_size=run.cuts.size)
                if truth is not None:
                    pdf = pdf.merge(truth, on=["entity1", "entity2"], how="left")
                    pdf["mechanism"] = pdf["mechanism"].fillna("unplanted")
                pair_frames.append(pdf)

    # confounder-matched nulls (bench.matched_null): the raw maps judged within cells of pairs alike
    # in density/intensity/focus/plate; rows without a number (too few pairs) carry the reason
    from .matched_null import NULL_ALL, benchmark_matched

    matched_frames, matched_failed, matched_info = benchmark_matched(
        raw_maps, obs, conf, control, matched_null if pair_frames else None, sources=sources,
        relationships=rel_tables or None, thresholds=thresholds, warnings=warnings, say=say)
    if truth is not None:  # the planted mechanism of each matched pair, as for the all-pairs rows
        matched_frames = [f.merge(truth, on=["entity1", "entity2"], how="left").fillna({"mechanism": "unplanted"})
                          for f in matched_frames]
    flag_cols = [f"recalled_{l}" for l in labels]
    if not pair_frames:  # nothing to recall: empty tables with the written columns
        from .results import table_columns

        pair_frames = [pd.DataFrame({c: pd.Series(dtype=bool if c.startswith("recalled_") else object)
                                     for c in table_columns("pairs", labels) if c not in ("null_model", "null_cell")})
                       .assign(null_size=pd.Series(dtype=int))]
    pairs = pd.concat([f.assign(null_model=NULL_ALL, null_cell="") for f in pair_frames] + matched_frames,
                      ignore_index=True)
    clusters, units = {}, {}
    if len(pairs):
        pairs = pd.concat([attribute(g, flag_cols, kinds=kinds) for _, g in pairs.groupby("null_model", sort=False)],
                          ignore_index=True)
        # resampling units: connected components of each source's pair graph (same pairs for every map)
        for src, g in pairs.drop_duplicates(["source", "entity1", "entity2"]).groupby("source"):
            lab, unit = pair_clusters(g["entity1"], g["entity2"])
            lab = lab if lab.ndim == 2 else np.column_stack([lab, np.full(len(lab), -1)])
            clusters[src] = pd.DataFrame(lab, columns=["_u1", "_u2"],
                                         index=pd.MultiIndex.from_arrays([g["entity1"], g["entity2"]]))
            units[src] = unit
        pairs = pairs.merge(pd.concat(clusters, names=["source", "entity1", "entity2"]).reset_index(),
                            on=["source", "entity1", "entity2"], how="left")
    else:
        pairs = pairs.assign(_u1=pd.Series(dtype=int), _u2=pd.Series(dtype=int))

    def unit_of(sub):
        return sub[["_u1", "_u2"]].to_numpy() if units[sub["source"].iloc[0]] == "gene" else sub["_u1"].to_numpy()

    group_keys = ["null_model", "adjusted_for", "embedder", "source"]
    for keys, g in pairs.groupby(group_keys, sort=False):
        _, adj_label, name, src = keys
        subsets = [("", g)]
        if "mechanism" in g:
            subsets += [(mech, gm) for mech, gm in g.groupby("mechanism")]
        for mech, sub in subsets:
            for lab, flag in zip(labels, flag_cols):
                r = sub[flag].to_numpy()
                lo, hi = bootstrap_ci(r, n_boot=n_boot, seed=seed, clusters=unit_of(sub))
                row = dict(zip(group_keys, keys), mechanism=mech, threshold=lab, recall=float(r.mean()),
                           ci_low=lo, ci_high=hi, n_pairs=len(r), null_size=int(sub["null_size"].iloc[0]),
                           reason="",
                           probe_r2=adjusted_probe.get((adj_label, name), np.nan), still_planted=np.nan)
                target = [ADJUST_MECHANISM[a] for a in adj_label.split("+") if a in ADJUST_MECHANISM]
                if adj_label and mech == "" and truth is not None and target and r.any():
                    row["still_planted"] = float(sub.loc[sub[flag], "mechanism"].isin(target).mean())
                recall_rows.append(row)
    for label, why in matched_failed:  # no number, the reason instead
        for keys, g in pairs[pairs["null_model"] == NULL_ALL].groupby(["adjusted_for", "embedder", "source"], sort=False):
            if keys[0] == "":
                recall_rows += [dict(null_model=label, adjusted_for="", embedder=keys[1], source=keys[2], mechanism="",
                                     threshold=lab, recall=np.nan, ci_low=np.nan, ci_high=np.nan, n_pairs=len(g),
                                     null_size=0, reason=why, probe_r2=np.nan, still_planted=np.nan) for lab in labels]
    # a map that is its confounder: no number, the reason instead
    all_null = pairs[pairs["null_model"] == NULL_ALL]
    for (adj_label, name), reason in nothing_left.items():
        for src, g in all_null[all_null["adjusted_for"] == adj_label].groupby("source"):
            n_pairs = int(g.drop_duplicates(["entity1", "entity2"]).shape[0])
            for lab in labels:
                recall_rows.append(dict(null_model=NULL_ALL, adjusted_for=adj_label, embedder=name, source=src,
                                        mechanism="",
                                        threshold=lab, recall=np.nan, ci_low=np.nan, ci_high=np.nan,
                                        n_pairs=n_pairs, null_size=0, reason=reason, probe_r2=np.nan, still_planted=np.nan))
    recall = pd.DataFrame(recall_rows, columns=["embedder", "source", "threshold", "recall", "ci_low", "ci_high",
                                                "adjusted_for", "mechanism", "n_pairs", "null_size", "null_model",
                                                "reason", "probe_r2", "still_planted"])[
        ["embedder", "source", "threshold", "recall", "ci_low", "ci_high", "adjusted_for", "mechanism", "n_pairs",
         "null_size", "null_model", "reason", "probe_r2", "still_planted"]
    ]
    recall["null_size"] = recall["null_size"].astype(int)
    model_only = _model_only(pairs, maps_for_chance, flag_cols, labels, kinds, seed)
    comparisons = _comparisons(pairs, flag_cols, labels, n_boot, seed, kinds, units)

    pairs_out = pairs[
        ["source", "entity1", "entity2", "embedder", "adjusted_for", "cosine", "percentile", *flag_cols,
         *[f"also_{f}" for f in flag_cols], *(["mechanism"] if "mechanism" in pairs else []), "null_model", "null_cell"]
    ]

    # -- well-level diagnostics (raw embeddings) -------------------------------------------------
    probe_rows, cka_rows, act_frames = [], [], []
    suite_frames: dict[str, list] = {"consistency": [], "magnitude": [], "cluster": []}
    wells = {}
    for name, emb in embs.items():
        x, meta = align(emb, obs)
        wells[name] = (x, meta)
        if conf is not None:
            c = conf.set_index("well_id").reindex(meta["well_id"]).reset_index()
            if c.drop(columns="well_id").isna().all(axis=1).any():
                warnings.append(f"{name}: some wells lack confounders; probes skipped")
            else:
                say(f"probes: {name}")
                p = confounder_probes(x, c, seed=seed)
                p.insert(0, "embedder", name)
                probe_rows.append(p)
        if has_control:
            # efaar's consistency / magnitude on the normalised wells, cluster on their map: the
            # recall maps' recipe (build_map = this normalisation, then aggregate)
            say(f"consistency, magnitude, complexes: {name}")
            is_ctrl = meta["perturbation"].astype(str).to_numpy() == control
            z = normalize_embedding(x, is_ctrl, meta["batch"].to_numpy() if "batch" in meta else None, method)
            feats, perts = aggregate(z, meta["perturbation"], aggregation, drop=(control,))
            for key, df in efaar_suite.suite_rows(name, z, meta["perturbation"], control, feats, perts,
                                                  null_genes=null_genes, seed=seed).items():
                suite_frames[key].append(df)
        if with_activity and has_control:
            say(f"activity: {name}")
            for fn in (act.phenotypic_activity, act.replicate_consistency):
                try:
                    a = fn(z, meta["perturbation"], is_ctrl, null_size=null_size, seed=seed)
                except BenchmarkError as exc:
                    warnings.append(f"{name}: {exc}")
                    continue
                a.insert(0, "embedder", name)
                act_frames.append(a)
    names_all = list(wells)
    for i, a in enumerate(names_all):
        for b in names_all[i:]:
            xa, ma = wells[a]
            xb, mb = wells[b]
            common = pd.Index(ma["well_id"]).intersection(pd.Index(mb["well_id"]))
            ia = pd.Index(ma["well_id"]).get_indexer(common)
            ib = pd.Index(mb["well_id"]).get_indexer(common)
            v = linear_cka(xa[ia], xb[ib]) if len(common) > 1 else float("nan")
            cka_rows += [(a, b, v), (b, a, v)] if a != b else [(a, b, v)]
    probes = pd.concat(probe_rows, ignore_index=True) if probe_rows else pd.DataFrame(
        columns=["embedder", "confounder", "metric", "value"])
    cka = pd.DataFrame(cka_rows, columns=["embedder_a", "embedder_b", "cka"])
    activity = pd.concat(act_frames, ignore_index=True) if act_frames else pd.DataFrame(
        columns=["embedder", "perturbation", "metric", "mean_average_precision", "corrected_p_value", "below_corrected_p"])
    retrieval = _retrieval(wells, control, seed, null_size, warnings, method=method, aggregation=aggregation,
                           n_boot=n_boot) if has_control else pd.DataFrame(columns=RETRIEVAL_COLUMNS)

    summary = {
        "dataset": getattr(screen, "name", ""),
        "embedders": names_all,
        "baselines": [n for n in names_all if is_baseline(n, kinds)],
        "kinds": kinds,
        "bootstrap": {"unit": units, "n_boot": n_boot, "zero_one": "wilson",
                      "comparisons": "paired cluster bootstrap, Holm-adjusted per threshold and adjustment"},
        "adjustment": {"confounders": list(adjust), "density_degree": DENSITY_DEGREE, "negligible": NEGLIGIBLE,
                       "per_embedder": adjust_info, "nothing_left": {k[1]: v for k, v in nothing_left.items() if k[0]}},
        # raw maps with ties everywhere (bench.recall.degenerate_map): no recall, the reason instead
        "not_applicable": {k[1]: v for k, v in nothing_left.items() if not k[0]},
        "model_only": model_only.to_dict(orient="records"),
        "adjusted_for": "+".join(adjust),
        "sources": sorted(pairs["source"].unique().tolist()),
        "skipped_sources": skipped,
        "thresholds": labels,
        "map": {"normalization": method, "aggregation": aggregation, "perturbations": map_sizes},
        # the recipe every view that rebuilds a map reads back (bench.results.map_recipe)
        "recipe": {"method": method, "aggregation": aggregation, "adjust": list(adjust)},
        "has_truth": truth is not None,
        "n_boot": n_boot,
        "warnings": warnings,
        "activity_fraction": (
            activity[activity.metric == "activity"].groupby("embedder")["below_corrected_p"].mean().to_dict()
            if len(activity) else {}
        ),
        "retrieval": retrieval.to_dict(orient="records") if len(retrieval) else [],
        "comparisons": comparisons.to_dict(orient="records"),
        # per matched null: bins used per confounder, cells, smallest cell, null pairs (or why skipped)
        "matched_null": matched_info,
        "seconds": round(time.time() - t0, 1),
    }
    suite = {k: pd.concat(v, ignore_index=True) for k, v in suite_frames.items() if v}
    summary["efaar_suite"] = {k: sorted({n for n in v["note"] if n.startswith("not applicable")}) for k, v in suite.items()}
    if "consistency" in suite:  # which null the consistency benchmark used (issue 12: say which)
        nulls = suite["consistency"]["null"].dropna().astype(str)
        summary["efaar_null"] = nulls[nulls != ""].iloc[0] if (nulls != "").any() else ""
    write_results(screen, dict(recall=recall, pairs=pairs_out, probes=probes, cka=cka, activity=activity,
                               comparisons=comparisons, retrieval=retrieval, model_only=model_only, **suite),
                  summary, out=out)
    return summary


def _comparisons(pairs, flag_cols, labels, n_boot, seed, kinds=None, units=None) -> pd.DataFrame:
    """Each model (and handcrafted embedder) against each diagnostic on the same pairs: paired
    cluster-bootstrap p (A > B), Holm-adjusted across the comparisons the dashboard shows
    together (one threshold and adjustment, every source)."""
    rows = []
    for (nm, adj, src), g in pairs.groupby(["null_model", "adjusted_for", "source"], sort=False):
        names = list(g["embedder"].unique())
        for lab, flag in zip(labels, flag_cols):
            wide = g.pivot_table(index=["entity1", "entity2"], columns="embedder", values=flag, aggfunc="first")
            gene_unit = (units or {}).get(src) == "gene"
            cl = g.drop_duplicates(["entity1", "entity2"]).set_index(["entity1", "entity2"])[["_u1", "_u2"]]
            for a in names:
                if embedder_kind(a, kinds) not in ("model", "handcrafted"):
                    continue
                for b in names:
                    if a == b or not is_baseline(b, kinds):
                        continue
                    ab = wide[[a, b]].dropna()
                    res = paired_bootstrap_pvalue(ab[a].astype(float), ab[b].astype(float), n_boot=n_boot,
                                                  seed=seed, clusters=cl.reindex(ab.index).to_numpy()
                                                  if gene_unit else cl.reindex(ab.index)["_u1"].to_numpy())
                    rows.append({"embedder_a": a, "embedder_b": b, "source": src, "threshold": lab,
                                 "adjusted_for": adj, **res, "null_model": nm})
    out = pd.DataFrame(rows, columns=["embedder_a", "embedder_b", "source", "threshold", "adjusted_for",
                                      "diff", "ci_low", "ci_high", "p_value", "null_model"])
    out["p_adjusted"] = np.nan
    for _, idx in out.groupby(["null_model", "threshold", "adjusted_for"]).groups.items():
        out.loc[idx, "p_adjusted"] = holm(out.loc[idx, "p_value"].to_numpy())
    return out


def _kinds(screen, embs) -> dict[str, str]:
    """Each embedder's kind; a precomputed table's comes from its cached ``kind`` option."""
    from .. import embed

    out = {}
    for name in embs:
        cfg = None
        if not name.startswith("confounder:"):
            try:
                cfg = (embed.embedding_info(screen, name) or {}).get("config")
            except Exception:  # a stand-in screen without caches: the name decides
                cfg = None
        out[name] = embedder_kind(name, {name: cfg["kind"]} if cfg and cfg.get("kind") else None)
    return out


def _adjusted_probe_r2(emb: pd.DataFrame, conf, adj, seed) -> float:
    """Cross-validated R^2 of the adjusted embedding predicting what was adjusted for (the
    largest over the confounder columns; about 0 when the adjustment worked)."""
    cols = [c for a in adj for c in (ADJUST_PROBE.get(a) or
                                      ([c for c in conf.columns if str(c).startswith("intensity_")]
                                       if a == "intensity" else []))]
    cols = [c for c in cols if c in conf.columns]
    if not cols:
        return float("nan")
    from .probes import _reduce

    c = conf.set_index("well_id").reindex(emb["well_id"])
    x = _reduce(emb.drop(columns="well_id").to_numpy(dtype=np.float64))
    r2 = ridge_r2_many(x, c[cols].to_numpy(dtype=float), seed=seed)
    return float(np.nanmax(r2)) if np.isfinite(r2).any() else float("nan")


N_PERMUTATIONS = 200


def _model_only(pairs, maps, flag_cols, labels, kinds, seed) -> pd.DataFrame:
    """Per model, source and threshold (unadjusted): pairs it recalls that no baseline recalls,
    beside the count expected by chance: the same map with its perturbation labels permuted
    (N_PERMUTATIONS times), mean and 95% range.  Baselines are the baseline and handcrafted kinds;
    the null (random) is not one."""
    cols = ["embedder", "source", "threshold", "count", "chance_mean", "chance_low", "chance_high",
            "n_permutations", "baselines"]
    raw = pairs[(pairs["adjusted_for"] == "") & (pairs["null_model"] == "all")]
    bases = attribution_baselines(raw["embedder"].unique(), kinds)
    rows = []
    for name, (x, index, cuts) in maps.items():
        norm = np.linalg.norm(x, axis=1, keepdims=True)
        unit = np.divide(x, norm, out=np.zeros_like(x), where=norm > 0)
        mine = raw[raw["embedder"] == name]
        for src, g in mine.groupby("source"):
            i = index.get_indexer(g["entity1"])
            j = index.get_indexer(g["entity2"])
            key = pd.MultiIndex.from_arrays([g["entity1"], g["entity2"]])
            other = raw[(raw["source"] == src) & raw["embedder"].isin([b for b in bases if b != name])]
            for k, (lab, flag) in enumerate(zip(labels, flag_cols)):
                hit = other[other[flag]]
                taken = key.isin(pd.MultiIndex.from_arrays([hit["entity1"], hit["entity2"]]))
                perm = chance_alone(unit, i, j, cuts, taken, N_PERMUTATIONS, seed)[:, k]
                rows.append({"embedder": name, "source": src, "threshold": lab,
                             "count": int((g[f"also_{flag}"] == "alone").sum()),
                             "chance_mean": float(perm.mean()), "chance_low": float(np.quantile(perm, 0.025)),
                             "chance_high": float(np.quantile(perm, 0.975)), "n_permutations": N_PERMUTATIONS,
                             "baselines": "+".join(b for b in bases if b != name)})
    return pd.DataFrame(rows, columns=cols)


RETRIEVAL_COLUMNS = ["embedder", "label", "level", "metric", "value", "ci_low", "ci_high", "n"]


def matching_sources(obs: pd.DataFrame, control: str, sources, relationships: dict):
    """(public sources, user tables, {source: why skipped}) keeping only sources with at least one
    known pair whose two members are both perturbations of the screen (the map's rows)."""
    from .recall import explain_no_match, match_pairs, relationship_tables

    labels = pd.Index(sorted(set(obs["perturbation"].astype(str)) - {str(control)}))
    tables = relationship_tables(list(sources or []), dict(relationships or {}))
    skipped = {}
    for name, rels in tables.items():
        if len(match_pairs(rels, labels)[0]) == 0:
            skipped[name] = explain_no_match(name, rels, labels)
    return ([s for s in (sources or []) if s not in skipped],
            {k: v for k, v in (relationships or {}).items() if k not in skipped}, skipped)


def relationships_from_column(obs: pd.DataFrame, column: str, control: str) -> pd.DataFrame:
    """Known pairs from metadata: two perturbations are related when they share a value of
    ``column`` (e.g. ``moa``; ``|``-separated values each count). Raises naming the column when it
    is absent or no value is shared by two perturbations."""
    if column not in obs.columns:
        raise BenchmarkError(f"--relationships {column}: the metadata has no column {column!r} "
                             f"(columns: {', '.join(map(str, obs.columns[:12]))}...)")
    sub = obs[obs["perturbation"].astype(str) != str(control)][["perturbation", column]].copy()
    sub[column] = sub[column].astype(object).where(sub[column].notna(), "").astype(str).str.split("|")
    sub = sub.explode(column)
    sub[column] = sub[column].str.strip()
    sub = sub[sub[column] != ""].drop_duplicates()
    sub["perturbation"] = sub["perturbation"].astype(str)
    pairs = sub.merge(sub, on=column)
    pairs = pairs[pairs["perturbation_x"] < pairs["perturbation_y"]]
    if pairs.empty:
        raise BenchmarkError(f"--relationships {column}: no value of {column!r} is shared by two perturbations "
                             "(every value is unique or empty), so it gives no pairs")
    return (pairs.rename(columns={"perturbation_x": "entity1", "perturbation_y": "entity2"})[["entity1", "entity2"]]
            .drop_duplicates().reset_index(drop=True))


def _treatment_level(z, meta, aggregation):
    """Wells of one compound at one concentration aggregated like the map (the treatment profile)."""
    from .maps import aggregate

    conc = meta["concentration"].astype(str) if "concentration" in meta else pd.Series([""] * len(meta))
    key = (meta["perturbation"].astype(str) + "\x1f" + conc.to_numpy()).to_numpy()
    feats, keys = aggregate(z, key, aggregation)
    first = meta.assign(_k=key).drop_duplicates("_k").set_index("_k").loc[keys].reset_index(drop=True)
    return feats, first


def _retrieval(wells, control, seed, null_size, warnings, *, method="pca_centerscale", aggregation="mean",
               n_boot=1000) -> pd.DataFrame:
    """MOA / target retrieval on the normalised wells (the recall maps' recipe), at well level and at
    treatment level (compound + concentration aggregated), never counting the same compound."""
    from .retrieval import moa_map, nearest_neighbour_accuracy

    rows = []
    for name, (x, meta) in wells.items():
        is_ctrl = meta["perturbation"].astype(str).to_numpy() == control
        labelled = [(col, sep) for col, sep in (("moa", None), ("target", "|"))
                    if col in meta and not meta[col].replace("", np.nan).dropna().empty]
        if not labelled:
            continue
        z = normalize_embedding(x, is_ctrl, meta["batch"].to_numpy() if "batch" in meta else None, method)
        keep = ~is_ctrl
        zw, mw = z[keep], meta[keep].reset_index(drop=True)
        levels = [("well", zw, mw)]
        if "concentration" in mw:
            zt, mt = _treatment_level(zw, mw, aggregation)
            levels.append(("treatment", zt, mt))
        for level, zz, mm in levels:
            for col, sep in labelled:
                try:
                    nn = nearest_neighbour_accuracy(zz, mm["perturbation"], mm[col], sep)
                    lo, hi = bootstrap_ci(nn["hits"], n_boot=n_boot, seed=seed)
                    rows += [(name, col, level, "nn_accuracy", nn["accuracy"], lo, hi, nn["n"]),
                             (name, col, level, "nn_chance", nn["chance"], np.nan, np.nan, nn["n"])]
                    if col == "moa":
                        m = moa_map(zz, mm["perturbation"], mm[col], null_size=null_size, seed=seed)
                        ap = m["mean_average_precision"].to_numpy(dtype=float)
                        lo, hi = bootstrap_ci(ap, n_boot=n_boot, seed=seed)
                        rows.append((name, col, level, "mean_map", float(ap.mean()), lo, hi, len(ap)))
                        rows.append((name, col, level, "fraction_significant", float(m["below_corrected_p"].mean()),
                                     np.nan, np.nan, len(ap)))
                except BenchmarkError as exc:
                    warnings.append(f"{name}: {col} retrieval ({level} level): {exc}")
    return pd.DataFrame(rows, columns=RETRIEVAL_COLUMNS)
