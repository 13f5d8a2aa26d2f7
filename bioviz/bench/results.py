"""``<dataset>/results/``: the one module that names the benchmark's files and their columns.

Like scikit-image's ``PROPS``/``COL_DTYPES``, the layout is data: ``FILES`` (table -> file name),
``COLUMNS`` (table -> column -> meaning) and ``COL_DTYPES`` (table -> column -> type). The
benchmark writes through :func:`write_results`; the CLI, the dashboard and the report read
through :func:`read_results` / :func:`read_table` and take file names from :func:`file_names`, so
a new file or column is added here once.

``summary.json`` records the map recipe the benchmark used (normalisation, aggregation,
adjustments); every view that rebuilds a map (UMAP, null distributions, pair similarity) takes it
from :func:`map_recipe`, so a picture and the scores come from the same numbers.
"""
from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from .. import atomic

# table -> file name, in the order they are written (summary last: it marks a finished run).
FILES = {
    "recall": "recall.csv",
    "pairs": "pairs.parquet",
    "probes": "probes.csv",
    "cka": "cka.csv",
    "activity": "activity.csv",
    "comparisons": "comparisons.csv",
    "retrieval": "retrieval.csv",
    "consistency": "consistency.csv",
    "magnitude": "magnitude.csv",
    "cluster": "cluster.csv",
    "model_only": "model_only.csv",
    "summary": "summary.json",
}
# Written only when the screen has what they need (retrieval: moa/target labels; the efaar suite:
# control wells) - results folders written before them stay complete.
OPTIONAL = frozenset({"retrieval", "consistency", "magnitude", "cluster", "model_only"})
# Pairs columns that repeat per threshold label (e.g. recalled_0.05_0.95).
PER_THRESHOLD = ("recalled_{threshold}", "also_recalled_{threshold}")

