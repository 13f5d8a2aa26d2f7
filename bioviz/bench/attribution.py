"""Pair attribution: for each recalled known pair, is it this embedder's alone, or do baselines
recall it too?  A model whose recalled pairs are all recalled by cell count has learned density."""
from __future__ import annotations

import pandas as pd

BASELINES = (
    "pixel_stats", "cell_count", "morphology", "structure", "untrained_vit", "untrained_resnet",
    "plate_layout", "random",
)


def is_baseline(name: str) -> bool:
    """The one definition of a diagnostic baseline, used by the benchmark and the dashboard alike:
    the registered baselines, every untrained network variant, and confounder-only maps."""
    return name in BASELINES or name.startswith(("untrained_", "confounder:"))


def embedder_kind(name: str) -> str:
    """``model`` or ``baseline`` (``is_baseline``), the label every table and figure shows."""
    return "baseline" if is_baseline(name) else "model"


def models_first(names) -> list[str]:
    """The order every view lists embedders in: models, then baselines, each alphabetical (no repeats)."""
    return sorted(dict.fromkeys(names), key=lambda n: (is_baseline(n), n))


def attribute(pairs: pd.DataFrame, flag_cols: list[str], baselines=None) -> pd.DataFrame:
    """Add ``also_<flag>`` columns to a long pairs table (one row per pair and embedder).

    For a recalled row: ``+``-joined baselines (other than the row's embedder) that recall the same
    pair of the same source, or ``alone``; for a row not recalled: empty.
    """
    pairs = pairs.copy()
    names = pairs["embedder"].unique()
    baselines = [b for b in (baselines if baselines is not None else [n for n in names if is_baseline(n)])]
    key = ["adjusted_for", "source", "entity1", "entity2"] if "adjusted_for" in pairs else ["source", "entity1", "entity2"]
    for flag in flag_cols:
        base = pairs[pairs["embedder"].isin(baselines) & pairs[flag]]
        by_pair = base.groupby(key)["embedder"].agg(lambda s: sorted(set(s))).rename("_by")
        merged = pairs[key + ["embedder"]].merge(by_pair, left_on=key, right_index=True, how="left")
        out = []
        for rec, emb, by in zip(pairs[flag].to_numpy(), merged["embedder"].to_numpy(), merged["_by"].to_numpy()):
            if not rec:
                out.append("")
                continue
            others = [b for b in (by if isinstance(by, list) else []) if b != emb]
            out.append("+".join(others) if others else "alone")
        pairs[f"also_{flag}"] = out
    return pairs
