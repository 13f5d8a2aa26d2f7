"""Confounder-matched nulls: judge each known pair against random pairs whose two members share its
confounder levels, not against all pairs.

Regressing a confounder out (``bench.adjust``) assumes its effect is linear and separable. The
matched null assumes nothing about the effect: a pair of two low-density perturbations is compared
only with other pairs of two low-density perturbations, so whatever density does to an embedding,
it does it to the pair and to its null alike.

- **Levels** (:func:`perturbation_levels`): for each perturbation of the map and each confounder,
  the mean over its wells of the value standardised on its batch's controls (log1p for counts).
  Density and focus are scalars; intensity is one value per channel; plate is the set of plates
  the perturbation was screened on.
- **Cells** (:func:`null_cells`): scalar levels are cut into quantile bins per member and a pair's
  cell is the unordered pair of its members' bins. Plate: "shares a plate" or "does not". Intensity
  with several channels: what makes two members alike is the direction of their channel shifts, so
  its cell is the quantile bin of the cosine between the two members' channel levels (a pair-level
  bin; one channel falls back to member bins). Several confounders: the joint cells.
- **Coarsening** (:func:`choose_bins`): every non-empty cell must hold at least ``min_pairs`` null
  pairs (500). While one does not, the confounder with the most bins loses one; the bins used are
  recorded. Below 2 bins there is nothing left to match on: the null is reported as too small.
- **Recall** (:func:`matched_recall`): within each cell the thresholds are the same percentiles,
  found by the same order-statistic rule as ``bench.recall`` (efaar's); a known pair is recalled
  when its cosine is beyond its own cell's thresholds. Its percentile is taken within its cell.

Vectorised: one pass over the rows of the cosine matrix writes the null and each null pair's cell
code (int16/int32), a stable sort on the codes (radix for 16-bit) groups the cells, and each cell's
cut values come from ``np.partition``; nothing is O(N log N) in floats.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from ..errors import BenchmarkError
from .recall import (DEFAULT_THRESHOLDS, check_map, cosine_matrix, match_pairs, normalize_thresholds,
                     null_cuts, null_ranks, relationship_tables, threshold_label, _source_codes)

MATCHABLE = ("density", "intensity", "focus", "plate")
NULL_ALL = "all"
MIN_PAIRS = 500
START_BINS = 6  # per member, as in the prototype (6 cell-count bins per member)
START_PAIR_BINS = 12  # pair-level bins (intensity direction) hold N/bins pairs each, so start finer
# where a profiles-only dataset keeps its cell counts (CellProfiler / JUMP names first after ours)
COUNT_COLUMNS = ("cell_count", "Count_Cells", "Count_Nuclei", "Metadata_Count_Cells", "Cells_Count")


# -- names ------------------------------------------------------------------------------------


def parse_matched(spec) -> list[list[str]]:
    """``"density,intensity,density+plate"`` (or a list) -> ``[["density"], ["intensity"],
    ["density", "plate"]]``: a comma separates nulls, ``+`` joins confounders into one joint null."""
    if spec is None or spec == "" or spec == []:
        return []
    items = spec.split(",") if isinstance(spec, str) else list(spec)
    out = []
    for item in items:
        names = item if isinstance(item, (list, tuple)) else [s.strip() for s in str(item).split("+")]
        names = [n.removeprefix("matched:") for n in names if n]
        if not names:
            continue
        for n in names:
            if n not in MATCHABLE:
                raise BenchmarkError(f"unknown confounder {n!r} for --matched-null; choose from {', '.join(MATCHABLE)} "
                                     "(comma: separate nulls, +: one joint null)")
        names = list(dict.fromkeys(names))
        if names not in out:
            out.append(names)
    return out


def null_model_label(confounders) -> str:
    """``all`` for no confounder, else ``matched:density+intensity`` (the ``null_model`` column)."""
    confounders = list(confounders or [])
    return NULL_ALL if not confounders else "matched:" + "+".join(confounders)


# -- levels -----------------------------------------------------------------------------------


def _standardise_on_controls(values: np.ndarray, batch: np.ndarray, ctrl: np.ndarray) -> np.ndarray:
    """(value - control mean) / control sd within each batch (the whole screen when a batch has
    fewer than two controls, or its controls do not vary)."""
    values = np.asarray(values, dtype=float)
    out = np.empty_like(values)
    g_mu = values[ctrl].mean(axis=0) if ctrl.sum() else values.mean(axis=0)
    g_sd = values[ctrl].std(axis=0) if ctrl.sum() > 1 else values.std(axis=0)
    g_sd = np.where(g_sd > 0, g_sd, 1.0)
    for b in pd.unique(batch):
        m = batch == b
        c = m & ctrl
        mu, sd = (values[c].mean(axis=0), values[c].std(axis=0)) if c.sum() > 1 else (g_mu, g_sd)
        sd = np.where(sd > 0, sd, g_sd)
        out[m] = (values[m] - mu) / sd
    return out


def _whiten_on_controls(z: np.ndarray, batch: np.ndarray, ctrl: np.ndarray, eps: float = 1e-6) -> np.ndarray:
    """Several channels: standardised on the controls' covariance too (ZCA per batch), so channels
    that move together in controls (all stains dim when cells are sparse) count once. The maps are
    built the same way (PCA on controls, then scaled), so the levels' geometry is the map's."""
    out = np.empty_like(z)
    for b in pd.unique(batch):
        m = batch == b
        c = m & ctrl
        ref = z[c] if c.sum() > z.shape[1] else z[ctrl] if ctrl.sum() > z.shape[1] else z
        cov = np.cov(ref, rowvar=False)
        w, v = np.linalg.eigh(cov)
        keep = w > eps * max(w.max(), eps)
        out[m] = 0.0
        out[m] = (z[m] - ref.mean(axis=0)) @ v[:, keep] @ np.diag(1 / np.sqrt(w[keep])) @ v[:, keep].T
    return out


def perturbation_levels(obs: pd.DataFrame, confounders: pd.DataFrame | None, control, labels,
                        names=MATCHABLE) -> tuple[dict, dict[str, str]]:
    """Each perturbation's level per confounder, aligned to ``labels`` (the map's rows).

    Returns ``(levels, skipped)``: ``levels[name]`` is an (n,) array (density, focus, intensity of
    one channel), an (n, channels) array (intensity) or an (n, plates) boolean matrix (plate);
    ``skipped[name]`` is the one line saying why a confounder cannot be matched (absent, constant,
    or no count column on a profiles-only dataset)."""
    labels = pd.Index(pd.Series(labels).astype(str))
    obs = obs.reset_index(drop=True)
    if confounders is not None:
        conf = confounders.set_index("well_id").reindex(obs["well_id"]).reset_index(drop=True)
        conf = conf.drop(columns=[c for c in ("batch", "plate") if c in conf.columns])
        table = pd.concat([obs.drop(columns=[c for c in conf.columns if c in obs.columns]), conf], axis=1)
    else:
        table = obs
    pert = table["perturbation"].astype(str).to_numpy()
    ctrl = pert == str(control)
    batch = table["batch"].astype(str).to_numpy() if "batch" in table else np.zeros(len(table), dtype=object)
    levels, skipped = {}, {}
    for name in names:
        if name == "plate":
            if "plate" not in table:
                skipped[name] = "matched null plate: the metadata has no plate column; matched:plate skipped"
                continue
            plates = table["plate"].astype(str)
            m = pd.crosstab(pert, plates).reindex(labels).fillna(0).to_numpy() > 0
            if m.shape[1] < 2 or (m == m[0]).all():
                skipped[name] = (f"matched null plate: every perturbation was screened on the same plate set "
                                 f"({m.shape[1]} plate(s)); matched:plate skipped")
                continue
            levels[name] = m
            continue
        if name == "density":
            cols = [c for c in COUNT_COLUMNS if c in table.columns][:1]
            if not cols:
                where = "the confounder table (embeddings/confounders.parquet) or the metadata" \
                    if confounders is not None else "the metadata (no confounder table: a profiles-only dataset?)"
                skipped[name] = (f"matched null density: no cell-count column in {where}; looked for "
                                 f"{', '.join(COUNT_COLUMNS)}; matched:density skipped")
                continue
        elif name == "intensity":
            cols = [c for c in table.columns if str(c).startswith("intensity_")]
            if not cols:
                skipped[name] = ("matched null intensity: no intensity_<channel> column in the confounder table "
                                 "(run `bioviz embed`); matched:intensity skipped")
                continue
        else:
            cols = [name] if name in table.columns else []
            if not cols:
                skipped[name] = f"matched null {name}: no {name} column in the confounder table; matched:{name} skipped"
                continue
        v = table[cols].apply(pd.to_numeric, errors="coerce").to_numpy(dtype=float)
        if not np.isfinite(v).all():
            bad = int((~np.isfinite(v)).any(axis=1).sum())
            skipped[name] = f"matched null {name}: {bad} wells have no value in {cols[0]}; matched:{name} skipped"
            continue
        if name == "density":
            v = np.log1p(np.clip(v, 0, None))
        z = _standardise_on_controls(v, batch, ctrl)
        if z.shape[1] > 1:
            z = _whiten_on_controls(z, batch, ctrl)
        lev = pd.DataFrame(z).groupby(pert).mean().reindex(labels).to_numpy()
        if np.isnan(lev).any():
            missing = labels[np.isnan(lev).any(axis=1)][0]
            raise BenchmarkError(f"matched null {name}: perturbation {missing!r} of the map has no wells in the metadata")
        keep = lev.std(axis=0) > 1e-12
        if not keep.any():
            skipped[name] = (f"matched null {name}: {', '.join(cols)} is constant across perturbations; "
                             f"matched:{name} skipped")
            continue
        lev = lev[:, keep]
        levels[name] = lev[:, 0] if lev.shape[1] == 1 else lev
    return levels, skipped


# -- cells ------------------------------------------------------------------------------------


def quantile_bins(level: np.ndarray, bins: int) -> np.ndarray:
    """Equal-count bins of a scalar level (ties share a bin), 0..bins-1."""
    r = pd.Series(level).rank(method="average").to_numpy()
    return np.minimum(bins - 1, np.floor((r - 0.5) / len(level) * bins)).astype(np.int64)


def _unit_rows(x: np.ndarray) -> np.ndarray:
    nrm = np.linalg.norm(x, axis=1, keepdims=True)
    return x / np.where(nrm > 0, nrm, 1.0)


@dataclass
class Component:
    """One confounder's part of a pair's cell: member bins, plate sharing or a pair-level bin."""

    name: str
    kind: str  # member | plate | pair
    bins: int
    member: np.ndarray | None = None  # member: bin per perturbation
    plates: np.ndarray | None = None  # plate: (n, plates) float matrix
    unit: np.ndarray | None = None  # pair: unit-norm level vectors
    edges: np.ndarray | None = None  # pair: inner bin edges of the level cosine

    @property
    def n_codes(self) -> int:
        return self.bins * self.bins if self.kind == "member" else self.bins

    def row(self, i: int) -> np.ndarray:
        """Codes of the pairs (i, j), j > i."""
        if self.kind == "member":
            a, b = self.member[i], self.member[i + 1:]
            return np.minimum(a, b) * self.bins + np.maximum(a, b)
        if self.kind == "plate":
            return (self.plates[i + 1:] @ self.plates[i] > 0).astype(np.int64)
        return np.searchsorted(self.edges, self.unit[i + 1:] @ self.unit[i], side="right")

    def pairs(self, i: np.ndarray, j: np.ndarray) -> np.ndarray:
        if self.kind == "member":
            a, b = self.member[i], self.member[j]
            return np.minimum(a, b) * self.bins + np.maximum(a, b)
        if self.kind == "plate":
            return (np.einsum("ij,ij->i", self.plates[i], self.plates[j]) > 0).astype(np.int64)
        return np.searchsorted(self.edges, np.einsum("ij,ij->i", self.unit[i], self.unit[j]), side="right")

    def describe(self, code: int) -> str:
        if self.kind == "member":
            lo, hi = divmod(int(code), self.bins)
            return f"{self.name} bins {lo + 1}&{hi + 1} of {self.bins}"
        if self.kind == "plate":
            return "shares a plate" if code else "no shared plate"
        return f"{self.name} direction bin {int(code) + 1} of {self.bins}"


def _component(name: str, level: np.ndarray, bins: int) -> Component:
    if name == "plate":
        return Component(name, "plate", 2, plates=np.asarray(level, dtype=float))
    level = np.asarray(level, dtype=float)
    if level.ndim == 1:
        return Component(name, "member", bins, member=quantile_bins(level, bins))
    unit = _unit_rows(level)
    comp = Component(name, "pair", bins, unit=unit)
    n = len(unit)
    # quantile edges of the level cosine over all pairs (a row sample for large maps)
    rows = np.arange(n - 1) if n <= 3000 else np.random.default_rng(0).choice(n - 1, 3000, replace=False)
    sample = np.concatenate([unit[i + 1:] @ unit[i] for i in rows])
    comp.edges = np.quantile(sample, np.arange(1, bins) / bins) if bins > 1 else np.zeros(0)
    return comp


@dataclass
class Cells:
    """The cells of a matched null: per null pair and per known pair a cell code, and what was used."""

    confounders: list[str]
    components: list[Component]
    bins: dict[str, int]
    n: int  # perturbations

    @property
    def label(self) -> str:
        return null_model_label(self.confounders)

    def _radix(self) -> list[int]:
        out, m = [], 1
        for c in reversed(self.components):
            out.insert(0, m)
            m *= c.n_codes
        return out

    @property
    def n_codes(self) -> int:
        m = 1
        for c in self.components:
            m *= c.n_codes
        return m

    def row_codes(self, i: int) -> np.ndarray:
        code = np.zeros(self.n - i - 1, dtype=np.int64)
        for c, r in zip(self.components, self._radix()):
            code += c.row(i) * r
        return code

    def pair_codes(self, i, j) -> np.ndarray:
        i, j = np.asarray(i), np.asarray(j)
        code = np.zeros(len(i), dtype=np.int64)
        for c, r in zip(self.components, self._radix()):
            code += c.pairs(i, j) * r
        return code

    def null_codes(self) -> np.ndarray:
        """Cell code of every pair (i, j), i < j, in row-major order (the order of ``upper_null``);
        computed once (the cells depend on the levels only, so every embedder reuses them)."""
        if getattr(self, "_codes", None) is not None:
            return self._codes
        dtype = np.int16 if self.n_codes < 2 ** 15 else np.int32
        out = np.empty(self.n * (self.n - 1) // 2, dtype=dtype)
        pos = 0
        for i in range(self.n - 1):
            k = self.n - i - 1
            out[pos:pos + k] = self.row_codes(i)
            pos += k
        self._codes = out
        return out

    def describe(self, code: int) -> str:
        parts = []
        for c, r in zip(self.components, self._radix()):
            parts.append(c.describe((int(code) // r) % c.n_codes))
        return ", ".join(parts)


def null_cells(levels: dict, confounders, bins: dict[str, int] | None = None) -> Cells:
    """Cells for ``confounders`` (names present in ``levels``) at the given bins per confounder."""
    comps = []
    used = {}
    for name in confounders:
        lev = levels[name]
        b = 2 if name == "plate" else int((bins or {}).get(name, START_BINS))
        comps.append(_component(name, lev, b))
        used[name] = b
    n = len(next(iter(levels[c] for c in confounders)))
    return Cells(list(confounders), comps, used, n)


def _start_bins(name: str, level) -> int:
    if name == "plate":
        return 2
    return START_PAIR_BINS if np.asarray(level).ndim > 1 else START_BINS


def _cell_counts(cells: Cells) -> np.ndarray:
    """Null pairs per cell code: from the bin sizes alone for one member-binned confounder
    (k(k-1)/2 on the diagonal, k_a k_b off it), else by counting every pair's code."""
    if len(cells.components) == 1 and cells.components[0].kind == "member":
        comp = cells.components[0]
        k = np.bincount(comp.member, minlength=comp.bins).astype(np.int64)
        counts = np.triu(np.outer(k, k), 1)
        counts[np.diag_indices(comp.bins)] = k * (k - 1) // 2
        return counts.reshape(-1)
    return np.bincount(cells.null_codes().astype(np.int64), minlength=cells.n_codes)


