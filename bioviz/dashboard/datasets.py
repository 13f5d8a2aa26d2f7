"""Finding datasets, reading what has been computed for them, and normalising result tables.

The result files are written by other modules (``bioviz.embed``, ``bioviz.bench``); readers here
accept the small spelling differences a table can have (``lower``/``upper`` or ``threshold``)
so the pages see one shape.
"""
from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pandas as pd

from ..errors import DatasetError

REPO = Path(__file__).resolve().parents[2]
DATA_ROOT = REPO / "data"
RESULT_FILES = ("recall.csv", "pairs.parquet", "probes.csv", "cka.csv", "activity.csv", "summary.json")

# Baselines answer "could something trivial have scored this?"; they are recognised by name
# when the embedder registry does not say.
_BASELINE_PATTERNS = (
    "random", "pixel", "cell_count", "cellcount", "count", "untrained", "morpholog", "cellprofiler",
    "plate", "layout", "intensity", "stats", "baseline", "structure", "confounder:",
)


# -- datasets -----------------------------------------------------------------------------------
def list_datasets(data_root: Path | str = DATA_ROOT) -> list[str]:
    """Folder names under ``data/`` that hold a dataset.json, sorted, ``demo`` first."""
    root = Path(data_root)
    if not root.is_dir():
        return []
    names = sorted(p.name for p in root.iterdir() if (p / "dataset.json").is_file())
    return sorted(names, key=lambda n: (n != "demo", n))


def resolve_dataset(value: str | None, data_root: Path | str = DATA_ROOT) -> Path:
    """``?dataset=`` value -> folder: a name under ``data/`` or a path (absolute or ~)."""
    if not value or not str(value).strip():
        raise DatasetError("no dataset chosen: pick one in the sidebar or add ?dataset=demo to the URL")
    value = str(value).strip()
    named = Path(data_root) / value
    if "/" not in value and named.is_dir():
        return named
    path = Path(value).expanduser()
    if path.is_dir():
        return path.resolve()
    if named.is_dir():
        return named
    raise DatasetError(f"dataset {value!r} is neither a folder under {data_root} nor an existing path")


def dataset_label(path: Path, data_root: Path | str = DATA_ROOT) -> str:
    """The shortest value that ``resolve_dataset`` maps back to ``path`` (for the URL)."""
    path = Path(path)
    try:
        if path.resolve().parent == Path(data_root).resolve():
            return path.name
    except OSError:
        pass
    return str(path)


def files_fingerprint(*paths: Path) -> tuple:
    """(path, size, mtime) of each existing file: a cache key that changes when a file does."""
    out = []
    for p in paths:
        p = Path(p)
        if p.is_file():
            st = p.stat()
            out.append((str(p), st.st_size, st.st_mtime_ns))
        else:
            out.append((str(p), None, None))
    return tuple(out)


# -- embedders ---------------------------------------------------------------------------------
def embedding_file(root: Path, name: str) -> Path:
    return Path(root) / "embeddings" / f"{name.replace(':', '__')}.parquet"


def computed_embedders(root: Path) -> list[str]:
    """Embedders with a parquet in ``embeddings/`` (confounders.parquet is not one)."""
    d = Path(root) / "embeddings"
    if not d.is_dir():
        return []
    hidden = _hidden_embedders()
    names = [p.stem.replace("__", ":") for p in d.glob("*.parquet")
             if p.stem != "confounders" and not p.name.startswith(".")]
    names = [n for n in names if n not in hidden]
    return sorted(names, key=lambda n: (embedder_kind(n) != "model", n))


def _hidden_embedders() -> set[str]:
    """Helper caches the embed module keeps beside real embeddings (e.g. ``focus``, an input to the
    confounder table): not embedders a user chose, so not shown as maps."""
    try:
        from ..embed import list_embedders

        return set(list_embedders(include_hidden=True)) - set(list_embedders())
    except Exception:
        return set()


