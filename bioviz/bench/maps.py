"""From well-level embeddings to a map: one vector per perturbation.

PCA-CenterScale is efaar-benchmarking 1.0's recipe, applied to every embedder whatever its
width: ``embed_by_pca`` (each batch standardised on all its wells, PCA on all wells, at most
128 components) then ``centerscale_on_controls`` per batch.  (An earlier version skipped the
PCA when an embedder had more features than control wells, so narrow and wide embedders got
different treatments: on one ``morphology`` embedding that moved CORUM recall 0.369 -> 0.305.)  TVN follows
``efaar_benchmarking.efaar.tvn_on_controls`` step for step (its module imports scvi, so we
cannot call it).  Aggregation mirrors ``efaar_benchmarking.efaar.aggregate``: groups in sorted
label order, mean or median.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import linalg
from sklearn.decomposition import PCA
from sklearn.preprocessing import StandardScaler

from ..errors import BenchmarkError

METHODS = ("pca_centerscale", "tvn", "centerscale", "none")
AGGREGATIONS = ("mean", "median")


def _controls(control_mask, n: int) -> np.ndarray:
    mask = np.asarray(control_mask, dtype=bool)
    if mask.shape != (n,):
        raise BenchmarkError(f"control mask has {mask.shape[0]} entries for {n} wells")
    if mask.sum() < 2:
        raise BenchmarkError(
            f"only {int(mask.sum())} control wells; map building needs at least 2 (is the control label right?)"
        )
    return mask


def _check_finite(x: np.ndarray, what: str) -> None:
    if not np.isfinite(x).all():
        bad = int((~np.isfinite(x)).any(axis=1).sum())
        raise BenchmarkError(f"{what}: {bad} wells have NaN/infinite features")


def _batch_controls(batches, ctrl: np.ndarray, what: str):
    """(rows of a batch, its control rows) for each batch; every batch needs two controls."""
    batches = np.asarray(batches)
    for b in pd.unique(batches):
        idx = batches == b
        bc = idx & ctrl
        if bc.sum() < 2:
            raise BenchmarkError(f"batch {b!r} has {int(bc.sum())} control wells; {what} needs 2 per batch")
        yield idx, bc


def centerscale_on_controls(x: np.ndarray, control_mask, batches=None) -> np.ndarray:
    """Standardize with the controls' mean and sd, per batch when ``batches`` is given."""
    x = np.array(x, dtype=np.float64 if x.dtype != np.float32 else np.float32, copy=True)
    ctrl = _controls(control_mask, len(x))
    if batches is None:
        return StandardScaler().fit(x[ctrl]).transform(x)
    for idx, bc in _batch_controls(batches, ctrl, "per-batch scaling"):
        x[idx] = StandardScaler().fit(x[bc]).transform(x[idx])
    return x


def n_pca_components(n_wells: int, n_features: int, n_components: int | float | None = 128):
    """Components kept by PCA-CenterScale: min(n_components, features, wells - 1).

    A PCA of w centred wells has rank w - 1 at most; asking for more only adds zero axes.
    A float in (0, 1) is efaar's "fraction of variance to keep" and passes through.
    """
    cap = max(1, min(n_features, n_wells - 1))
    if n_components is None:
        return cap
    if isinstance(n_components, (int, np.integer)) and not isinstance(n_components, bool):
        return int(min(n_components, cap))
    return float(n_components)


def centerscale_by_batch(x: np.ndarray, batches=None) -> np.ndarray:
    """efaar's ``centerscale_by_batch``: standardise every batch on all of its wells (no controls)."""
    x = np.array(x, dtype=np.float64, copy=True)
    if batches is None:
        return StandardScaler().fit_transform(x)
    batches = np.asarray(batches)
    for b in pd.unique(batches):
        idx = batches == b
        x[idx] = StandardScaler().fit_transform(x[idx])
    return x


def embed_by_pca(x, batches=None, n_components: int | float | None = 128) -> np.ndarray:
    """efaar's ``embed_by_pca``: per-batch centre-scale on all wells, then PCA on all wells.

    The solver is exact ("full", or "covariance_eigh" for tall, narrow data, as sklearn's auto
    policy picks): efaar's PCA leaves sklearn free to pick its unseeded randomized solver on big
    inputs, whose maps then differ from run to run.
    """
    x = centerscale_by_batch(x, batches)
    n = n_pca_components(x.shape[0], x.shape[1], n_components)
    solver = "covariance_eigh" if x.shape[1] <= 1_000 and x.shape[0] >= 10 * x.shape[1] else "full"
    return PCA(n, svd_solver=solver).fit_transform(x)


def pca_centerscale(x, control_mask, batches=None, n_components: int | float | None = 128) -> np.ndarray:
    """efaar's recipe, the same for every embedder whatever its width: ``embed_by_pca`` (per-batch
    centre-scale, PCA with min(128, features, wells - 1) components) then ``centerscale_on_controls``
    per batch.  The map is the mean of this per perturbation (:func:`aggregate`)."""
    x = np.asarray(x)
    _check_finite(x, "embedding")
    ctrl = _controls(control_mask, len(x))
    if batches is not None:  # check every batch has 2 controls before the PCA, not after
        list(_batch_controls(batches, ctrl, "per-batch scaling"))
    pcs = embed_by_pca(x, batches, n_components)
    return centerscale_on_controls(pcs, ctrl, batches)