def choose_bins(levels: dict, confounders, min_pairs: int = MIN_PAIRS) -> tuple[Cells | None, dict]:
    """Coarsen until every non-empty cell holds >= ``min_pairs`` null pairs.

    Starts at 6 quantile bins per member (12 pair-level bins for intensity direction); while a cell
    is sparse, the confounder with the most bins loses one (ties: the one listed last, so the first
    named keeps its detail longest). Returns ``(cells, info)``; ``cells`` is None when even 2 bins
    each (plate: shares / does not) leave a cell short, and ``info['reason']`` gives the count."""
    bins = {c: _start_bins(c, levels[c]) for c in confounders}
    n = len(np.asarray(levels[confounders[0]]))
    n_null = n * (n - 1) // 2
    while True:
        cells = null_cells(levels, confounders, bins)
        counts = _cell_counts(cells)
        nz = counts[counts > 0]
        smallest = int(nz.min()) if len(nz) else 0
        if smallest >= min_pairs:
            return cells, {"bins": dict(bins), "cells": int(len(nz)), "smallest_cell": smallest, "null_pairs": n_null}
        coarsenable = [c for c in confounders if c != "plate" and bins[c] > 2]
        if not coarsenable:
            why = (f"too few pairs for a matched null: {n_null} null pairs; even the coarsest cells "
                   f"({', '.join(f'{c}: {b} bins' for c, b in bins.items())}) leave one with {smallest} "
                   f"< {min_pairs}")
            return None, {"bins": dict(bins), "cells": int(len(nz)), "smallest_cell": smallest,
                          "null_pairs": n_null, "reason": why}
        most = max(bins[c] for c in coarsenable)
        victim = [c for c in coarsenable if bins[c] == most][-1]
        bins[victim] -= 1


