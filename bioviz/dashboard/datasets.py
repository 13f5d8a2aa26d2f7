"""Finding datasets, what is computed for them, and result tables shaped for display.

This module reads no dataset file itself: ``embeddings/`` is read through ``bioviz.embed`` (which
refuses stale or foreign caches) and ``results/`` through ``bioviz.bench.results`` (which names
the files and their columns). Here they are only listed and reshaped for the pages.
"""
from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd

from ..bench.adjust import default_adjustment
from ..bench.attribution import embedder_kind  # noqa: F401  (defined below plots/, re-exported for pages)
from ..bench.attribution import models_first, recorded_kinds
from ..bench.probes import ACCURACY, CHANCE, R2
from ..bench.recall import null_recall  # noqa: F401
from ..errors import DatasetError

REPO = Path(__file__).resolve().parents[2]
DATA_ROOT = REPO / "data"

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
def registered_embedders() -> list[str]:
    """Those that run without a file of the user's (weights, snapshot, table): what `all` means
    (``bioviz embed --embedders all`` resolves to the same list)."""
    from ..embed import list_embedders

    return list(list_embedders(runnable_only=True))


def feature_columns(df: pd.DataFrame) -> list[str]:
    return [c for c in df.columns if re.fullmatch(r"f\d+", str(c))]


# -- status: what is computed and what is missing -------------------------------------------------
def dataset_status(screen, registered: list[str] | None = None) -> pd.DataFrame:
    """One row per expected artefact: what it is, its status (computed, stale: recompute, missing),
    and when it was written. ``screen``: a Screen (or a dataset folder, opened without image checks)."""
    from .. import embed
    from ..bench import results

    if not hasattr(screen, "embeddings_dir"):
        from ..screen import read_screen

        screen = read_screen(screen, check_images=False)
    root = Path(screen.root)
    registered = registered_embedders() if registered is None else registered
    states = embed.embedding_status(screen, registered)
    # plain words: Debian's Chromium draws a check-mark emoji as an empty box
    label = {embed.UP_TO_DATE: "computed", embed.MISSING: "missing"}  # stale and foreign: recompute
    try:  # embedders `all` leaves out here (no images, no trained model): nothing to compute
        not_applicable = embed.not_applicable_embedders(screen, "all")
    except Exception:
        not_applicable = {}
    rows = []
    for name in models_first(states):
        path = embed.embedding_file(screen, name)
        state = states[name]
        if state == embed.MISSING and name in not_applicable:
            rows.append(dict(item=name, kind=f"embedding ({embedder_kind(name)})", computed=True,
                             status=f"not applicable: {not_applicable[name]}", file="", written=""))
            continue
        rows.append(dict(item=name, kind=f"embedding ({embedder_kind(name)})", computed=state == embed.UP_TO_DATE,
                         status=label.get(state, embed.STALE), file=str(path.relative_to(root)), written=_mtime(path)))
    conf_state = embed.confounders_status(screen)
    conf = screen.embeddings_dir / "confounders.parquet"
    rows.append(dict(item="confounders", kind="confounder table", computed=conf_state == embed.UP_TO_DATE,
                     status=label.get(conf_state, embed.STALE), file=str(conf.relative_to(root)), written=_mtime(conf)))
    for name in results.FILES:
        p = results.result_path(screen, name)
        rows.append(dict(item=p.name, kind="benchmark result" + (" (optional)" if name in results.OPTIONAL else ""),
                         computed=p.is_file(), status=label[embed.UP_TO_DATE if p.is_file() else embed.MISSING],
                         file=str(p.relative_to(root)), written=_mtime(p)))
    return pd.DataFrame(rows)


def _mtime(path: Path) -> str:
    if not Path(path).is_file():
        return ""
    return pd.Timestamp(Path(path).stat().st_mtime, unit="s").strftime("%Y-%m-%d %H:%M")


def missing_embedders(status: pd.DataFrame) -> list[str]:
    """Embedders to (re)compute: missing, stale or foreign caches."""
    emb = status[status["kind"].str.startswith("embedding")]
    return emb.loc[~emb["computed"], "item"].tolist()


# -- result tables ----------------------------------------------------------------------------------


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
    names = models_first(set(m.index) | set(m.columns))
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


