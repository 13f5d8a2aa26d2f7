"""Embedders: shape and determinism of each, cell counts against planted and CellProfiler truth."""
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from bioviz.demo import make_demo
from bioviz.embed import create_embedder, embed, list_embedders, load_confounders
from bioviz.embed.engine import channel_stats
from bioviz.embed.seg import segment_site
from bioviz.errors import EmbedderError
from bioviz.screen import read_screen
from conftest import cellprofiler_nucleus_count

SHARED = Path(__file__).resolve().parents[1].parent / "shared"
REAL = SHARED / "data/real/images/pediatric_cancer_atlas_BR00143976_C03_s3/images"


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    import torch

    torch.set_num_threads(1)
    root = tmp_path_factory.mktemp("embed") / "tiny"
    make_demo(root, preset="tiny", seed=1)
    return read_screen(root)


def _run(screen, name, n=6, **cfg):
    """Features of the first n sites straight from the embedder (no cache)."""
    e = create_embedder(name, **cfg)
    e.resolve(screen)
    wids = screen.obs["well_id"].iloc[:n]
    imgs = np.stack([screen.load_site(w) for w in wids])
    if e.kind == "table":
        return np.asarray(e.table_features(screen))
    if e.kind == "batch":
        e.prepare(screen, "cpu", channel_stats=channel_stats(screen, 8))
        return e.batch_features(imgs)
    e.prepare(screen, "cpu")
    from bioviz.embed.registry import nuclear_channel

    nuc = nuclear_channel(screen.channels)
    return np.stack([e.site_features(im, segment_site(im, nuc) if e.needs_segmentation else None)
                     for im in imgs])


# name -> (options for a fast test, expected width with 5 channels)
EXPECTED = {
    "pixel_stats": ({}, 5 * (2 + 7 + 8)),
    "cell_count": ({}, 3),
    "morphology": ({}, 8 + 5 + 5 * (5 + 5 + 4)),
    "structure": ({}, 21),
    "untrained_vit": ({"img_size": 32}, 384),
    "untrained_vit_per_channel": ({"img_size": 32}, 5 * 384),
    "untrained_resnet": ({"img_size": 32}, 2048),
    "untrained_resnet_per_channel": ({"img_size": 32}, 5 * 2048),
    "plate_layout": ({}, None),
    "random": ({"dim": 16}, 16),
}


def test_every_runnable_embedder_is_covered():
    assert set(list_embedders(runnable_only=True)) == set(EXPECTED) | {"weakly_supervised"}


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_shape_and_determinism(demo, name):
    cfg, width = EXPECTED[name]
    a, b = _run(demo, name, **cfg), _run(demo, name, **cfg)
    rows = demo.n_sites if name in ("plate_layout", "random") else 6
    assert a.shape[0] == rows and (width is None or a.shape[1] == width), a.shape
    assert np.isfinite(a).all()
    np.testing.assert_array_equal(a, b)
    # Not a constant: different sites must get different features.
    assert np.ptp(a, axis=0).max() > 0


def test_untrained_networks_depend_on_seed(demo):
    a = _run(demo, "untrained_resnet", n=2, img_size=32, seed=0)
    b = _run(demo, "untrained_resnet", n=2, img_size=32, seed=1)
    assert not np.allclose(a, b)


def test_plate_layout_one_hot(demo):
    X = _run(demo, "plate_layout")
    obs = demo.obs
    n_levels = obs["plate"].nunique() + obs["row"].nunique() + obs["col"].nunique()
    assert X.shape[1] == n_levels + 1
    assert (X[:, :-1].sum(1) == 3).all()  # exactly one plate, one row, one column
    edge = X[:, -1].astype(bool)
    truth = pd.read_csv(demo.root / "truth/wells.csv").set_index("well_id").loc[obs["well_id"]]
    np.testing.assert_array_equal(edge, truth["edge"].to_numpy())


def test_cell_count_within_10_percent_of_planted(demo):
    out = embed(demo, ["cell_count"], workers=0, confounders=False)["cell_count"]
    truth = pd.read_csv(demo.root / "truth/wells.csv").set_index("well_id").loc[out["well_id"]]
    planted = truth["true_cell_count"].to_numpy()
    counted = out["f0"].to_numpy()
    rel = np.abs(counted - planted) / np.maximum(planted, 1)
    assert rel.mean() <= 0.10, rel.mean()
    assert abs(counted.sum() - planted.sum()) / planted.sum() <= 0.10
    assert np.corrcoef(counted, planted)[0, 1] > 0.9  # follows density, not just the average


def test_confounder_table_columns(demo):
    embed(demo, ["random"], workers=0)
    c = load_confounders(demo)
    assert list(c.columns) == (["well_id", "cell_count"] + [f"intensity_{ch}" for ch in demo.channels]
                               + ["focus", "plate", "batch", "row", "col", "edge"])
    assert c["well_id"].tolist() == demo.obs["well_id"].tolist()
    truth = pd.read_csv(demo.root / "truth/wells.csv").set_index("well_id").loc[c["well_id"]]
    # The planted out-of-focus sites are the least sharp.
    blurred = truth["out_of_focus"].to_numpy()
    if blurred.any():
        assert c["focus"][blurred].max() < np.median(c["focus"][~blurred])
    mean_dna = np.mean([demo.load_site(w, ["DNA"]).mean() for w in c["well_id"][:5]])
    assert c["intensity_DNA"][:5].mean() == pytest.approx(mean_dna, rel=1e-5)


@pytest.mark.skipif(not REAL.exists(), reason="../shared (real Cell Painting field) is absent")
def test_cell_count_real_site_within_15_percent_of_cellprofiler(tmp_path):
    """The 6-channel field through the whole embedder path: a screen folder of its TIFFs."""
    import shutil

    import tifffile

    from bioviz.screen import write_screen

    files = sorted((REAL / "orig").glob("*.tiff"))
    assert len(files) == 6
    (tmp_path / "images").mkdir()
    row = {"well_id": "BR00143976_C03_s3", "batch": "b", "plate": "BR00143976", "well": "C03", "row": 2,
           "col": 3, "site": 3, "perturbation": "x", "perturbation_type": "compound", "is_control": False}
    channels = [f"ch{i}" for i in range(1, 7)]
    for ch, f in zip(channels, files):
        shutil.copy(f, tmp_path / "images" / f.name)
        row[f"image_{ch}"] = f"images/{f.name}"
    write_screen(tmp_path, pd.DataFrame([row]), channels=channels, control_label="DMSO")
    screen = read_screen(tmp_path)
    # ch5 is the Hoechst channel in this plate's naming (the CellProfiler OrigDNA image).
    count = embed(screen, ["cell_count"], configs={"cell_count": {"nuclear_channel": "ch5"}},
                  workers=0, confounders=False)["cell_count"]["f0"].iloc[0]
    reference = cellprofiler_nucleus_count(tifffile.imread(REAL / "outlines/NucleiOutlines_BR00143976_C03_3.tiff"))
    assert 30 <= reference <= 45
    assert abs(count - reference) / reference <= 0.15, (count, reference)


def test_unknown_embedder_lists_known(demo):
    with pytest.raises(EmbedderError, match="unknown embedder 'nope'; known: pixel_stats"):
        embed(demo, ["nope"], workers=0)
    with pytest.raises(EmbedderError, match="unknown option"):
        create_embedder("random", dims=3)
