"""Pair attribution: for each recalled known pair, is it this embedder's alone, or do baselines
recall it too?  A model whose recalled pairs are all recalled by cell count has learned density.

The baselines a pair can be attributed to are the ``baseline`` and ``handcrafted`` kinds; the
``null`` kind (random) is not one: a pair that noise recalls is chance, not an explanation.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from ..embed.kinds import KINDS, kind_of  # noqa: F401

ATTRIBUTION_KINDS = ("baseline", "handcrafted")


def embedder_kind(name: str, kinds: dict | None = None) -> str:
    """``model``, ``handcrafted``, ``baseline`` or ``null`` (``kinds``: recorded kinds, e.g. a
    results summary's, which know a precomputed table's ``kind`` option)."""
    if kinds and name in kinds:
        return kinds[name]
    return kind_of(name)


def recorded_kinds(recall: pd.DataFrame) -> dict[str, str]:
    """{embedder: kind} from a ``kind`` column (the dashboard adds summary.json's kinds), else {}."""
    if "kind" not in recall:
        return {}
    return recall.dropna(subset=["kind"]).groupby("embedder")["kind"].first().to_dict()


def is_baseline(name: str, kinds: dict | None = None) -> bool:
    """The one definition of a diagnostic comparison (anything but a model), used by the
    benchmark and the dashboard alike."""
    return embedder_kind(name, kinds) != "model"


def attribution_baselines(names, kinds: dict | None = None) -> list[str]:
    """The embedders a recalled pair can be attributed to: baselines and handcrafted, not nulls."""
    return [n for n in names if embedder_kind(n, kinds) in ATTRIBUTION_KINDS]


def models_first(names, kinds: dict | None = None) -> list[str]:
    """The order every view lists embedders in: models, then handcrafted, baselines and nulls,
    each alphabetical (no repeats)."""
    rank = {k: i for i, k in enumerate(KINDS)}
    return sorted(dict.fromkeys(names), key=lambda n: (rank[embedder_kind(n, kinds)], n))


def attribute(pairs: pd.DataFrame, flag_cols: list[str], baselines=None, kinds=None) -> pd.DataFrame:
    """Add ``also_<flag>`` columns to a long pairs table (one row per pair and embedder).

    For a recalled row: ``+``-joined baselines (other than the row's embedder) that recall the same
    pair of the same source, or ``alone``; for a row not recalled: empty.
    """
    pairs = pairs.copy()
    names = pairs["embedder"].unique()
    baselines = list(baselines) if baselines is not None else attribution_baselines(names, kinds)
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


def chance_alone(unit: np.ndarray, i: np.ndarray, j: np.ndarray, cuts, taken: np.ndarray,
                 n_perm: int = 200, seed: int = 0) -> np.ndarray:
    """Pairs a map would recall that no baseline recalls, if its labels meant nothing.

    ``unit``: the model's map, rows scaled to unit length; ``i, j``: the map rows of the known
    pairs; ``cuts``: the map's null cut values (label permutation leaves the null unchanged: it is
    the same set of cosines); ``taken``: per pair, recalled by some baseline.  Returns, per
    permutation of the map's perturbation labels, one count per threshold (n_perm x thresholds).
    """
    rng = np.random.default_rng(seed)
    out = np.zeros((n_perm, len(cuts.cuts)), dtype=np.int64)
    free = ~np.asarray(taken, dtype=bool)
    for p in range(n_perm):
        perm = rng.permutation(len(unit))
        q = np.einsum("ij,ij->i", unit[perm[i]], unit[perm[j]])
        out[p] = [int((f & free).sum()) for f in cuts.recalled(q)]
    return out
