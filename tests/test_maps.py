"""Map building against efaar-benchmarking's own functions (its efaar.py, run without scvi)."""
from __future__ import annotations

import ast
from importlib import resources

import numpy as np
import pandas as pd
import pytest

from bioviz.bench.maps import aggregate, build_map, centerscale_on_controls, pca_centerscale, tvn
from bioviz.errors import BenchmarkError


@pytest.fixture(scope="module")
def efaar_fns():
    """efaar.py's map functions, compiled from the installed file: the module imports scvi at the
    top, which the oracle functions never use."""
    try:
        path = resources.files("efaar_benchmarking").joinpath("efaar.py")
    except ModuleNotFoundError:
        pytest.skip("efaar-benchmarking 1.0 is not installed")
    tree = ast.parse(path.read_text())
    wanted = {"centerscale_on_controls", "tvn_on_controls", "aggregate", "embed_by_pca", "centerscale_by_batch"}
    body = [n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name in wanted]
    ns: dict = {}
    exec("import numpy as np\nimport pandas as pd\nfrom scipy import linalg\nfrom sklearn.decomposition import PCA\n"
         "from sklearn.preprocessing import StandardScaler\nfrom sklearn.utils import Bunch\n", ns)
    exec(compile(ast.Module(body=body, type_ignores=[]), str(path), "exec"), ns)
    assert wanted <= set(ns)
    return ns


def _wells(seed=0, n_genes=30, reps=4, n_ctrl=40, d=12):
    rng = np.random.default_rng(seed)
    perts = np.r_[np.repeat([f"G{i}" for i in range(n_genes)], reps), ["CTRL"] * n_ctrl]
    batch = rng.choice(["b1", "b2", "b3"], len(perts))
    x = rng.normal(size=(len(perts), d)) + np.where(batch[:, None] == "b2", 3.0, 0.0)
    meta = pd.DataFrame({"perturbation": perts, "batch": batch})
    return x, meta


def test_centerscale_and_tvn_match_efaar(efaar_fns):
    x, meta = _wells()
    ctrl = (meta.perturbation == "CTRL").to_numpy()
    ref = efaar_fns["centerscale_on_controls"](x, meta, "perturbation", "CTRL", "batch")
    np.testing.assert_allclose(centerscale_on_controls(x, ctrl, meta.batch), ref, rtol=1e-12, atol=1e-12)
    ref = efaar_fns["tvn_on_controls"](x, meta, "perturbation", "CTRL", "batch")
    np.testing.assert_allclose(tvn(x, ctrl, meta.batch), ref, rtol=1e-9, atol=1e-9)


