"""``run_benchmark``: every embedder of a dataset through maps, recall, probes, CKA and activity,
written to ``<dataset>/results/`` where the dashboard reads them."""
from __future__ import annotations

import time

import numpy as np
import pandas as pd

from ..errors import BenchmarkError
from . import activity as act
from .adjust import adjust_embedding, parse_adjust
from .attribution import attribute, is_baseline
from .bootstrap import bootstrap_ci, paired_bootstrap_pvalue
from .cka import linear_cka
from .maps import align, build_map, feature_columns, normalize_embedding
from .probes import confounder_probes
from .recall import DEFAULT_THRESHOLDS, known_relationship_recall, normalize_thresholds, threshold_label
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

    Cell count alone is not one of them: a one-feature map has cosines of +-1 only, so its recall
    is 0 by construction, which would read as "density explains nothing". The ``cell_count``
    embedder (count and nucleus area) is the density baseline.
    """
    out = {}
    groups = {
        "confounder:intensity": [c for c in conf.columns if c.startswith("intensity_")],
    }
    for name, cols in groups.items():
        if cols and all(c in conf for c in cols):
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
) -> dict:
    """Benchmark ``embedders`` (default: all cached) of ``screen``; write results; return summary.

    ``adjust``: confounder names (density, intensity, focus, plate, position); recall is reported
    both raw (``adjusted_for`` empty) and with all of them regressed out (``+``-joined).
    ``matched_null``: confounder-matched nulls (``bench.matched_null.parse_matched``: ``density``,
    ``density,plate``, ``density+intensity``); their rows carry ``null_model`` ``matched:<names>``,
    the all-pairs rows ``all``.
    """
    t0 = time.time()
    say = progress or (lambda msg: None)
    thresholds = normalize_thresholds(thresholds)
    labels = [threshold_label(p) for p in thresholds]
    adjust = parse_adjust(adjust)
    obs = screen.obs
    control = str(screen.control_label)
    if not (obs["perturbation"].astype(str) == control).any():
        raise BenchmarkError(f"control label {control!r} does not occur in the perturbation column")

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
        rel_tables.setdefault("planted", truth[["entity1", "entity2"]])
    if sources is None:
        from ..relationships import SOURCES

        sources = list(SOURCES)

    recall_rows, pair_frames, map_sizes, raw_maps = [], [], {}, {}
    skipped: dict[str, str] = {}
    adjust_sets = [[]] + ([adjust] if adjust else [])
    for adj in adjust_sets:
        adj_label = "+".join(adj)
        for name, emb in embs.items():
            say(f"recall: {name}" + (f" adjusted for {adj_label}" if adj else ""))
            e = adjust_embedding(emb, conf, adj) if adj else emb
            m = build_map(e, obs, control, method=method, aggregation=aggregation)
            map_sizes[name] = len(m)
            if not adj:
                raw_maps[name] = m
            run = known_relationship_recall(
                m[feature_columns(m, exclude=("perturbation",))], m["perturbation"], sources=sources,
                relationships=rel_tables or None, thresholds=thresholds, with_ranks=True, what=f"map of {name}",
            )
            skipped.update(run.skipped)
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
        raw_maps, obs, conf, control, matched_null, sources=sources, relationships=rel_tables or None,
        thresholds=thresholds, warnings=warnings, say=say)
    pairs = pd.concat([f.assign(null_model=NULL_ALL, null_cell="") for f in pair_frames] + matched_frames,
                      ignore_index=True)
    flag_cols = [f"recalled_{l}" for l in labels]
    pairs = pd.concat([attribute(g, flag_cols) for _, g in pairs.groupby("null_model", sort=False)],
                      ignore_index=True)
    group_keys = ["null_model", "adjusted_for", "embedder", "source"]
    for keys, g in pairs.groupby(group_keys, sort=False):
        subsets = [("", g)]
        if "mechanism" in g:
            subsets += [(mech, gm) for mech, gm in g.groupby("mechanism")]
        for mech, sub in subsets:
            for lab, flag in zip(labels, flag_cols):
                r = sub[flag].to_numpy()
                lo, hi = bootstrap_ci(r, n_boot=n_boot, seed=seed)
                recall_rows.append(
                    dict(zip(group_keys, keys), mechanism=mech, threshold=lab, recall=float(r.mean()),
                         ci_low=lo, ci_high=hi, n_pairs=len(r), null_size=int(sub["null_size"].iloc[0]), reason="")
                )
    for label, why in matched_failed:  # no number, the reason instead
        for keys, g in pairs[pairs["null_model"] == NULL_ALL].groupby(["adjusted_for", "embedder", "source"], sort=False):
            if keys[0] == "":
                recall_rows += [dict(null_model=label, adjusted_for="", embedder=keys[1], source=keys[2], mechanism="",
                                     threshold=lab, recall=np.nan, ci_low=np.nan, ci_high=np.nan, n_pairs=len(g),
                                     null_size=0, reason=why) for lab in labels]
    recall = pd.DataFrame(recall_rows)[
        ["embedder", "source", "threshold", "recall", "ci_low", "ci_high", "adjusted_for", "mechanism", "n_pairs",
         "null_size", "null_model", "reason"]
    ]

    comparisons = _comparisons(pairs, flag_cols, labels, n_boot, seed)

    pairs_out = pairs[
        ["source", "entity1", "entity2", "embedder", "adjusted_for", "cosine", "percentile", *flag_cols,
         *[f"also_{f}" for f in flag_cols], *(["mechanism"] if "mechanism" in pairs else []), "null_model", "null_cell"]
    ]

    # -- well-level diagnostics (raw embeddings) -------------------------------------------------
    probe_rows, cka_rows, act_frames = [], [], []
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
        if with_activity:
            say(f"activity: {name}")
            is_ctrl = meta["perturbation"].astype(str).to_numpy() == control
            z = normalize_embedding(x, is_ctrl, meta["batch"].to_numpy() if "batch" in meta else None, method)
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
    retrieval = _retrieval(wells, control, seed, null_size, warnings)

    summary = {
        "dataset": getattr(screen, "name", ""),
        "embedders": names_all,
        "baselines": [n for n in names_all if is_baseline(n)],
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
    write_results(screen, dict(recall=recall, pairs=pairs_out, probes=probes, cka=cka, activity=activity,
                               comparisons=comparisons, retrieval=retrieval), summary, out=out)
    return summary


def _comparisons(pairs, flag_cols, labels, n_boot, seed) -> pd.DataFrame:
    """Every embedder against every baseline on the same pairs: paired bootstrap p (A > B)."""
    rows = []
    for (nm, adj, src), g in pairs.groupby(["null_model", "adjusted_for", "source"], sort=False):
        names = list(g["embedder"].unique())
        for lab, flag in zip(labels, flag_cols):
            wide = g.pivot_table(index=["entity1", "entity2"], columns="embedder", values=flag, aggfunc="first")
            for a in names:
                for b in names:
                    if a == b or not is_baseline(b):
                        continue
                    ab = wide[[a, b]].dropna()
                    res = paired_bootstrap_pvalue(ab[a].astype(float), ab[b].astype(float), n_boot=n_boot, seed=seed)
                    rows.append({"embedder_a": a, "embedder_b": b, "source": src, "threshold": lab,
                                 "adjusted_for": adj, **res, "null_model": nm})
    return pd.DataFrame(rows, columns=["embedder_a", "embedder_b", "source", "threshold", "adjusted_for",
                                       "diff", "ci_low", "ci_high", "p_value", "null_model"])


def _retrieval(wells, control, seed, null_size, warnings) -> pd.DataFrame:
    from .retrieval import moa_map, nearest_neighbour_accuracy

    rows = []
    for name, (x, meta) in wells.items():
        keep = meta["perturbation"].astype(str).to_numpy() != control
        for col, sep in (("moa", None), ("target", "|")):
            if col not in meta or meta[col].replace("", np.nan).dropna().empty:
                continue
            try:
                nn = nearest_neighbour_accuracy(x[keep], meta["perturbation"][keep], meta[col][keep], sep)
                rows += [(name, col, "nn_accuracy", nn["accuracy"]), (name, col, "nn_chance", nn["chance"])]
                if col == "moa":
                    m = moa_map(x[keep], meta["perturbation"][keep], meta[col][keep], null_size=null_size, seed=seed)
                    rows.append((name, col, "mean_map", float(m["mean_average_precision"].mean())))
                    rows.append((name, col, "fraction_significant", float(m["below_corrected_p"].mean())))
            except BenchmarkError as exc:
                warnings.append(f"{name}: {col} retrieval: {exc}")
    return pd.DataFrame(rows, columns=["embedder", "label", "metric", "value"])
