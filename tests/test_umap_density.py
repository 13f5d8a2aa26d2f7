"""`bioviz umap` (layouts as a computed artefact) and the Embeddings page's density view."""
from __future__ import annotations

import subprocess
import sys

import numpy as np
import pandas as pd
import pytest


def _frame(n=60_000, seed=0):
    rng = np.random.default_rng(seed)
    # two blobs: left mostly plate A with cell_count ~10, right mostly B with ~30
    side = rng.random(n) < 0.5
    x = np.where(side, rng.normal(-5, 1, n), rng.normal(5, 1, n))
    y = rng.normal(0, 1, n)
    plate = np.where(side, np.where(rng.random(n) < 0.9, "A", "B"), np.where(rng.random(n) < 0.9, "B", "A"))
    cc = np.where(side, 10.0, 30.0) + rng.normal(0, 1, n)
    return pd.DataFrame({"well_id": [f"w{i}" for i in range(n)], "x": x, "y": y, "plate": plate, "cell_count": cc})


def test_density_bins_colour_and_lasso_rows():
    from bioviz.plots.density import bin_points, embedding_density, selected_bin_rows

    df = _frame()
    fig, curves, bin_rows = embedding_density(df, "cell_count", bins=40)
    tr = fig.data[0]
    ids, *_ = bin_points(df["x"].to_numpy(np.float32), df["y"].to_numpy(np.float32), 40)
    # every well is in exactly one drawn bin; a bin's colour is the mean of its wells
    assert sum(len(bin_rows([b])) for b in curves[0]) == len(df)
    b = curves[0][np.argmax([len(bin_rows([b])) for b in curves[0]])]
    rows = bin_rows([b])
    assert np.isclose(np.asarray(tr.marker.color)[list(curves[0]).index(b)], df["cell_count"].iloc[rows].mean())
    assert set(np.flatnonzero(ids == b)) == set(rows.tolist())
    # categorical: majority per bin; the left blob's bins are mostly A
    fig, curves, bin_rows = embedding_density(df, "plate", bins=40)
    by_name = {t.name: (t, c) for t, c in zip(fig.data, curves)}
    ta, ca = by_name["A"]
    assert np.median(np.asarray(ta.x)) < 0 and np.median(np.asarray(by_name["B"][0].x)) > 0
    # a lasso over some bins of trace A selects every well in them, and only those
    sel = {"points": [{"curve_number": list(by_name).index("A"), "point_index": i} for i in range(5)]}
    got = selected_bin_rows(sel, curves, bin_rows)
    assert set(got.tolist()) == set(np.flatnonzero(np.isin(ids, ca[:5])).tolist())


def test_umap_uncomputed_embedder_one_line(tmp_path):
    from bioviz.demo import make_demo

    root = tmp_path / "tiny"
    make_demo(root, preset="tiny", seed=1)
    r = subprocess.run([sys.executable, "-m", "bioviz", "umap", "--dataset", str(root), "--embedders", "cell_count"],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 2
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and f"bioviz embed --dataset {root} --embedders cell_count" in lines[0], r.stderr


@pytest.mark.slow
def test_umap_command_writes_what_the_dashboard_reads(tmp_path):
    from bioviz.bench import umap_cache
    from bioviz.demo import make_demo
    from bioviz.embed import embed
    from bioviz.screen import read_screen

    root = tmp_path / "tiny"
    make_demo(root, preset="tiny", seed=1)
    screen = read_screen(root)
    embed(screen, ["cell_count"], confounders=False, workers=0)
    assert umap_cache.umap_layout(screen, "cell_count", level="well", compute=False) is None
    r = subprocess.run([sys.executable, "-m", "bioviz", "umap", "--dataset", str(root), "--embedders", "cell_count",
                        "--level", "well", "--quiet"], capture_output=True, text=True, timeout=900)
    assert r.returncode == 0, r.stderr
    lay = umap_cache.umap_layout(screen, "cell_count", level="well", compute=False)  # read, not computed
    assert lay is not None and lay["id"].tolist() == screen.obs["well_id"].tolist()
    assert np.isfinite(lay[["x", "y"]].to_numpy()).all()
    r2 = subprocess.run([sys.executable, "-m", "bioviz", "umap", "--dataset", str(root), "--embedders", "cell_count",
                         "--level", "well", "--quiet"], capture_output=True, text=True, timeout=300)
    assert "(cached)" in r2.stdout


def test_benchmark_umap_option_leaves_the_layouts_for_the_page(standin_copy, capsys):
    """`bioviz benchmark --umap`: after the results, the layouts the Embeddings page opens with
    (its default settings, both levels) are in the cache, so no page visit computes one."""
    from bioviz.bench import umap_cache
    from bioviz.cli import main
    from bioviz.screen import read_screen

    import shutil

    screen = read_screen(standin_copy)
    # the session's stand-in may already hold layouts other tests computed: start from none (a copy)
    shutil.rmtree(umap_cache.cache_dir(screen), ignore_errors=True)
    assert umap_cache.umap_layout(screen, "random", level="well", compute=False) is None
    assert main(["benchmark", "--dataset", str(standin_copy), "--embedders", "random", "--n-boot", "20",
                 "--umap", "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "layouts in" in out
    well = umap_cache.umap_layout(screen, "random", level="well", compute=False, **umap_cache.DEFAULT_SETTINGS)
    assert well is not None and well["id"].tolist() == screen.obs["well_id"].tolist()
    pert = umap_cache.umap_layout(screen, "random", level="perturbation", compute=False)
    # one point per perturbation of the map (controls are its reference, not a point)
    assert pert is not None and set(pert["id"]) == set(screen.obs.loc[~screen.obs["is_control"], "perturbation"])