def tvn(x, control_mask, batches=None) -> np.ndarray:
    """Typical variation normalization, as efaar's ``tvn_on_controls``.

    Centre-scale on controls, PCA (all components) fitted on controls, centre-scale again, then
    per batch CORAL: multiply by (cov(batch controls) + 0.5 I)^(-1/2).
    """
    x = np.asarray(x)
    _check_finite(x, "embedding")
    ctrl = _controls(control_mask, len(x))
    x = centerscale_on_controls(x, ctrl)
    x = PCA().fit(x[ctrl]).transform(x)
    x = centerscale_on_controls(x, ctrl)
    if batches is not None:
        for idx, bc in _batch_controls(batches, ctrl, "TVN"):
            cov = np.cov(x[bc], rowvar=False, ddof=1) + 0.5 * np.eye(x.shape[1])
            x[idx] = np.matmul(x[idx], linalg.fractional_matrix_power(cov, -0.5))
    return np.real_if_close(x)


def normalize_embedding(x, control_mask, batches=None, method: str = "pca_centerscale", n_components=128):
    if method == "pca_centerscale":
        return pca_centerscale(x, control_mask, batches, n_components)
    if method == "tvn":
        return tvn(x, control_mask, batches)
    if method == "centerscale":
        return centerscale_on_controls(np.asarray(x), control_mask, batches)
    if method == "none":
        return np.asarray(x)
    raise BenchmarkError(f"unknown map normalization {method!r}; choose from {', '.join(METHODS)}")


def aggregate(x, labels, method: str = "mean", drop=()) -> tuple[np.ndarray, np.ndarray]:
    """One row per label (sorted, as pandas groupby sorts), mean or median of its replicates."""
    if method not in AGGREGATIONS:
        raise BenchmarkError(f"unknown aggregation {method!r}; choose mean or median")
    x = np.asarray(x)
    labels = pd.Series(np.asarray(labels)).astype(str)
    frame = pd.DataFrame(x)
    frame["__label"] = labels.to_numpy()
    frame = frame[~frame["__label"].isin(list(drop))]
    grouped = frame.groupby("__label", sort=True)
    agg = grouped.mean() if method == "mean" else grouped.median()
    return agg.to_numpy(dtype=x.dtype if x.dtype.kind == "f" else np.float64), agg.index.to_numpy(dtype=object)


def build_map(
    embedding: pd.DataFrame,
    obs: pd.DataFrame,
    control_label: str,
    *,
    method: str = "pca_centerscale",
    aggregation: str = "mean",
    n_components=128,
    pert_col: str = "perturbation",
    batch_col: str | None = "batch",
    keep_controls: bool = False,
) -> pd.DataFrame:
    """A perturbation map from a well-level embedding (``well_id`` + ``f*`` columns) and metadata.

    Returns a DataFrame: ``perturbation`` then feature columns ``f0..``, one row per perturbation
    (controls dropped unless ``keep_controls``).
    """
    x, meta = align(embedding, obs)
    labels = meta[pert_col].astype(str).to_numpy()
    ctrl = labels == str(control_label)
    if not ctrl.any():
        raise BenchmarkError(
            f"control label {control_label!r} is not among the {pert_col} values "
            f"(e.g. {', '.join(map(repr, pd.unique(labels)[:3]))})"
        )
    batches = meta[batch_col].to_numpy() if batch_col and batch_col in meta else None
    z = normalize_embedding(x, ctrl, batches, method, n_components)
    feats, perts = aggregate(z, labels, aggregation, drop=() if keep_controls else (str(control_label),))
    out = pd.DataFrame(feats, columns=[f"f{i}" for i in range(feats.shape[1])])
    out.insert(0, pert_col, perts)
    return out


def feature_columns(df: pd.DataFrame, exclude=("well_id",)) -> list[str]:
    """Numeric feature columns of an embedding table (``f0..`` by contract, any numeric allowed)."""
    cols = [c for c in df.columns if c not in exclude and pd.api.types.is_numeric_dtype(df[c])]
    if not cols:
        raise BenchmarkError("embedding table has no numeric feature columns")
    return cols


def align(embedding: pd.DataFrame, obs: pd.DataFrame) -> tuple[np.ndarray, pd.DataFrame]:
    """Embedding rows in the order of the metadata, matched on ``well_id``; NaN rejected."""
    if "well_id" not in embedding.columns:
        raise BenchmarkError("embedding table lacks the well_id column")
    cols = feature_columns(embedding)
    emb = embedding.drop_duplicates("well_id").set_index("well_id")
    if len(emb) != len(embedding):
        raise BenchmarkError("embedding table has duplicated well_id values")
    missing = ~obs["well_id"].isin(emb.index)
    if missing.all():
        raise BenchmarkError("no well_id of the embedding matches the dataset metadata")
    meta = obs[~missing].reset_index(drop=True)
    x = emb.loc[meta["well_id"], cols].to_numpy()
    if x.dtype.kind != "f":
        x = x.astype(np.float64)
    _check_finite(x, "embedding")
    return x, meta