COLUMNS: dict[str, dict[str, str]] = {
    "recall": {
        "embedder": "embedder name (registry name, or confounder:<name> for a confounder-only map)",
        "source": "relationship source (CORUM, HuMAP, Reactome, SIGNOR, StringDB; planted on simulated screens)",
        "threshold": "percentile threshold pair, e.g. 0.05_0.95",
        "recall": "share of the source's known pairs beyond either threshold",
        "ci_low": "95% CI, lower end: bootstrap over connected components of the source's pair graph (complexes), "
                  "or over genes when one component dominates (summary.json bootstrap.unit); Wilson at 0 and 1",
        "ci_high": "95% CI, upper end (as ci_low)",
        "adjusted_for": "'' = raw; else '+'-joined confounders regressed out (density, intensity, focus, plate, position)",
        "mechanism": "'' = all pairs; else the planted mechanism (or unplanted) the pairs belong to",
        "n_pairs": "known pairs scored",
        "null_size": "random pairs in the null the percentiles come from",
        "null_model": "the null pairs are judged against: 'all' = every pair of perturbations (efaar's); "
                      "'matched:density' (or 'matched:density+intensity', ...) = only pairs whose two members fall "
                      "in the same confounder cells as the known pair (bench.matched_null; bins in summary.json)",
        "reason": "why the row has no number (e.g. too few pairs for a matched null, or 'explained by density': "
                  "nothing was left of the embedding after the adjustment), else ''",
        "probe_r2": "adjusted rows: cross-validated R^2 of the adjusted embedding predicting what was adjusted for "
                    "(about 0 when the adjustment worked); raw rows: empty",
        "still_planted": "adjusted rows of a simulated screen: share of the recalled pairs that are still planted by "
                         "the mechanism adjusted for (density, intensity); else empty",
    },
    "pairs": {
        "source": "relationship source",
        "entity1": "first perturbation of the pair (sorted)",
        "entity2": "second perturbation of the pair",
        "embedder": "embedder name",
        "adjusted_for": "'' = raw; else '+'-joined confounders regressed out",
        "cosine": "cosine similarity of the two perturbations in the map",
        "percentile": "percentile of that cosine among random pairs (a fraction, 0..1)",
        "recalled_{threshold}": "True when the percentile is beyond either threshold",
        "also_recalled_{threshold}": "'+'-joined baselines that also recall the pair, 'alone', or '' when not recalled",
        "mechanism": "planted mechanism of the pair (simulated screens only)",
        "null_model": "'all' = percentile among all pairs; 'matched:<confounders>' = percentile within the pair's "
                      "confounder cell (bench.matched_null)",
        "null_cell": "the matched cell the pair was judged in (e.g. 'density bins 1&2 of 6'); '' for 'all'",
    },
    "probes": {
        "embedder": "embedder name",
        "confounder": "confounder the linear probe predicts (cell_count, intensity_<CH>, focus, plate, ...)",
        "metric": "r2 (regression), accuracy or chance (plate classification)",
        "value": "the metric's value",
    },
    "cka": {
        "embedder_a": "embedder name",
        "embedder_b": "embedder name",
        "cka": "linear CKA of the two well-level embeddings (1 = same geometry)",
    },
    "activity": {
        "embedder": "embedder name",
        "perturbation": "perturbation",
        "metric": "activity (replicates vs controls) or consistency (replicates vs each other)",
        "mean_average_precision": "mean average precision of the replicates' retrieval",
        "corrected_p_value": "permutation p-value, FDR-corrected",
        "below_corrected_p": "True when corrected_p_value < 0.05",
    },
    "comparisons": {
        "embedder_a": "embedder name",
        "embedder_b": "baseline it is compared with",
        "source": "relationship source",
        "threshold": "percentile threshold pair",
        "adjusted_for": "'' = raw; else '+'-joined confounders regressed out",
        "diff": "recall of a minus recall of b on the same pairs",
        "ci_low": "95% paired bootstrap CI of diff, lower end",
        "ci_high": "95% paired bootstrap CI of diff, upper end",
        "p_value": "paired bootstrap p-value of a > b (the same resampled complexes or genes for both)",
        "null_model": "'all' or 'matched:<confounders>': the null both embedders' flags come from",
        "p_adjusted": "p_value Holm-adjusted across the comparisons shown together (one null, threshold, adjustment)",
    },
    "model_only": {
        "embedder": "a model (kind model)",
        "source": "relationship source",
        "threshold": "percentile threshold pair",
        "count": "known pairs the model recalls that no baseline (kinds baseline, handcrafted; not null) recalls",
        "chance_mean": "the same count for the model's map with its perturbation labels permuted: mean",
        "chance_low": "... 2.5th percentile over the permutations",
        "chance_high": "... 97.5th percentile over the permutations",
        "n_permutations": "label permutations behind the chance level",
        "baselines": "'+'-joined embedders counted as baselines",
    },
    "retrieval": {
        "embedder": "embedder name",
        "label": "moa or target",
        "level": "well (each well a query) or treatment (wells of one compound at one concentration aggregated); "
                 "both on the normalised wells of the recall maps' recipe, never counting the same compound",
        "metric": "nn_accuracy, nn_chance, mean_map or fraction_significant",
        "value": "the metric's value",
        "ci_low": "95% bootstrap CI, lower end (over queries for nn_accuracy, over MOAs for mean_map; else empty)",
        "ci_high": "95% bootstrap CI, upper end",
        "n": "queries (nn_*) or MOAs (mean_map, fraction_significant) scored",
    },
    # bench.efaar_suite: efaar-benchmarking 1.0's other benchmarks, on the recall maps' recipe
    "consistency": {
        "embedder": "embedder name",
        "perturbation": "perturbation ('' on a not-applicable row)",
        "avgcossim": "mean cosine similarity of the perturbation's replicate wells (efaar's "
                     "pert_signal_consistency_benchmark)",
        "pval": "share of null perturbations whose replicate mean cosine is at least as high",
        "null": "which null: negative-control pseudo-perturbations (control wells in groups of the replicate "
                "count) or a user list of non-expressed genes",
        "null_size": "null perturbations",
        "note": "'' = scored; 'not applicable: <why>' (no number), or why this perturbation has none",
    },
    "magnitude": {
        "embedder": "embedder name",
        "perturbation": "perturbation ('' on a not-applicable row)",
        "edist": "energy distance of the perturbation's wells to the control sample (efaar's "
                 "pert_signal_magnitude_benchmark, geomloss x2)",
        "pval": "share of null perturbations farther from the controls",
        "null": "which null (as in consistency); control pseudo-perturbations come from half the control wells, "
                "the reference sample from the other half",
        "null_size": "null perturbations",
        "n_controls": "control wells in the reference sample (at most 1,000, as efaar)",
        "note": "'' = scored; 'not applicable: <why>' (efaar needs 5 wells per perturbation), or why none",
    },
    "cluster": {
        "embedder": "embedder name",
        "cluster": "CORUM complex ('' on a not-applicable row)",
        "within_cossim_mean": "mean cosine of the complex's genes with each other in the map (efaar's cluster_benchmark)",
        "between_cossim_mean": "mean cosine of the complex's genes with every other gene of the map",
        "cluster_size": "complex genes in the map (at least 10, efaar's default)",
        "not_cluster_size": "other genes of the map",
        "ks_stat": "two-sample Kolmogorov-Smirnov statistic, within against between cosines",
        "ks_pval": "its p-value (scipy ks_2samp, as efaar)",
        "genes": "space-joined complex genes in the map",
        "note": "'' = scored; 'not applicable: <why>' (no complex has 10 genes in the map)",
    },
}
_STR, _F, _I, _B = str, float, int, bool
COL_DTYPES: dict[str, dict[str, type]] = {
    "recall": dict(embedder=_STR, source=_STR, threshold=_STR, recall=_F, ci_low=_F, ci_high=_F,
                   adjusted_for=_STR, mechanism=_STR, n_pairs=_I, null_size=_I, null_model=_STR, reason=_STR,
                   probe_r2=_F, still_planted=_F),
    "pairs": {"source": _STR, "entity1": _STR, "entity2": _STR, "embedder": _STR, "adjusted_for": _STR,
              "cosine": _F, "percentile": _F, "recalled_{threshold}": _B, "also_recalled_{threshold}": _STR,
              "mechanism": _STR, "null_model": _STR, "null_cell": _STR},
    "probes": dict(embedder=_STR, confounder=_STR, metric=_STR, value=_F),
    "cka": dict(embedder_a=_STR, embedder_b=_STR, cka=_F),
    "activity": dict(embedder=_STR, perturbation=_STR, metric=_STR, mean_average_precision=_F,
                     corrected_p_value=_F, below_corrected_p=_B),
    "comparisons": dict(embedder_a=_STR, embedder_b=_STR, source=_STR, threshold=_STR, adjusted_for=_STR,
                        diff=_F, ci_low=_F, ci_high=_F, p_value=_F, null_model=_STR, p_adjusted=_F),
    "model_only": dict(embedder=_STR, source=_STR, threshold=_STR, count=_I, chance_mean=_F, chance_low=_F,
                       chance_high=_F, n_permutations=_I, baselines=_STR),
    "retrieval": dict(embedder=_STR, label=_STR, level=_STR, metric=_STR, value=_F, ci_low=_F, ci_high=_F, n=_I),
    "consistency": dict(embedder=_STR, perturbation=_STR, avgcossim=_F, pval=_F, null=_STR, null_size=_I, note=_STR),
    "magnitude": dict(embedder=_STR, perturbation=_STR, edist=_F, pval=_F, null=_STR, null_size=_I, n_controls=_I,
                      note=_STR),
    "cluster": dict(embedder=_STR, cluster=_STR, within_cossim_mean=_F, between_cossim_mean=_F, cluster_size=_I,
                    not_cluster_size=_I, ks_stat=_F, ks_pval=_F, genes=_STR, note=_STR),
}
# Columns where an empty string carries meaning ('' = raw / all pairs): CSV would read them as NaN.
EMPTY_MEANS = ("adjusted_for", "mechanism", "reason", "null_cell", "note")
# The all-pairs null (bench.matched_null.NULL_ALL): rows written before null_model existed are this.
NULL_ALL = "all"
HAS_NULL_MODEL = ("recall", "pairs", "comparisons")