def registered_embedders() -> list[str]:
    try:
        from ..embed import list_embedders
    except ImportError:
        return []
    try:
        try:  # only those that run without a file of the user's (weights, snapshot, table)
            return list(list_embedders(runnable_only=True))
        except TypeError:
            return list(list_embedders())
    except Exception:  # a registry that cannot list is not a reason to break the page
        return []


def embedder_kind(name: str) -> str:
    """``model`` or ``baseline``: the registry's word when it has one, else the name's."""
    try:
        from .. import embed as _embed

        kind_fn = getattr(_embed, "embedder_kind", None)
        if kind_fn is not None:
            kind = kind_fn(name)
            if kind in ("model", "baseline"):
                return kind
    except Exception:
        pass
    try:  # the benchmark's own list decides what it attributes to baselines
        from ..bench.attribution import is_baseline

        if is_baseline(name):
            return "baseline"
    except ImportError:
        pass
    low = name.lower()
    if low.startswith(("timm:", "model", "weakly", "trained", "openphenom", "dino", "mae")) and "untrained" not in low:
        return "model"
    return "baseline" if any(p in low for p in _BASELINE_PATTERNS) else "model"


def read_embedding(root: Path, name: str) -> pd.DataFrame:
    path = embedding_file(root, name)
    if not path.is_file():
        raise DatasetError(f"embedder {name!r} has not been computed for this dataset "
                           f"(run `bioviz embed --embedders {name}` or use Compute on Home)")
    df = pd.read_parquet(path)
    if "well_id" not in df.columns:
        raise DatasetError(f"{path.name} has no well_id column")
    df["well_id"] = df["well_id"].astype(str)
    return df


def feature_columns(df: pd.DataFrame) -> list[str]:
    return [c for c in df.columns if re.fullmatch(r"f\d+", str(c))]


def read_confounders(root: Path) -> pd.DataFrame | None:
    path = Path(root) / "embeddings" / "confounders.parquet"
    if not path.is_file():
        return None
    df = pd.read_parquet(path)
    df["well_id"] = df["well_id"].astype(str)
    return df


# -- status: what is computed and what is missing -------------------------------------------------
def dataset_status(root: Path, registered: list[str] | None = None) -> pd.DataFrame:
    """One row per expected artefact: what it is, whether it exists, and when it was written."""
    root = Path(root)
    registered = registered_embedders() if registered is None else registered
    computed = set(computed_embedders(root))
    rows = []
    for name in sorted(set(registered) | computed, key=lambda n: (embedder_kind(n) != "model", n)):
        path = embedding_file(root, name)
        rows.append(dict(item=name, kind=f"embedding ({embedder_kind(name)})", computed=name in computed,
                         file=str(path.relative_to(root)), written=_mtime(path)))
    conf = root / "embeddings" / "confounders.parquet"
    rows.append(dict(item="confounders", kind="confounder table", computed=conf.is_file(),
                     file="embeddings/confounders.parquet", written=_mtime(conf)))
    for f in RESULT_FILES:
        p = root / "results" / f
        rows.append(dict(item=f, kind="benchmark result", computed=p.is_file(), file=f"results/{f}",
                         written=_mtime(p)))
    return pd.DataFrame(rows)


def _mtime(path: Path) -> str:
    if not Path(path).is_file():
        return ""
    return pd.Timestamp(Path(path).stat().st_mtime, unit="s").strftime("%Y-%m-%d %H:%M")


def missing_embedders(status: pd.DataFrame) -> list[str]:
    emb = status[status["kind"].str.startswith("embedding")]
    return emb.loc[~emb["computed"], "item"].tolist()


# -- result tables ----------------------------------------------------------------------------------
def _first(df: pd.DataFrame, *names: str) -> str | None:
    for n in names:
        if n in df.columns:
            return n
    return None


def threshold_label(lo, hi) -> str:
    def fmt(v):
        v = float(v)
        return str(int(v)) if v.is_integer() else f"{v:g}"
    return f"{fmt(lo)}/{fmt(hi)}"


