"""End to end on the simulated screen: planted mechanisms against what each embedder recalls.

The tiny preset (seconds) checks the pipeline and the morphology claim; the density claims need
the default preset (enough density pairs and controls): about 80 s on 2 cores for the demo,
three embedders and the benchmark, so it runs in the normal suite.
"""
from __future__ import annotations

import subprocess
import sys

import pandas as pd
import pytest

pytest.importorskip("bioviz.demo", reason="the demo simulator (bioviz.demo) is not in this checkout")
embed = pytest.importorskip("bioviz.embed", reason="the embedders (bioviz.embed) are not in this checkout")

NEEDED = ("cell_count", "morphology", "pixel_stats")


def _bioviz(*args):
    r = subprocess.run([sys.executable, "-m", "bioviz", *args], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr[-2000:]
    return r


def _screen(tmp_path_factory, preset):
    if not set(NEEDED) <= set(embed.list_embedders()):
        pytest.skip(f"embedders {', '.join(NEEDED)} are not all registered yet")
    root = tmp_path_factory.mktemp(f"demo_{preset}") / "screen"
    _bioviz("demo", "--preset", preset, "--out", str(root))
    _bioviz("embed", "--dataset", str(root), "--embedders", ",".join(NEEDED))
    _bioviz("benchmark", "--dataset", str(root), "--adjust", "density", "--n-boot", "200")
    return root


def _recalled(root):
    p = pd.read_parquet(root / "results" / "pairs.parquet")
    return p[(p.source == "CORUM") & p["recalled_0.05_0.95"]]


def test_tiny_demo_pipeline_and_morphology_survives_density_adjustment(tmp_path_factory):
    root = _screen(tmp_path_factory, "tiny")
    recall = pd.read_csv(root / "results" / "recall.csv", keep_default_na=False)
    assert {"density", "morphology", "intensity"} <= set(recall.mechanism)
    assert set(recall.adjusted_for) == {"", "density"}
    rec = _recalled(root)
    morph = rec[(rec.embedder == "morphology") & (rec.mechanism == "morphology")]
    raw = set(zip(morph[morph.adjusted_for == ""].entity1, morph[morph.adjusted_for == ""].entity2))
    adj = set(zip(morph[morph.adjusted_for == "density"].entity1, morph[morph.adjusted_for == "density"].entity2))
    assert len(raw) >= 3, "morphology features should recall planted-morphology CORUM pairs"
    assert len(raw & adj) >= 0.6 * len(raw), "planted-morphology pairs should survive a cell-count adjustment"


@pytest.mark.slow
def test_default_demo_cell_count_recalls_density_and_adjustment_removes_it(tmp_path_factory):
    root = _screen(tmp_path_factory, "default")
    rec = _recalled(root)
    cc = rec[(rec.embedder == "cell_count") & (rec.adjusted_for == "")]
    assert len(cc) > 0
    assert (cc.mechanism == "density").mean() > 0.5, "most cell_count-recalled pairs should be planted density"
    dens_raw = (cc.mechanism == "density").sum()
    cc_adj = rec[(rec.embedder == "cell_count") & (rec.adjusted_for == "density")]
    assert (cc_adj.mechanism == "density").sum() <= 0.5 * dens_raw, "adjusting for cell count removes most"
    morph = rec[(rec.embedder == "morphology") & (rec.mechanism == "morphology")]
    raw = set(zip(morph[morph.adjusted_for == ""].entity1, morph[morph.adjusted_for == ""].entity2))
    adj = set(zip(morph[morph.adjusted_for == "density"].entity1, morph[morph.adjusted_for == "density"].entity2))
    assert raw and len(raw & adj) >= 0.6 * len(raw)