DEFAULT_RECIPE = {"method": "pca_centerscale", "aggregation": "mean", "adjust": []}


def results_dir(screen, out=None) -> Path:
    return Path(out) if out is not None else Path(screen.results_dir)


def file_names(*, required_only: bool = False) -> list[str]:
    """The file names ``run_benchmark`` writes, in order (for messages, status lists, docs)."""
    return [f for k, f in FILES.items() if not (required_only and k in OPTIONAL)]


def result_path(screen, table: str, out=None) -> Path:
    if table not in FILES:
        raise KeyError(f"unknown results table {table!r}; tables are {', '.join(FILES)}")
    return results_dir(screen, out) / FILES[table]


def table_columns(table: str, thresholds=()) -> list[str]:
    """The columns of ``table`` in written order; per-threshold columns expanded for ``thresholds``."""
    cols = []
    for c in COLUMNS[table]:
        if "{threshold}" in c:
            cols += [c.format(threshold=t) for t in thresholds]
        else:
            cols.append(c)
    return cols


def write_results(screen, tables: dict, summary: dict, *, out=None) -> dict[str, Path]:
    """Write every table of a benchmark run (``tables``: name -> DataFrame, keys of ``FILES``)
    and ``summary.json``, each atomically. An optional table that is empty is not written."""
    unknown = set(tables) - set(FILES)
    if unknown:
        raise KeyError(f"unknown results table(s) {', '.join(sorted(unknown))}")
    out_dir = results_dir(screen, out)
    out_dir.mkdir(parents=True, exist_ok=True)
    written = {}
    for name, fname in FILES.items():
        path = out_dir / fname
        if name == "summary":
            atomic.write_json(path, summary)
        elif name in tables:
            df = tables[name]
            if name in OPTIONAL and not len(df):
                continue
            if fname.endswith(".parquet"):
                atomic.write_parquet(df, path, metadata={"thresholds": list(summary.get("thresholds", []))})
            else:
                atomic.write_csv(df, path)
        else:
            continue
        written[name] = path
    return written