# -- recall -----------------------------------------------------------------------------------


def upper_null(matrix: np.ndarray) -> np.ndarray:
    """Every ``matrix[i, j]``, i < j, row-major (the order of :meth:`Cells.null_codes`)."""
    from .recall import compact_upper

    if not matrix.flags.c_contiguous:
        matrix = np.ascontiguousarray(matrix)
    return compact_upper(matrix)  # c-contiguous: row-major, in place


@dataclass
class CellCuts:
    """Per cell: its null size and, per threshold pair, its two cut values (``bench.recall.NullCuts``)."""

    codes: np.ndarray  # cell codes present
    cuts: dict = field(default_factory=dict)  # code -> NullCuts
    sorted_null: dict = field(default_factory=dict)  # code -> that cell's null values (for ranks)


def cell_cuts(null: np.ndarray, codes: np.ndarray, thresholds, keep_values: bool = False) -> CellCuts:
    """Group the null by cell (stable sort of the small-integer codes) and cut each cell."""
    order = np.argsort(codes, kind="stable")
    grouped = null[order]
    counts = np.bincount(codes[order].astype(np.int64))
    present = np.flatnonzero(counts)
    starts = np.concatenate([[0], np.cumsum(counts)])
    out = CellCuts(codes=present)
    for c in present:
        seg = grouped[starts[c]:starts[c + 1]]
        if keep_values:
            seg = seg.copy()
            out.sorted_null[int(c)] = seg
        out.cuts[int(c)] = null_cuts(seg, thresholds)  # partitions seg in place (same multiset)
    return out