def null_recall(threshold: str) -> float:
    """Recall of a map with no information: the share of random pairs beyond both thresholds."""
    lo, hi = (float(x) for x in re.split(r"[/\-_, ]+", str(threshold).strip())[:2])
    if hi <= 1 and lo < 1:  # thresholds given as fractions
        return lo + (1 - hi)
    return lo / 100 + (1 - hi / 100)


def normalize_recall(df: pd.DataFrame) -> pd.DataFrame:
    """-> embedder, source, threshold ('5/95'), recall, ci_low, ci_high, adjusted_for, mechanism, kind."""
    df = df.copy()
    lo = _first(df, "lower", "threshold_low", "lower_threshold", "pct_low", "low")
    hi = _first(df, "upper", "threshold_high", "upper_threshold", "pct_high", "high")
    if lo and hi:
        df["threshold"] = [threshold_label(a, b) for a, b in zip(df[lo], df[hi])]
    else:
        th = _first(df, "threshold", "thresholds", "threshold_pair", "pair")
        if th is None:
            raise DatasetError("recall.csv has no threshold column (threshold or lower/upper)")
        df["threshold"] = df[th].astype(str).str.replace(r"[-_, ]+", "/", regex=True)
    for col, alts in (("ci_low", ("ci_lo", "lo", "recall_low")), ("ci_high", ("ci_hi", "hi", "recall_high"))):
        src = _first(df, col, *alts)
        df[col] = df[src] if src else np.nan
    adj = _first(df, "adjusted_for", "adjust", "adjustment")
    df["adjusted_for"] = df[adj].astype(object).fillna("").astype(str) if adj else ""
    df["adjusted_for"] = df["adjusted_for"].replace({"nan": "", "none": "", "None": ""})
    mech = _first(df, "mechanism", "planted_mechanism", "stratum")
    df["mechanism"] = df[mech].astype(object).fillna("").astype(str).replace({"nan": "", "all": ""}) if mech else ""
    if "null" not in df.columns:
        df["null"] = [null_recall(t) for t in df["threshold"]]
    df["kind"] = [embedder_kind(e) for e in df["embedder"]]
    return df


def normalize_probes(df: pd.DataFrame) -> pd.DataFrame:
    """-> embedder, confounder, metric, value (+ chance when given)."""
    df = df.copy()
    if "metric" not in df.columns:
        df["metric"] = "r2"
    val = _first(df, "value", "score", "r2")
    df = df.rename(columns={val: "value"})
    df["metric"] = df["metric"].astype(str).str.lower().str.replace("²", "2")
    return df


def normalize_cka(df: pd.DataFrame) -> pd.DataFrame:
    """A square embedder x embedder matrix from either a long or a wide table."""
    a = _first(df, "embedder1", "embedder_a", "a", "x")
    b = _first(df, "embedder2", "embedder_b", "b", "y")
    v = _first(df, "cka", "value", "score")
    if a and b and v:
        m = df.pivot_table(index=a, columns=b, values=v, aggfunc="mean")
        names = sorted(set(m.index) | set(m.columns), key=lambda n: (embedder_kind(n) != "model", n))
        m = m.reindex(index=names, columns=names)
        m = m.combine_first(m.T).reindex(index=names, columns=names)
        arr = m.to_numpy(dtype=float, copy=True)
        np.fill_diagonal(arr, 1.0)
        return pd.DataFrame(arr, index=names, columns=names)
    idx = _first(df, "embedder", "Unnamed: 0", "index")
    m = df.set_index(idx) if idx else df
    m.index.name = None
    return m.astype(float)


