"""Regress chosen confounders out of a well-level embedding before the map is built.

Adjusted recall asks: which relationships does an embedder still recall once everything that
a confounder explains is removed from every well's vector?  Three rules keep it from faking a
drop (or a rise):

* **Within batch.**  The fit is done separately in every batch (batch fixed effects, and the
  confounder's slope may differ between batches): a pooled fit leaves batch-specific density
  effects behind (pooled, ``pixel_stats`` still recalled 94 of its 112 planted-density pairs).
* **Flexible terms.**  Density enters as the count itself plus a polynomial of degree
  :data:`DENSITY_DEGREE` in log(1 + count); the degree is recorded with the result.
* **Nothing left is said, not computed.**  Residual directions whose variance is negligible
  (below :data:`NEGLIGIBLE` of one standardised feature) are dropped *before* any normalisation.
  Centre-scaling the ~1e-15 rounding noise that regressing count out of ``cell_count`` leaves
  used to give a map with 89.5% of gene pairs at |cos| > 0.99.  When no direction is left the
  embedding *is* the confounder: :class:`Adjusted` says so (``reason`` "explained by density")
  and no recall is computed.

A confounder column that is missing, constant, missing for some wells or collinear with batch
is reported in one line and skipped; the adjustment is never computed on such a column.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from ..errors import BenchmarkError

ADJUSTABLE = ("density", "intensity", "focus", "plate", "position")
DENSITY_DEGREE = 3
# A residual direction is "left" when its variance is at least this share of one standardised
# feature's variance (sd 1%).  Rounding leftovers are ~1e-30 of it; real signal is far above.
NEGLIGIBLE = 1e-4


class NothingLeft(BenchmarkError):
    """The embedding is (a function of) the confounder: nothing is left after adjusting."""

# The adjustment a view shows unless told otherwise, and the one Home's Compute runs: cell density is
# the confounder the baselines exist to expose (the cell_count baseline scores through it alone).
DEFAULT_ADJUST = "density"


def default_adjustment(labels) -> str | None:
    """Among ``adjusted_for`` labels (raw recall's empty label ignored): the first that adjusts for
    density (``density`` or a ``cell_count`` column), else the first, else None."""
    labels = [a for a in dict.fromkeys(labels) if a]
    density = [a for a in labels if "cell_count" in a or DEFAULT_ADJUST in a]
    return (density or labels or [None])[0]


def parse_adjust(spec) -> list[str]:
    """``"density,intensity"`` or a list -> checked names, in the order given, no repeats."""
    if spec is None or spec == "":
        return []
    names = [s.strip() for s in (spec.split(",") if isinstance(spec, str) else spec) if s and s.strip()]
    for n in names:
        if n not in ADJUSTABLE:
            raise BenchmarkError(f"unknown confounder {n!r} for --adjust; choose from {', '.join(ADJUSTABLE)}")
    return list(dict.fromkeys(names))


def _columns(confounders: pd.DataFrame, name: str) -> list[str]:
    if name == "density":
        return ["cell_count"]
    if name == "intensity":
        return [c for c in confounders.columns if str(c).startswith("intensity_")] or ["intensity_*"]
    if name == "focus":
        return ["focus"]
    if name == "position":
        return ["row", "col", "edge"]
    return ["plate"]


def _terms(confounders: pd.DataFrame, name: str, degree: int) -> np.ndarray:
    """The design block of one confounder (no intercept; batch effects are added per batch)."""
    if name == "density":
        count = confounders["cell_count"].to_numpy(dtype=float)
        z = np.log1p(np.clip(count, 0, None))
        z = (z - z.mean()) / (z.std() or 1.0)
        return np.column_stack([count] + [z ** k for k in range(1, degree + 1)])
    if name == "plate":
        return pd.get_dummies(confounders["plate"].astype(str), dtype=float).to_numpy()
    return confounders[_columns(confounders, name)].to_numpy(dtype=float)


def check_confounder(confounders: pd.DataFrame, name: str, batches=None) -> str:
    """"" when ``name`` can be adjusted for, else the one line saying why not (naming the column)."""
    cols = _columns(confounders, name)
    missing = [c for c in cols if c not in confounders.columns]
    if missing:
        return f"{name}: the confounder table has no column {missing[0]}; adjustment for {name} skipped"
    for c in cols:
        v = confounders[c]
        if c == "plate":
            bad = v.isna().to_numpy()
        else:
            num = pd.to_numeric(v, errors="coerce").to_numpy(dtype=float)
            bad = ~np.isfinite(num)
        if bad.any():
            ids = confounders["well_id"].to_numpy()[bad] if "well_id" in confounders else np.flatnonzero(bad)
            return (f"{name}: column {c} is missing for {int(bad.sum())} wells (e.g. {ids[0]}); "
                    f"adjustment for {name} skipped")
        if v.nunique(dropna=False) < 2:
            return f"{name}: column {c} is constant ({v.iloc[0]!r} in every well); adjustment for {name} skipped"
    if batches is not None:
        b = pd.Series(np.asarray(batches)).astype(str)
        x = _terms(confounders, name, 1)
        within = x - pd.DataFrame(x).groupby(b.to_numpy()).transform("mean").to_numpy()
        total = x.var(axis=0)
        col = np.flatnonzero(within.var(axis=0) <= 1e-10 * np.maximum(total, 1e-300))
        if len(col) == x.shape[1] or (name != "plate" and len(col)):
            what = cols[min(col[0], len(cols) - 1)] if name != "plate" else "plate"
            return (f"{name}: column {what} is collinear with batch (constant within every batch); "
                    f"adjustment for {name} skipped")
    return ""


@dataclass
class Adjusted:
    """An adjusted well-level embedding, or the statement that nothing is left."""

    embedding: pd.DataFrame | None   # well_id + f0..: residual directions kept; None if nothing left
    confounders: list[str]           # adjusted for
    skipped: dict[str, str] = field(default_factory=dict)   # confounder -> one-line reason
    degree: int = DENSITY_DEGREE
    kept: int = 0                    # residual directions kept
    dropped: int = 0                 # directions dropped as negligible
    reason: str = ""                 # "explained by density" when nothing is left

    @property
    def nothing_left(self) -> bool:
        return self.embedding is None


def _standardise_within(x: np.ndarray, batches: np.ndarray) -> np.ndarray:
    """Centre every batch and scale every feature by its pooled within-batch sd (constant -> 0)."""
    x = np.array(x, dtype=np.float64, copy=True)
    for b in pd.unique(batches):
        idx = batches == b
        x[idx] -= x[idx].mean(axis=0)
    sd = x.std(axis=0)
    keep = sd > 0
    x[:, ~keep] = 0.0
    x[:, keep] /= sd[keep]
    return x


def residualise(x: np.ndarray, design: np.ndarray, batches) -> np.ndarray:
    """Residuals of an OLS fit of every feature on ``[1, design]`` within each batch."""
    x = np.asarray(x, dtype=np.float64)
    batches = np.asarray(batches) if batches is not None else np.zeros(len(x))
    out = np.empty_like(x)
    for b in pd.unique(batches):
        idx = batches == b
        xb = x[idx]
        d = design[idx] - design[idx].mean(axis=0)
        sd = d.std(axis=0)
        d = d[:, sd > 0] / sd[sd > 0]
        r = xb - xb.mean(axis=0)
        if d.shape[1]:
            coef, *_ = np.linalg.lstsq(d, r, rcond=None)
            r = r - d @ coef
        out[idx] = r
    return out


def adjust(embedding: pd.DataFrame, confounders: pd.DataFrame, names, batches=None,
           *, degree: int = DENSITY_DEGREE, negligible: float = NEGLIGIBLE) -> Adjusted:
    """Adjust a well-level embedding (``well_id`` + features) for the named confounders.

    ``batches``: one label per row of ``embedding`` (the fit is done within each); None = one batch.
    The result's embedding holds the residual's non-negligible directions (scores on its
    principal axes, in units of the within-batch-standardised features), ready for any map recipe.
    """
    names = parse_adjust(names)
    if not names:
        return Adjusted(embedding, [], kept=embedding.shape[1] - 1)
    conf = confounders.set_index("well_id").reindex(embedding["well_id"])
    absent = conf.isna().all(axis=1)
    if absent.any():
        raise BenchmarkError(f"{int(absent.sum())} wells of the embedding have no row in the confounder "
                             f"table (e.g. {embedding['well_id'].iloc[int(np.flatnonzero(absent)[0])]})")
    conf = conf.reset_index()
    batches = np.zeros(len(embedding)) if batches is None else np.asarray(batches)
    if len(batches) != len(embedding):
        raise BenchmarkError(f"{len(batches)} batch labels for {len(embedding)} wells")
    skipped, blocks, used = {}, [], []
    for n in names:
        why = check_confounder(conf, n, batches if len(pd.unique(batches)) > 1 else None)
        if why:
            skipped[n] = why
            continue
        blocks.append(_terms(conf, n, degree))
        used.append(n)
    cols = [c for c in embedding.columns if c != "well_id"]
    x = _standardise_within(embedding[cols].to_numpy(dtype=np.float64), batches)
    if not used:
        return Adjusted(embedding, [], skipped, degree, kept=len(cols))
    r = residualise(x, np.hstack(blocks), batches)
    # principal axes of the residual; a direction's variance is s^2 / n, compared with one
    # standardised feature's (1)
    _, s, vt = np.linalg.svd(r, full_matrices=False)
    var = s ** 2 / len(r)
    keep = var > negligible
    if not keep.any():
        return Adjusted(None, used, skipped, degree, kept=0, dropped=len(s),
                        reason="explained by " + "+".join(used))
    scores = r @ vt[keep].T
    out = pd.DataFrame(scores, columns=[f"f{i}" for i in range(scores.shape[1])])
    out.insert(0, "well_id", embedding["well_id"].to_numpy())
    return Adjusted(out, used, skipped, degree, kept=int(keep.sum()), dropped=int((~keep).sum()))


def adjust_embedding(embedding: pd.DataFrame, confounders: pd.DataFrame, names, batches=None) -> pd.DataFrame:
    """The embedding with the named confounders regressed out (see :func:`adjust`).

    Raises :class:`NothingLeft` when the embedding is explained by them, and BenchmarkError
    when a named confounder cannot be used (constant, missing values, collinear with batch).
    """
    res = adjust(embedding, confounders, names, batches)
    if res.skipped:
        raise BenchmarkError(next(iter(res.skipped.values())))
    if res.nothing_left:
        raise NothingLeft(f"nothing left after adjusting for {'+'.join(res.confounders)}: "
                          f"the embedding is {res.reason}")
    return res.embedding


def confounder_design(confounders: pd.DataFrame, names, degree: int = DENSITY_DEGREE) -> np.ndarray:
    """Design matrix (no intercept) of the named confounders, one row per well of ``confounders``."""
    blocks = []
    for name in parse_adjust(names):
        why = check_confounder(confounders, name)
        if why:
            raise BenchmarkError(why)
        blocks.append(_terms(confounders, name, degree))
    return np.hstack(blocks) if blocks else np.zeros((len(confounders), 0))


def regress_out(x: np.ndarray, design: np.ndarray, batches=None) -> np.ndarray:
    """Residuals of an OLS fit of every feature on ``[1, design]`` (within batch if given), mean kept."""
    x = np.asarray(x, dtype=np.float64)
    if design.shape[1] == 0:
        return x.copy()
    mean = x.mean(axis=0)
    return residualise(x, design, batches) + mean