def probe_r2(probes: pd.DataFrame) -> pd.DataFrame:
    """Embedder x confounder matrix of the probes' R² (models first, cell_count the first column);
    empty when probes.csv has no regression probe."""
    m = probes[probes["metric"] == R2].pivot_table(index="embedder", columns="confounder", values="value")
    m = m.reindex(models_first(m.index))
    first = [c for c in ("cell_count",) if c in m.columns]
    m = m[first + [c for c in m.columns if c not in first]]
    m.columns.name = None
    return m


def plate_leakage(probes: pd.DataFrame, n_plates: int) -> pd.DataFrame:
    """Per embedder: accuracy of predicting the plate, and chance (always guessing the largest
    plate, as written by the probe; 1/plates when the file has no chance rows). Empty without a
    plate probe."""
    plate = probes[probes["confounder"] == "plate"]
    acc = plate[plate["metric"] == ACCURACY]
    leak = acc.groupby("embedder")["value"].mean().rename("accuracy").to_frame()
    ch = plate[plate["metric"] == CHANCE]
    leak["chance"] = ch.groupby("embedder")["value"].mean() if len(ch) else 1.0 / max(n_plates, 1)
    return leak.reset_index()


def retrieval_wide(retrieval: pd.DataFrame) -> pd.DataFrame:
    """retrieval.csv (long: embedder, label, metric, value) as one row per embedder, one column
    per ``label: metric``."""
    if "level" not in retrieval:
        retrieval = retrieval.assign(level="well")
    wide = retrieval.pivot_table(index="embedder", columns=["label", "level", "metric"], values="value")
    # 'moa: nn_accuracy' for well level (as before levels), 'moa treatment: nn_accuracy' otherwise
    wide.columns = [f"{a}{'' if lev == 'well' else ' ' + lev}: {b}" for a, lev, b in wide.columns]
    return wide.reset_index()


def retrieval_cis(retrieval: pd.DataFrame) -> pd.DataFrame:
    """Nearest-neighbour accuracy and mAP with their 95% CIs and chance, one row per embedder,
    label and level (models first): the MOA section's table."""
    r = retrieval if "level" in retrieval else retrieval.assign(level="well", ci_low=np.nan, ci_high=np.nan)
    keep = r[r["metric"].isin(["nn_accuracy", "mean_map"])]
    out = keep.pivot_table(index=["embedder", "label", "level"], columns="metric", values=["value", "ci_low", "ci_high"])
    out.columns = [f"{m}" if v == "value" else f"{m} {v.replace('ci_', 'CI ')}" for v, m in out.columns]
    chance = r[r["metric"] == "nn_chance"].set_index(["embedder", "label", "level"])["value"].rename("nn_chance")
    out = out.join(chance).reset_index()
    order = {e: i for i, e in enumerate(models_first(out["embedder"]))}
    cols = ["embedder", "label", "level"] + [c for c in ("nn_accuracy", "nn_accuracy CI low", "nn_accuracy CI high",
                                                         "nn_chance", "mean_map", "mean_map CI low", "mean_map CI high")
                                             if c in out]
    return out.sort_values(["label", "level", "embedder"], key=lambda s: s.map(order) if s.name == "embedder" else s)[cols]


def comparisons_at(comparisons: pd.DataFrame, threshold: str, adjusted=("",)) -> pd.DataFrame:
    """comparisons.csv rows at one threshold (shown as ``0.05/0.95``, written as ``0.05_0.95``) and
    the given ``adjusted_for`` labels ('' = raw)."""
    c = comparisons.copy()
    c["threshold"] = c["threshold"].astype(str).str.replace(r"[-_, ]+", "/", regex=True)
    return c[(c["threshold"] == threshold) & c["adjusted_for"].astype(object).fillna("").isin(list(adjusted))]


def nothing_left(recall: pd.DataFrame) -> dict[str, str]:
    """{embedder: confounder} for adjusted rows that have no number because nothing was left."""
    if "reason" not in recall:
        return {}
    r = recall[recall["reason"].astype(str).str.startswith("explained by")]
    return {e: str(why)[len("explained by "):] for e, why in r.groupby("embedder")["reason"].first().items()}


