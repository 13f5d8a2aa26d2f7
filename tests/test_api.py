"""The scanpy-style facade (bioviz.pp / tl / pl) on a small screen: Screen first, tables and figures
out, the same caches the CLI writes. The full session (benchmark, recall, figures) is
tests/test_readme_session.py."""
import pytest

import bioviz as bv
from bioviz.errors import BenchmarkError, EmbedderError


def test_pp_tl_pl_facade_on_a_small_screen(small_screen):
    screen = bv.pp.read_screen(small_screen)
    assert screen.n_sites == 8
    before = bv.tl.embedders(screen).set_index("embedder")
    assert before.loc["pixel_stats", "status"] == "missing" and before.loc["pixel_stats", "kind"] == "baseline"
    with pytest.raises(EmbedderError, match="has not been computed"):
        bv.pp.embedding(screen, embedder="pixel_stats")

    out = bv.tl.embed(screen, embedders=["pixel_stats"], workers=0)
    assert out["embedder"].tolist() == ["pixel_stats"]
    X = bv.pp.embedding(screen, embedder="pixel_stats")
    assert (out["n_sites"].iloc[0], out["n_features"].iloc[0]) == (8, X.shape[1] - 1)
    assert X["well_id"].tolist() == screen.obs["well_id"].tolist()
    assert bv.tl.embedders(screen).set_index("embedder").loc["pixel_stats", "status"] == "up to date"
    conf = bv.pp.confounders(screen)  # embed brought the confounder table up to date too
    assert conf["well_id"].tolist() == screen.obs["well_id"].tolist()

    # Controls (NT) are dropped and replicates averaged: one row per gene.
    m = bv.pp.perturbation_map(screen, embedder="pixel_stats", method="centerscale")
    assert sorted(m["perturbation"]) == ["MDM2", "TP53"]

    fig = bv.pl.plate(screen)
    assert {t.name for t in fig.data} == {"control", "gene"}
    with pytest.raises(BenchmarkError, match="no benchmark results"):
        bv.pl.recall(screen)