def _block_cuts(features, comp: Component, matched: dict, thresholds, keep_values: bool):
    """One member-binned confounder (density alone, the common case): with the perturbations
    ordered by bin, cell (a, b) is the block rows-in-a x columns-in-b of the cosine matrix (its
    upper triangle when a == b), so no per-pair cell code or sort is needed. A pair's value is
    the upper-triangle cell in that order, the same number its cell's null holds.
    Measured at 8,000 genes: about the plain recall's time (benchmarks/recall_speed.py)."""
    from .recall import compact_upper

    order = np.argsort(comp.member, kind="stable")
    pos = np.empty_like(order)
    pos[order] = np.arange(len(order))
    x = features.to_numpy() if isinstance(features, pd.DataFrame) else np.asarray(features)
    matrix = cosine_matrix(x[order])
    queries = {}
    for s, (sub, i, j) in matched.items():
        a, b = pos[i], pos[j]
        queries[s] = matrix[np.minimum(a, b), np.maximum(a, b)]
    counts = np.bincount(comp.member, minlength=comp.bins)
    starts = np.concatenate([[0], np.cumsum(counts)])
    out = CellCuts(codes=np.zeros(0, dtype=np.int64))
    present = []
    n_null = 0
    for a in range(comp.bins):
        for b in range(a, comp.bins):
            block = matrix[starts[a]:starts[a + 1], starts[b]:starts[b + 1]]
            vals = compact_upper(block.copy()) if a == b else block.reshape(-1).copy()
            if len(vals) == 0:
                continue
            code = a * comp.bins + b
            present.append(code)
            n_null += len(vals)
            out.cuts[code] = null_cuts(vals, thresholds)
            if keep_values:
                out.sorted_null[code] = vals
    out.codes = np.array(present, dtype=np.int64)
    return queries, out, n_null