@pytest.mark.parametrize("d", [2, 128, 2048])
def test_pca_centerscale_map_is_efaars_pipeline(efaar_fns, d):
    """The map of every embedder, narrow or wide: efaar's embed_by_pca (batch_col) ->
    centerscale_on_controls (batch_col) -> aggregate(mean), with min(128, features, wells - 1)
    components.  160 wells keep sklearn's auto solver exact at 2,048 features (it would pick an
    unseeded randomized SVD above that), so the oracle is deterministic."""
    rng = np.random.default_rng(d)
    n_genes, reps, n_ctrl = 30, 4, 40
    perts = np.r_[np.repeat([f"G{i}" for i in range(n_genes)], reps), ["CTRL"] * n_ctrl]
    batch = np.array(["b1", "b2"] * (len(perts) // 2))
    signal = rng.normal(size=(n_genes + 1, d))[np.r_[np.repeat(np.arange(n_genes), reps), [n_genes] * n_ctrl]]
    x = signal + rng.normal(size=(len(perts), d)) * rng.uniform(0.5, 3, d) + (batch[:, None] == "b2") * 2.0
    meta = pd.DataFrame({"perturbation": perts, "batch": batch})
    n = min(128, d, len(perts) - 1)
    ref = efaar_fns["embed_by_pca"](x, meta, variance_or_ncomp=n, batch_col="batch")
    ref = efaar_fns["centerscale_on_controls"](ref, meta, "perturbation", "CTRL", "batch")
    ref = efaar_fns["aggregate"](ref, meta, "perturbation", keys_to_remove=["CTRL"], method="mean")
    meta["well_id"] = [f"w{i}" for i in range(len(meta))]
    emb = pd.DataFrame(x, columns=[f"f{i}" for i in range(d)])
    emb.insert(0, "well_id", meta.well_id)
    m = build_map(emb, meta, "CTRL")  # the default recipe
    assert m.shape == (n_genes, n + 1)
    assert list(m.perturbation) == list(ref.metadata.perturbation)
    np.testing.assert_allclose(m.drop(columns="perturbation").to_numpy(), ref.features.to_numpy(), atol=1e-6)


def test_narrow_and_wide_embedders_get_the_same_recipe():
    """No width-dependent branch: 12 features and 40 controls, or 200 features and 40 controls,
    both come out of a PCA on all wells (fewer controls than features no longer skips it)."""
    for d in (12, 200):
        x, meta = _wells(5, d=d)
        ctrl = (meta.perturbation == "CTRL").to_numpy()
        z = pca_centerscale(x, ctrl, meta.batch)
        assert z.shape[1] == min(128, d, len(x) - 1)
        from sklearn.decomposition import PCA

        from bioviz.bench.maps import centerscale_by_batch
        pcs = PCA(z.shape[1]).fit_transform(centerscale_by_batch(x, meta.batch))
        np.testing.assert_allclose(z, centerscale_on_controls(pcs, ctrl, meta.batch), atol=1e-8)


@pytest.mark.parametrize("method", ["mean", "median"])
def test_aggregate_matches_efaar(efaar_fns, method):
    x, meta = _wells(1)
    ref = efaar_fns["aggregate"](x, meta, "perturbation", keys_to_remove=["CTRL"], method=method)
    feats, labels = aggregate(x, meta.perturbation, method, drop=["CTRL"])
    assert list(labels) == list(ref.metadata.perturbation)
    np.testing.assert_allclose(feats, ref.features.to_numpy(), rtol=1e-12)


def test_pca_centerscale_removes_batch_offsets():
    """After PCA-CenterScale every batch's controls have mean 0 and sd 1, whatever the batch shift."""
    x, meta = _wells(2)
    ctrl = (meta.perturbation == "CTRL").to_numpy()
    z = pca_centerscale(x, ctrl, meta.batch, n_components=8)
    assert z.shape == (len(x), 8)
    for b in meta.batch.unique():
        c = z[(meta.batch == b).to_numpy() & ctrl]
        np.testing.assert_allclose(c.mean(axis=0), 0, atol=1e-9)
        np.testing.assert_allclose(c.std(axis=0), 1, atol=1e-9)
    # and batch b2's +3 offset no longer separates its gene wells from the others
    genes = ~ctrl
    gap = abs(z[genes & (meta.batch == "b2").to_numpy()].mean() - z[genes & (meta.batch != "b2").to_numpy()].mean())
    assert gap < 0.5


def test_build_map_and_errors():
    x, meta = _wells(3)
    meta["well_id"] = [f"w{i}" for i in range(len(meta))]
    emb = pd.DataFrame(x, columns=[f"f{i}" for i in range(x.shape[1])])
    emb.insert(0, "well_id", meta.well_id)
    m = build_map(emb.sample(frac=1, random_state=0), meta, "CTRL", method="tvn", aggregation="median")
    assert list(m.perturbation) == sorted(f"G{i}" for i in range(30))
    assert "CTRL" not in set(m.perturbation)
    with pytest.raises(BenchmarkError, match="control label 'DMSO'"):
        build_map(emb, meta, "DMSO")
    bad = emb.copy()
    bad.loc[5, "f2"] = np.nan
    with pytest.raises(BenchmarkError, match="NaN"):
        build_map(bad, meta, "CTRL")
    one_ctrl = meta.copy()
    one_ctrl.loc[one_ctrl.perturbation == "CTRL", "batch"] = ["b1"] * 39 + ["b9"]
    with pytest.raises(BenchmarkError, match="batch"):
        build_map(emb, one_ctrl, "CTRL")
    with pytest.raises(BenchmarkError, match="unknown map normalization"):
        build_map(emb, meta, "CTRL", method="zca")
