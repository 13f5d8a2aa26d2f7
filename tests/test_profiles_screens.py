"""Compound/MOA screens and profiles-only datasets end to end (issue 10 items 2-4), at the CLI.

The synthetic screen (tests/profiles_dataset.py) is a pycytominer-style profile table brought in by
``bioviz import profiles``: no images, 24 compounds in 4 MOAs, DMSO controls, Cells_Count and two
intensity features. Numbers are checked against hand computations on the files bioviz wrote.
"""
from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from profiles_dataset import bioviz, build_profiles_dataset

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data" / "real" / "profiles"


@pytest.fixture(scope="module")
def prof(tmp_path_factory):
    return build_profiles_dataset(tmp_path_factory.mktemp("profiles") / "prof", benchmark=False)


def test_embed_all_on_profiles_lists_image_embedders_as_not_applicable(prof):
    r = bioviz("embed", "--dataset", prof, "--embedders", "all", "--quiet")
    out = r.stdout
    for name in ("pixel_stats", "cell_count", "untrained_vit", "weakly_supervised"):
        assert f"{name}" in out and "not applicable: no images" in out.split(name, 1)[1].splitlines()[0], out
    for name in ("plate_layout", "random", "precomputed"):
        assert any(line.startswith(name) and "sites x" in line for line in out.splitlines()), out
    # confounders from the profile's own columns
    conf = pd.read_parquet(prof / "embeddings" / "confounders.parquet")
    table = pd.read_csv(prof.parent / "prof_profiles.csv")
    obs = pd.read_csv(prof / "metadata.csv")
    want = table.set_index(["Metadata_Plate", "Metadata_Well"]).loc[list(zip(obs.plate, obs.well))]
    np.testing.assert_allclose(conf["cell_count"], want["Cells_Count"].to_numpy())
    np.testing.assert_allclose(conf["intensity_DNA"], want["Cells_Intensity_MeanIntensity_DNA"].to_numpy())
    assert {"intensity_Mito", "plate", "row", "col", "edge"} <= set(conf.columns)
    # an image embedder named explicitly: one line, exit 2
    r = bioviz("embed", "--dataset", prof, "--embedders", "pixel_stats", check=False)
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert r.stderr.strip() == f"bioviz embed: error: embedder pixel_stats does not apply to {prof.name}: " \
                               "no images (profiles only)"


def _hand_nn_accuracy(z, comp, moa):
    """Nearest (cosine) well of a different compound shares the MOA: a plain double loop."""
    zn = z / np.linalg.norm(z, axis=1, keepdims=True)
    hits = []
    for i in range(len(z)):
        best, bj = -np.inf, None
        for j in range(len(z)):
            if comp[j] == comp[i]:
                continue
            s = float(zn[i] @ zn[j])
            if s > best:
                best, bj = s, j
        hits.append(moa[bj] == moa[i])
    return float(np.mean(hits))


def test_benchmark_compound_screen_skips_sources_and_scores_moa(prof):
    r = bioviz("benchmark", "--dataset", prof, "--embedders", "precomputed,plate_layout,random",
               "--relationships", "moa", "--n-boot", 200, "--quiet")
    notices = [line for line in r.stdout.splitlines() if line.startswith("notice:")]
    # one line per public gene source, none of which has the compounds as genes
    assert sorted(n.split()[1] for n in notices) == ["CORUM", "HuMAP", "Reactome", "SIGNOR", "StringDB"], r.stdout
    assert all("skipped" in n for n in notices)
    res = prof / "results"
    recall = pd.read_csv(res / "recall.csv", keep_default_na=False)
    assert set(recall["source"]) == {"moa"}
    # the moa source: every pair of different compounds sharing an MOA (4 MOAs x C(6,2))
    pairs = pd.read_parquet(res / "pairs.parquet")
    assert pairs[pairs.embedder == "precomputed"].shape[0] == 4 * 15
    assert {"plate_layout", "random"} <= set(recall["embedder"])
    # retrieval: well level equals a hand-computed nearest-neighbour accuracy on the normalised wells
    from bioviz.bench.maps import align, normalize_embedding
    from bioviz.embed import load_embedding
    from bioviz.screen import read_screen

    screen = read_screen(prof, check_images=False)
    ret = pd.read_csv(res / "retrieval.csv")
    # plate_layout is left out here: its one-hot positions tie exactly, and which of the tied wells is
    # "nearest" depends on float rounding
    for emb in ("precomputed", "random"):
        x, meta = align(load_embedding(screen, emb), screen.obs)
        ctrl = (meta.perturbation == "DMSO").to_numpy()
        z = normalize_embedding(x, ctrl, meta.batch.to_numpy(), "pca_centerscale")[~ctrl]
        m = meta[~ctrl].reset_index(drop=True)
        want = _hand_nn_accuracy(z, m.perturbation.to_numpy(), m.moa.to_numpy())
        got = ret.query("embedder == @emb and label == 'moa' and level == 'well' and metric == 'nn_accuracy'")
        assert len(got) == 1 and got["value"].iloc[0] == pytest.approx(want), emb
        # treatment level: compound + concentration averaged, then the same rule
        key = m.perturbation + "@" + m.concentration.astype(str)
        zt = pd.DataFrame(z).groupby(key.to_numpy()).mean()
        first = m.assign(k=key).drop_duplicates("k").set_index("k").loc[zt.index]
        want_t = _hand_nn_accuracy(zt.to_numpy(), first.perturbation.to_numpy(), first.moa.to_numpy())
        got_t = ret.query("embedder == @emb and label == 'moa' and level == 'treatment' and metric == 'nn_accuracy'")
        assert got_t["value"].iloc[0] == pytest.approx(want_t), emb
    acc = ret.query("label == 'moa' and level == 'well' and metric == 'nn_accuracy'").set_index("embedder")
    # the planted MOA signal beats both layout baselines beyond their CIs
    assert acc.loc["precomputed", "ci_low"] > max(acc.loc["plate_layout", "ci_high"], acc.loc["random", "ci_high"])
    summary = json.loads((res / "summary.json").read_text())
    assert set(summary["skipped_sources"]) == {"CORUM", "HuMAP", "Reactome", "SIGNOR", "StringDB"}