@dataclass
class MatchedRun:
    """What one map gives under one matched null (the ``RecallRun`` of ``bench.recall``)."""

    label: str
    table: pd.DataFrame  # source, null_distribution_size, query_distribution_size, recall_<l>_<r>
    pairs: dict[str, pd.DataFrame]  # entity1, entity2, cosine, cell, cell_size, percentile, recalled_*
    info: dict  # bins, cells, smallest cell, null pairs (and reason when there is no number)


def matched_recall(features, labels, levels: dict, confounders, *, sources=None, relationships=None,
                   thresholds=DEFAULT_THRESHOLDS, with_ranks: bool = False, min_pairs: int = MIN_PAIRS,
                   cells: Cells | None = None, what: str = "map") -> MatchedRun:
    """Recall of known relationships against a null matched on ``confounders``.

    ``levels``: :func:`perturbation_levels` for the map's ``labels``; ``cells``: reuse the cells
    chosen for another embedder of the same screen (the cells depend only on the levels). When even
    the coarsest cells are too sparse, the table's recall is NaN and ``info['reason']`` says why."""
    features, labels = check_map(features, labels, what=what)
    thresholds = normalize_thresholds(thresholds)
    confounders = list(confounders)
    info = {}
    if cells is None:
        cells, info = choose_bins(levels, confounders, min_pairs)
    label = null_model_label(confounders)
    tables = relationship_tables(sources, relationships)
    custom = set(relationships) if isinstance(relationships, dict) else ({"custom"} if relationships is not None else set())
    index = pd.Index(labels)
    from ..relationships import SOURCES

    matched = {}
    for name, rels in tables.items():
        codes = _source_codes(name) if name in SOURCES and name not in custom else None
        sub, i, j = match_pairs(rels, index, codes)
        if len(sub):
            matched[name] = (sub, i, j)
    if not matched:
        raise BenchmarkError("no known relationship matched the map's perturbations")
    labs = [threshold_label(p) for p in thresholds]
    if cells is None:
        rows = [{"source": s, "null_distribution_size": 0, "query_distribution_size": len(m[0]),
                 **{f"recall_{l}": np.nan for l in labs}} for s, m in matched.items()]
        return MatchedRun(label, pd.DataFrame(rows), {}, info)

    if len(cells.components) == 1 and cells.components[0].kind == "member":
        queries, cc, n_null = _block_cuts(features, cells.components[0], matched, thresholds, with_ranks)
    else:
        matrix = cosine_matrix(features)
        queries = {s: matrix[i, j] for s, (sub, i, j) in matched.items()}
        null = upper_null(matrix)
        del matrix
        n_null = len(null)
        cc = cell_cuts(null, cells.null_codes(), thresholds, keep_values=with_ranks)
    info = info or {"bins": dict(cells.bins)}
    info.setdefault("cells", len(cc.codes))
    rows, pairs = [], {}
    for s, (sub, i, j) in matched.items():
        q = queries[s]
        pc = cells.pair_codes(i, j)
        flags = [np.zeros(len(q), dtype=bool) for _ in thresholds]
        size = np.zeros(len(q), dtype=np.int64)
        pct = np.full(len(q), np.nan)
        for c in np.unique(pc):
            m = pc == c
            cut = cc.cuts[int(c)]
            size[m] = cut.size
            for f, flag in zip(flags, cut.recalled(q[m])):
                f[m] = flag
            if with_ranks:
                lt, le = null_ranks(cc.sorted_null[int(c)], q[m])
                pct[m] = (lt + le) / (2.0 * cut.size)
        pdf = sub.copy()
        pdf["cosine"] = q
        names = {int(c): cells.describe(c) for c in np.unique(pc)}
        pdf["cell"] = [names[int(c)] for c in pc]
        pdf["cell_size"] = size
        if with_ranks:
            pdf["percentile"] = pct
        for lab, f in zip(labs, flags):
            pdf[f"recalled_{lab}"] = f
        pairs[s] = pdf
        rows.append({"source": s, "null_distribution_size": int(n_null), "query_distribution_size": len(q),
                     **{f"recall_{lab}": float(f.mean()) for lab, f in zip(labs, flags)}})
    return MatchedRun(label, pd.DataFrame(rows), pairs, info)