def read_table(path, table: str, *, null_model: str | None = NULL_ALL):
    """One results file as written (``''`` restored where it means raw / all pairs).

    recall, pairs and comparisons carry ``null_model``; files written before it get ``all``. By
    default only the all-pairs rows are returned, so a view built for one null never counts a pair
    twice; ``null_model=None`` returns every null, a label (``matched:density``) only that one."""
    path = Path(path)
    if table == "summary":
        try:
            return json.loads(path.read_text())
        except json.JSONDecodeError:
            return {}
    if path.suffix == ".parquet":
        df = pd.read_parquet(path)
    else:
        df = pd.read_csv(path, keep_default_na=False, na_values=[""])
    for c in EMPTY_MEANS:
        if c in df.columns:
            df[c] = df[c].astype(object).where(df[c].notna(), "").astype(str)
    if table == "retrieval" and "level" not in df.columns:  # written before levels: raw wells
        df.insert(2, "level", "well")
    if table in HAS_NULL_MODEL:
        if "null_model" not in df.columns:
            df["null_model"] = NULL_ALL
        df["null_model"] = df["null_model"].astype(object).where(df["null_model"].notna(), NULL_ALL).astype(str)
        if null_model is not None:
            df = df[df["null_model"] == null_model].reset_index(drop=True)
    return df


def read_results(screen, *, out=None, tables=None, null_model: str | None = NULL_ALL) -> dict:
    """{table: DataFrame (summary: dict)} for each results file present; absent ones are None.
    ``null_model``: as :func:`read_table` (default the all-pairs rows; None: every null)."""
    res = {}
    for name in (tables or FILES):
        p = result_path(screen, name, out)
        res[name] = read_table(p, name, null_model=null_model) if p.is_file() else None
    return res


def read_summary(screen, out=None) -> dict:
    p = result_path(screen, "summary", out)
    return read_table(p, "summary") if p.is_file() else {}


def map_recipe(screen, out=None) -> dict:
    """How the benchmark built its maps: ``{method, aggregation, adjust}`` from summary.json
    (the defaults of ``run_benchmark`` when there is no run yet)."""
    s = read_summary(screen, out)
    recipe = dict(DEFAULT_RECIPE)
    if s.get("recipe"):
        recipe.update(s["recipe"])
    elif s.get("map"):  # summaries written before the recipe was recorded on its own
        recipe["method"] = s["map"].get("normalization", recipe["method"])
        recipe["aggregation"] = s["map"].get("aggregation", recipe["aggregation"])
        recipe["adjust"] = [a for a in str(s.get("adjusted_for", "")).split("+") if a]
    recipe["adjust"] = list(recipe["adjust"])
    return recipe


def describe_markdown() -> str:
    """The results layout as the Markdown docs/design.md carries (a test keeps the two equal)."""
    lines = []
    for name, fname in FILES.items():
        if name == "summary":
            lines.append(f"- `{fname}`: embedders, baselines, sources, thresholds, warnings, timings, the "
                         "map recipe (`recipe`: method, aggregation, adjust) that `map_recipe` reads back, and "
                         "`matched_null`: per matched null, the bins used per confounder, cells, smallest cell; `kinds` "
                         "(model, handcrafted, baseline or null per embedder), `bootstrap` (the resampled unit per "
                         "source), `adjustment` (density polynomial degree, the negligible-variance cut, directions "
                         "kept and dropped per embedder, and which embedders had nothing left), `not_applicable` (raw maps "
                         "whose cosines tie everywhere, with the reason; their recall rows carry no number) and "
                         "`efaar_null` (the null of the consistency and magnitude benchmarks).")
            continue
        opt = {"retrieval": " (only when the screen has moa/target labels)",
               "model_only": " (only when a model is benchmarked)"}.get(
            name, " (only when the screen has control wells)" if name in OPTIONAL else "")
        lines.append(f"- `{fname}`{opt}:")
        for col, meaning in COLUMNS[name].items():
            lines.append(f"  - `{col}` ({COL_DTYPES[name][col].__name__}): {meaning}")
    return "\n".join(lines)