def not_applicable(recall: pd.DataFrame) -> dict[str, str]:
    """{embedder: reason} for maps that were not scored because their cosines tie everywhere
    (bench.recall.degenerate_map: one direction, e.g. a single count); an adjusted map's reason
    starts with "adjusted for <confounder>"."""
    if "reason" not in recall:
        return {}
    r = recall[recall["reason"].astype(str).str.startswith("not applicable")]
    out = {}
    for (e, adj), why in r.groupby(["embedder", r["adjusted_for"].fillna("").astype(str)])["reason"].first().items():
        why = str(why).removeprefix("not applicable: ")
        text = f"no score: {why}" if not adj else f"no score adjusted for {adj}: {why}"
        out[e] = "; ".join(x for x in (out.get(e, ""), text) if x)
    return out


def adjusted_probe(recall: pd.DataFrame) -> pd.DataFrame:
    """Per embedder and adjustment: the probe R² on the adjusted embedding, and (simulated screens)
    the share of recalled pairs still planted by the adjusted-for mechanism, per source."""
    if "probe_r2" not in recall:
        return pd.DataFrame()
    r = recall[(recall["adjusted_for"] != "") & recall["probe_r2"].notna() & (recall["mechanism"] == "")]
    if r.empty:
        return pd.DataFrame()
    out = r.groupby(["embedder", "adjusted_for"], sort=False).agg(
        **{"probe R² after adjustment": ("probe_r2", "first")}).reset_index()
    sp = r.pivot_table(index=["embedder", "adjusted_for"], columns="source", values="still_planted")
    out["still planted"] = sp.mean(axis=1).reindex(pd.MultiIndex.from_frame(out[["embedder", "adjusted_for"]])).to_numpy() \
        if len(sp) else float("nan")
    return out


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
    raw = r[r["adjusted_for"] == ""].pivot_table(index="embedder", columns="source", values="recall", dropna=False)
    raw.columns.name = None
    out = raw.add_prefix("recall ")
    # "mean recall" covers the five public sources only: planted is the simulator's truth (and
    # a subset of their union), not a sixth independent source
    from ..relationships import SOURCES

    public = [c for c in raw.columns if c in SOURCES] or list(raw.columns)
    adj_options = [a for a in r["adjusted_for"].unique() if a]
    if adjusted is None:
        adjusted = default_adjustment(adj_options)
    if adjusted:
        ra = r[r["adjusted_for"] == adjusted]
        adj = ra.pivot_table(index="embedder", columns="source", values="recall", dropna=False)
        adj.columns.name = None
        drop = (raw[public] - adj.reindex(columns=public)).mean(axis=1)
        out["mean recall"] = raw[public].mean(axis=1)
        out[f"drop adjusted for {adjusted}"] = drop
        if "reason" in ra:  # an embedding that is its confounder: said, never scored
            gone = ra[ra["reason"].astype(str).str.startswith("explained by")].groupby("embedder")["reason"].first()
            if len(gone):
                out["note"] = ""
                for e, why in gone.items():
                    if e in out.index:
                        out.loc[e, "note"] = f"nothing left after adjusting for {why[len('explained by '):]}"
    else:
        out["mean recall"] = raw[public].mean(axis=1)
    na = {e: why for e, why in not_applicable(r).items() if e in out.index}
    if na:  # maps with ties everywhere: said, never scored (their recall cells stay empty)
        if "note" not in out:
            out["note"] = ""
        for e, why in na.items():
            out.loc[e, "note"] = "; ".join(x for x in (out.loc[e, "note"], why) if x)
    if probes is not None and len(probes):
        cc = probes[(probes["confounder"] == "cell_count") & (probes["metric"] == R2)]
        out["cell-count R²"] = cc.groupby("embedder")["value"].mean()
    recall_cols = sorted([c for c in out.columns if c.startswith("recall ")],
                         key=lambda c: (c != "recall planted", c))
    out = out[[c for c in out.columns if not c.startswith("recall ")] + recall_cols]
    recorded = recorded_kinds(r)
    out.insert(0, "kind", [embedder_kind(e, recorded) for e in out.index])
    out = out.reset_index().rename(columns={"index": "embedder"})
    from ..embed.kinds import KINDS

    rank = {k: i for i, k in enumerate(KINDS)}
    out = out.assign(_rank=out["kind"].map(rank)).sort_values(["_rank", "mean recall"], ascending=[True, False])
    out = out.drop(columns="_rank")
    # Models first, then handcrafted, baselines and the null; best recall first within each.
    out.attrs["threshold"] = threshold
    out.attrs["adjusted"] = adjusted
    return out.reset_index(drop=True)