def test_relationships_bad_column_is_one_line(prof):
    r = bioviz("benchmark", "--dataset", prof, "--relationships", "nosuchcol", "--quiet", check=False)
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert "nosuchcol" in r.stderr and len(r.stderr.strip().splitlines()) == 1
    r = bioviz("benchmark", "--dataset", prof, "--relationships", "well_id", "--quiet", check=False)
    assert r.returncode == 2 and "no value of 'well_id' is shared" in r.stderr


def test_layout_confounding_sentence():
    from bioviz.dashboard.findings import layout_confounding

    rec = pd.DataFrame({"embedder": ["model_x", "plate_layout", "random"], "source": "CORUM",
                        "threshold": "0.05_0.95", "recall": [0.30, 0.26, 0.10], "ci_low": [0.25, 0.2, 0.05],
                        "ci_high": [0.35, 0.3, 0.15], "adjusted_for": "", "mechanism": "", "null_model": "all"})
    notes = layout_confounding(rec, None)
    assert len(notes) == 1 and "plate_layout" in notes[0] and "confounded with plate layout" in notes[0]
    rec.loc[1, "recall"] = 0.24  # below the model's CI low end: no sentence
    assert layout_confounding(rec, None) == []


@pytest.mark.skipif(not (SHARED / "lincs_A549_SQ00015054").is_dir(), reason="../shared real LINCS plate absent")
@pytest.mark.slow
def test_lincs_moa_retrieval_beats_layout_baselines(tmp_path):
    src = SHARED / "lincs_A549_SQ00015054" / "SQ00015054_normalized_feature_select.csv.gz"
    d = tmp_path / "lincs"
    bioviz("import", "profiles", src, "--out", d)
    bioviz("embed", "--dataset", d, "--embedders", "all", "--quiet")
    bioviz("benchmark", "--dataset", d, "--n-boot", 200, "--quiet")
    ret = pd.read_csv(d / "results" / "retrieval.csv")
    acc = ret.query("label == 'target' and level == 'well' and metric == 'nn_accuracy'").set_index("embedder")
    assert acc.loc["precomputed", "ci_low"] > max(acc.loc["plate_layout", "ci_high"], acc.loc["random", "ci_high"])
    moa = ret.query("label == 'moa' and level == 'well' and metric == 'nn_accuracy'").set_index("embedder")
    assert moa.loc["precomputed", "value"] > max(moa.loc["plate_layout", "value"], moa.loc["random", "value"])


@pytest.mark.slow
def test_compute_button_on_profiles_runs_only_what_applies(tmp_path):
    """Home's Compute on a freshly imported profiles-only screen: no image embedder and no
    weakly_supervised is tried, the benchmark runs (no density adjustment without a cell count)."""
    pytest.importorskip("streamlit")
    from streamlit.testing.v1 import AppTest

    from profiles_dataset import profiles_table

    table = tmp_path / "p.csv"
    profiles_table().drop(columns=["Cells_Count"]).to_csv(table, index=False)
    d = tmp_path / "fresh"
    bioviz("import", "profiles", table, "--out", d)
    at = AppTest.from_file(str(Path(__file__).resolve().parents[1] / "app.py"), default_timeout=600)
    at.query_params["dataset"] = str(d)
    at.run()
    at.button(key="compute").click().run()
    assert not at.exception, [e.message for e in at.exception]
    assert not at.error, [e.value for e in at.error]
    assert any("Computed" in s.value for s in at.success)
    done = sorted(p.stem for p in (d / "embeddings").glob("*.parquet"))
    assert done == ["confounders", "plate_layout", "precomputed", "random"], done
    assert (d / "results" / "retrieval.csv").is_file()
