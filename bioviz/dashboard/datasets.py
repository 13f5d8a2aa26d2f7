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
    from ..embed import list_embedders

    return set(list_embedders(include_hidden=True)) - set(list_embedders())


def registered_embedders() -> list[str]:
    """Those that run without a file of the user's (weights, snapshot, table): what `all` means."""
    from ..embed import list_embedders

    return list(list_embedders(runnable_only=True))


def embedder_kind(name: str) -> str:
    """``model`` or ``baseline``, by the benchmark's own definition (``bench.attribution``)."""
    from ..bench.attribution import is_baseline

    return "baseline" if is_baseline(name) else "model"


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
def null_recall(threshold: str) -> float:
    """Recall of a map with no information: the share of random pairs beyond both thresholds."""
    lo, hi = (float(x) for x in re.split(r"[/_]", str(threshold).strip())[:2])
    return lo + (1 - hi)


def normalize_recall(df: pd.DataFrame) -> pd.DataFrame:
    """recall.csv as ``bioviz.bench`` writes it, for display: threshold ``0.05/0.95``, empty strings
    for raw recall and for all mechanisms, the random-null recall, and each embedder's kind."""
    df = df.copy()
    df["threshold"] = df["threshold"].astype(str).str.replace("_", "/", regex=False)
    for col in ("adjusted_for", "mechanism"):
        df[col] = df[col].astype(object).fillna("").astype(str)
    df["null"] = [null_recall(t) for t in df["threshold"]]
    df["kind"] = [embedder_kind(e) for e in df["embedder"]]
    return df


def normalize_cka(df: pd.DataFrame) -> pd.DataFrame:
    """cka.csv (long: embedder_a, embedder_b, cka) as a square matrix, models first."""
    m = df.pivot_table(index="embedder_a", columns="embedder_b", values="cka", aggfunc="mean")
    names = sorted(set(m.index) | set(m.columns), key=lambda n: (embedder_kind(n) != "model", n))
    m = m.reindex(index=names, columns=names)
    m = m.combine_first(m.T).reindex(index=names, columns=names)
    arr = m.to_numpy(dtype=float, copy=True)
    np.fill_diagonal(arr, 1.0)
    return pd.DataFrame(arr, index=names, columns=names)


def normalize_pairs(df: pd.DataFrame) -> pd.DataFrame:
    """Raw (unadjusted) rows only, percentiles in percent (pairs.parquet stores fractions)."""
    df = df[df["adjusted_for"].fillna("").astype(str) == ""].reset_index(drop=True)
    for c in ("entity1", "entity2", "embedder", "source"):
        df[c] = df[c].astype(str)
    df["percentile"] = df["percentile"] * 100
    return df


def recalled_columns(pairs: pd.DataFrame) -> list[str]:
    return [c for c in pairs.columns if str(c).startswith("recalled")]


def summarize_activity(activity: pd.DataFrame) -> pd.DataFrame:
    """Per embedder: share of perturbations significantly active / consistent, and mean mAP."""
    g = activity.groupby(["embedder", "metric"])
    out = g["below_corrected_p"].mean().unstack("metric").add_prefix("fraction significant: ")
    out = out.join(g["mean_average_precision"].mean().unstack("metric").add_prefix("mean mAP: "))
    out.columns.name = None
    return out.reset_index()


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