def normalize_pairs(df: pd.DataFrame) -> pd.DataFrame:
    """Raw (unadjusted) rows only, percentiles in percent."""
    df = df.copy()
    if "adjusted_for" in df.columns:
        adj = df["adjusted_for"].fillna("").astype(str).replace({"nan": "", "None": ""})
        df = df[adj == ""].reset_index(drop=True)
    for c in ("entity1", "entity2", "embedder", "source"):
        if c in df.columns:
            df[c] = df[c].astype(str)
    if "percentile" in df.columns and df["percentile"].max() <= 1.0:
        df["percentile"] = df["percentile"] * 100  # stored as a fraction: show as percent
    return df


def recalled_columns(pairs: pd.DataFrame) -> list[str]:
    return [c for c in pairs.columns if str(c).startswith("recalled")]


def summarize_activity(activity: pd.DataFrame) -> pd.DataFrame:
    """Per embedder: share of perturbations significantly active / consistent, and mean mAP.

    Accepts the long per-perturbation table (``metric, mean_average_precision, below_corrected_p``)
    or an already per-embedder table (returned as is)."""
    if {"metric", "below_corrected_p"} <= set(activity.columns):
        g = activity.groupby(["embedder", "metric"])
        frac = g["below_corrected_p"].mean().unstack("metric").add_prefix("fraction significant: ")
        out = frac
        if "mean_average_precision" in activity.columns:
            out = out.join(g["mean_average_precision"].mean().unstack("metric").add_prefix("mean mAP: "))
        out.columns.name = None
        return out.reset_index()
    return activity


def read_summary(root: Path) -> dict:
    p = Path(root) / "results" / "summary.json"
    if not p.is_file():
        return {}
    try:
        return json.loads(p.read_text())
    except json.JSONDecodeError:
        return {}


# -- the headline scorecard ---------------------------------------------------------------------------
def scorecard(recall: pd.DataFrame, probes: pd.DataFrame | None, threshold: str | None = None,
              adjusted: str | None = None) -> pd.DataFrame:
    """Each embedder beside the baselines: recall per source, its drop when adjusted, cell-count R².

    ``adjusted`` is the ``adjusted_for`` value whose drop to show; by default the first one that
    mentions cell count (the density adjustment), else any adjustment present.
    """
    r = recall[recall["mechanism"] == ""]
    if threshold is None:
        ths = list(r["threshold"].unique())
        threshold = ths[0] if ths else None
    r = r[r["threshold"] == threshold]
    raw = r[r["adjusted_for"] == ""].pivot_table(index="embedder", columns="source", values="recall")
    raw.columns.name = None
    out = raw.add_prefix("recall ")
    adj_options = [a for a in r["adjusted_for"].unique() if a]
    if adjusted is None and adj_options:
        density = [a for a in adj_options if "cell_count" in a or "density" in a]
        adjusted = (density or adj_options)[0]
    if adjusted:
        adj = r[r["adjusted_for"] == adjusted].pivot_table(index="embedder", columns="source", values="recall")
        adj.columns.name = None
        drop = (raw - adj).mean(axis=1)
        out["mean recall"] = raw.mean(axis=1)
        out[f"drop adjusted for {adjusted}"] = drop
    else:
        out["mean recall"] = raw.mean(axis=1)
    if probes is not None and len(probes):
        cc = probes[(probes["confounder"] == "cell_count") & (probes["metric"].isin(["r2", "r^2"]))]
        out["cell-count R²"] = cc.groupby("embedder")["value"].mean()
    recall_cols = sorted([c for c in out.columns if c.startswith("recall ")],
                         key=lambda c: (c != "recall planted", c))
    out = out[[c for c in out.columns if not c.startswith("recall ")] + recall_cols]
    out.insert(0, "kind", [embedder_kind(e) for e in out.index])
    out = out.reset_index().rename(columns={"index": "embedder"})
    out = out.sort_values(["kind", "mean recall"], ascending=[False, False], key=None)
    # Models first (kind 'model' > 'baseline' alphabetically in reverse), best recall first.
    out.attrs["threshold"] = threshold
    out.attrs["adjusted"] = adjusted
    return out.reset_index(drop=True)