def cell_null(features, labels, levels: dict, cells: Cells, i: int, j: int) -> np.ndarray:
    """The null cosines of the cell that pair (i, j) of the map falls in (for the drill-down's
    histogram); the same numbers the pair's matched percentile was taken among."""
    matrix = cosine_matrix(features)
    target = int(cells.pair_codes(np.array([i]), np.array([j]))[0])
    out = []
    for r in range(cells.n - 1):
        m = cells.row_codes(r) == target
        if m.any():
            out.append(matrix[r, r + 1:][m])
    return np.concatenate(out) if out else np.zeros(0)


# -- the benchmark's part ---------------------------------------------------------------------


def benchmark_matched(maps: dict, obs: pd.DataFrame, confounders: pd.DataFrame | None, control, specs, *,
                      sources=None, relationships=None, thresholds=DEFAULT_THRESHOLDS,
                      min_pairs: int = MIN_PAIRS, warnings: list | None = None, say=None):
    """Every embedder's map (``maps``: name -> map DataFrame) under every matched null of ``specs``
    (:func:`parse_matched`). Returns ``(pair_frames, failed, info)``:

    - ``pair_frames``: one long table per (null, embedder, source) with ``null_model``;
    - ``failed``: ``(null_model, reason)`` for a null that gives no number (too few pairs);
    - ``info``: per null model, the bins used, cells, smallest cell and null size (summary.json).

    A confounder that is absent or constant adds one line to ``warnings`` and its nulls are skipped.
    The cells depend on the confounder levels only, so they are chosen once per null and reused."""
    from .maps import feature_columns

    warnings = warnings if warnings is not None else []
    say = say or (lambda msg: None)
    specs = parse_matched(specs)
    frames, failed, info = [], [], {}
    if not specs or not maps:
        return frames, failed, info
    first = next(iter(maps.values()))
    labels = first["perturbation"].astype(str).to_numpy()
    needed = list(dict.fromkeys(c for spec in specs for c in spec))
    levels, skipped = perturbation_levels(obs, confounders, control, labels, needed)
    for line in skipped.values():
        warnings.append(line)
    for spec in specs:
        label = null_model_label(spec)
        absent = [c for c in spec if c not in levels]
        if absent:
            info[label] = {"skipped": "; ".join(skipped[c] for c in absent)}
            continue
        cells, chosen = choose_bins(levels, spec, min_pairs)
        info[label] = chosen
        if cells is None:
            warnings.append(f"{label}: {chosen['reason']}")
            failed.append((label, chosen["reason"]))
            continue
        for name, m in maps.items():
            say(f"recall: {name} under {label}")
            lab = m["perturbation"].astype(str).to_numpy()
            if not np.array_equal(lab, labels):  # a map with other perturbations: its own levels
                lv, _ = perturbation_levels(obs, confounders, control, lab, spec)
                c2, _ = choose_bins(lv, spec, min_pairs)
                if c2 is None:
                    continue
                lev_cells = c2
            else:
                lev_cells = cells
            run = matched_recall(m[feature_columns(m, exclude=("perturbation",))], lab, levels, spec,
                                 sources=sources, relationships=relationships, thresholds=thresholds,
                                 with_ranks=True, cells=lev_cells, what=f"map of {name}")
            for src, pdf in run.pairs.items():
                frames.append(pdf.rename(columns={"cell": "null_cell"}).assign(
                    source=src, embedder=name, adjusted_for="", null_model=label,
                    null_size=int(run.table["null_distribution_size"].iloc[0])))
    return frames, failed, info
