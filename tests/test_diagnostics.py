"""Probes, CKA, adjustment, attribution, activity (copairs), retrieval, and run_benchmark's files."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from bioviz.bench.adjust import adjust_embedding, confounder_design, parse_adjust, regress_out
from bioviz.bench.attribution import attribute
from bioviz.bench.cka import linear_cka
from bioviz.bench.probes import classification_accuracy, confounder_probes, ridge_r2
from bioviz.errors import BenchmarkError

LINCS = Path(__file__).resolve().parents[2] / "shared/data/real/profiles/lincs_A549_SQ00015054"


def test_ridge_probe_finds_a_planted_confounder_and_not_noise():
    rng = np.random.default_rng(0)
    n = 400
    count = rng.normal(size=n)
    x = np.c_[rng.normal(size=(n, 10)), count + 0.1 * rng.normal(size=n)]
    assert ridge_r2(x, count) > 0.95
    assert ridge_r2(rng.normal(size=(n, 11)), count) < 0.05
    plate = np.repeat(["P1", "P2", "P3", "P4"], n // 4)
    xp = rng.normal(size=(n, 5)) + (plate == "P2")[:, None] * 3
    acc, chance = classification_accuracy(xp, plate)
    assert chance == 0.25 and acc > 0.45
    acc0, _ = classification_accuracy(rng.normal(size=(n, 5)), plate)
    assert acc0 < 0.4


def test_confounder_probes_table():
    rng = np.random.default_rng(1)
    n = 200
    conf = pd.DataFrame({"cell_count": rng.poisson(50, n).astype(float), "intensity_DNA": rng.random(n),
                         "focus": rng.random(n), "plate": np.repeat(["A", "B"], n // 2), "batch": "b1"})
    x = np.c_[conf.cell_count, rng.normal(size=(n, 3))]
    t = confounder_probes(x, conf)
    assert list(t.columns) == ["confounder", "metric", "value"]
    v = t.set_index(["confounder", "metric"])["value"]
    assert v["cell_count", "r2"] > 0.9 and v["intensity_DNA", "r2"] < 0.1
    assert v["plate", "chance"] == 0.5
    assert np.isnan(v["batch", "accuracy"])  # one batch: nothing to predict, said as NaN not 0/0


def test_linear_cka_invariances():
    rng = np.random.default_rng(2)
    x = rng.normal(size=(300, 20))
    q, _ = np.linalg.qr(rng.normal(size=(20, 20)))
    assert linear_cka(x, 3 * x @ q + 5) == pytest.approx(1.0)
    assert linear_cka(x, rng.normal(size=(300, 20))) < 0.15
    wide = rng.normal(size=(50, 400))  # fewer wells than features: the Gram form
    assert linear_cka(wide, wide @ np.linalg.qr(rng.normal(size=(400, 400)))[0]) == pytest.approx(1.0)
    assert linear_cka(x, np.ones((300, 3))) == 0.0


def _conf(n, rng, batch=None):
    return pd.DataFrame({"well_id": [f"w{i}" for i in range(n)], "cell_count": rng.poisson(40, n).astype(float) + 5,
                         "intensity_DNA": rng.random(n), "intensity_ER": rng.random(n), "focus": rng.random(n),
                         "plate": rng.choice(["P1", "P2", "P3"], n), "batch": "b" if batch is None else batch,
                         "row": rng.integers(0, 16, n), "col": rng.integers(1, 25, n), "edge": rng.random(n) < 0.2})


def test_adjustment_removes_the_named_confounder_only():
    rng = np.random.default_rng(3)
    n = 300
    conf = _conf(n, rng)
    bio = rng.normal(size=n)
    # density enters non-linearly (log count), which a single linear term would leave behind
    emb = pd.DataFrame({"well_id": conf.well_id, "f0": 2 * np.log(conf.cell_count) + bio, "f1": bio})
    adj = adjust_embedding(emb.sample(frac=1, random_state=0), conf, "density")
    adj = adj.set_index("well_id").loc[conf.well_id]
    x = adj.to_numpy()
    assert x.shape[1] == 1  # f0 - f1 was density alone: one direction (bio) is left
    from bioviz.bench.probes import ridge_r2
    assert ridge_r2(x, np.log(conf.cell_count)) < 0.02
    assert ridge_r2(x, bio) > 0.9
    assert confounder_design(conf, ["plate", "intensity", "position"]).shape == (n, 3 + 2 + 3)
    assert confounder_design(conf, ["density"]).shape == (n, 1 + 3)  # the count + cubic in log count
    assert parse_adjust("density,intensity,density") == ["density", "intensity"]
    with pytest.raises(BenchmarkError, match="unknown confounder"):
        parse_adjust("weather")
    np.testing.assert_allclose(regress_out(np.ones((5, 2)), np.zeros((5, 1))), np.ones((5, 2)))


def test_an_embedding_that_is_its_confounder_leaves_nothing():
    """cell_count adjusted for density: the residual is rounding noise (~1e-15), which any
    centre-scaling would blow up into a map of +-1 cosines.  It is dropped and said instead."""
    from bioviz.bench.adjust import NothingLeft, adjust

    rng = np.random.default_rng(4)
    n = 400
    batch = rng.choice(["b1", "b2"], n)
    conf = _conf(n, rng, batch)
    emb = pd.DataFrame({"well_id": conf.well_id, "f0": conf.cell_count, "f1": 3 * conf.cell_count + 7})
    res = adjust(emb, conf, "density", batch)
    assert res.nothing_left and res.reason == "explained by density" and res.kept == 0 and res.degree == 3
    with pytest.raises(NothingLeft, match="nothing left after adjusting for density"):
        adjust_embedding(emb, conf, "density", batch)
    # one real direction beside the count: exactly that one is kept
    emb["f2"] = rng.normal(size=n)
    res = adjust(emb, conf, "density", batch)
    assert res.kept == 1 and res.dropped == 2
    assert abs(np.corrcoef(res.embedding.f0, emb.f2)[0, 1]) > 0.99


def test_adjustment_is_within_batch():
    """A density slope that differs between batches: a pooled fit leaves it in, the per-batch fit not."""
    from bioviz.bench.adjust import adjust
    from bioviz.bench.probes import ridge_r2

    rng = np.random.default_rng(5)
    n = 600
    batch = np.repeat(["b1", "b2"], n // 2)
    conf = _conf(n, rng, batch)
    slope = np.where(batch == "b1", 1.0, -1.0)
    bio = rng.normal(size=(n, 3))
    emb = pd.DataFrame(bio, columns=["f0", "f1", "f2"])
    emb["f0"] += slope * conf.cell_count / 5
    emb.insert(0, "well_id", conf.well_id)
    res = adjust(emb, conf, "density", batch)
    x = res.embedding.drop(columns="well_id").to_numpy()
    for b in ("b1", "b2"):
        assert ridge_r2(x[batch == b], conf.cell_count[batch == b]) < 0.05
    pooled = adjust(emb, conf, "density", None).embedding.drop(columns="well_id").to_numpy()
    assert ridge_r2(pooled[batch == "b1"], conf.cell_count[batch == "b1"]) > 0.3


@pytest.mark.parametrize("case, message", [
    ("constant", "column cell_count is constant"),
    ("missing", r"column cell_count is missing for 3 wells \(e.g. w0\)"),
    ("collinear", "column cell_count is collinear with batch"),
    ("absent", "has no column cell_count"),
])
def test_bad_confounder_columns_are_named_and_skipped(case, message):
    from bioviz.bench.adjust import adjust

    rng = np.random.default_rng(6)
    n = 200
    batch = np.repeat(["b1", "b2"], n // 2)
    conf = _conf(n, rng, batch)
    if case == "constant":
        conf["cell_count"] = 30.0
    elif case == "missing":
        conf.loc[:2, "cell_count"] = np.nan
    elif case == "collinear":
        conf["cell_count"] = np.where(batch == "b1", 20.0, 40.0)
    else:
        conf = conf.drop(columns="cell_count")
    emb = pd.DataFrame({"well_id": conf.well_id, "f0": rng.normal(size=n), "f1": rng.normal(size=n)})
    res = adjust(emb, conf, "density,focus", batch)
    assert list(res.skipped) == ["density"] and res.confounders == ["focus"]
    assert "adjustment for density skipped" in res.skipped["density"]
    import re
    assert re.search(message, res.skipped["density"]) and "\n" not in res.skipped["density"]
    with pytest.raises(BenchmarkError, match=message):
        adjust_embedding(emb, conf, "density", batch)


def test_attribution_labels():
    rows = []
    for emb, flags in {"model": [1, 1, 1, 0], "cell_count": [1, 0, 0, 1], "pixel_stats": [1, 1, 0, 0]}.items():
        for k, f in enumerate(flags):
            rows.append({"source": "CORUM", "entity1": f"A{k}", "entity2": f"B{k}", "embedder": emb,
                         "adjusted_for": "", "recalled_0.05_0.95": bool(f)})
    out = attribute(pd.DataFrame(rows), ["recalled_0.05_0.95"]).set_index(["embedder", "entity1"])
    col = out["also_recalled_0.05_0.95"]
    assert col["model", "A0"] == "cell_count+pixel_stats"
    assert col["model", "A1"] == "pixel_stats"
    assert col["model", "A2"] == "alone"
    assert col["model", "A3"] == ""
    assert col["cell_count", "A0"] == "pixel_stats" and col["cell_count", "A3"] == "alone"


def _lincs():
    if not LINCS.exists():
        pytest.skip("../shared (real LINCS profiles) is absent in this checkout")
    d = pd.read_csv(next(LINCS.glob("*.csv.gz")))
    feats = d[[c for c in d.columns if not c.startswith("Metadata_")]].to_numpy(float)
    return d, feats


def test_activity_and_consistency_on_real_lincs_plate():
    from bioviz.bench.activity import phenotypic_activity, replicate_consistency

    d, x = _lincs()
    ctrl = (d.Metadata_broad_sample == "DMSO").to_numpy()
    act = phenotypic_activity(x, d.Metadata_broad_sample, ctrl, null_size=1000)
    assert "DMSO" not in set(act.perturbation) and len(act) == d.Metadata_broad_sample.nunique() - 1
    assert 0.2 < act.below_corrected_p.mean() <= 1.0  # drugs at 6 doses: many are active
    # shuffled labels: no perturbation's wells stand out from DMSO any more
    shuffled = np.random.default_rng(0).permutation(d.Metadata_broad_sample.to_numpy())
    act0 = phenotypic_activity(x, shuffled, shuffled == "DMSO", null_size=1000)
    assert act0.below_corrected_p.mean() < 0.1
    cons = replicate_consistency(x, d.Metadata_broad_sample, ctrl, null_size=1000)
    assert cons.mean_average_precision.mean() > 0.1


def test_moa_retrieval_excludes_the_same_compound():
    from bioviz.bench.retrieval import moa_map, nearest_neighbour_accuracy

    d, x = _lincs()
    keep = (d.Metadata_broad_sample != "DMSO").to_numpy()
    comp, moa = d.Metadata_broad_sample[keep].to_numpy(), d.Metadata_moa[keep].to_numpy()
    res = nearest_neighbour_accuracy(x[keep], comp, moa)
    # brute force: nearest well (cosine) of another compound, both with an MOA
    has = pd.notna(moa)
    xn = x[keep][has] / np.linalg.norm(x[keep][has], axis=1, keepdims=True)
    s = xn @ xn.T
    c, m = comp[has], moa[has]
    s[c[:, None] == c[None, :]] = -np.inf
    expected = np.mean(m[np.argmax(s, axis=1)] == m)
    assert res["accuracy"] == pytest.approx(expected) and res["n"] == has.sum()
    assert 0 <= res["chance"] < 0.2
    # labelling wells by their own compound makes "same compound" the only positive: all excluded
    with pytest.raises(BenchmarkError):
        moa_map(x[keep], comp, comp)
    m = moa_map(x[keep], comp, moa, null_size=500)
    assert m["mean_average_precision"].between(0, 1).all() and len(m) >= 1


# -- run_benchmark on a small synthetic dataset (files and columns) ----------------------------


def _fake_screen(tmp_path, n_genes=40, reps=3, n_ctrl=30, seed=0, rename=None):
    """A real Screen (blank images) whose embeddings and confounder sources are simulated and
    written through bioviz.embed's cache writer; ``rename``: perturbation -> new label."""
    from standin_dataset import screen_with_blank_images, write_caches

    from bioviz.embed import compute_confounders
    from bioviz.relationships import corum_complexes

    rng = np.random.default_rng(seed)
    comps = [c for c in corum_complexes().values() if 4 <= len(c) <= 6][:10]
    genes = list(dict.fromkeys(g for c in comps for g in c))[:n_genes]
    perts = np.r_[np.repeat(genes, reps), ["NTC"] * n_ctrl]
    n = len(perts)
    plate = np.array(["P1", "P2", "P3"])[rng.permutation(np.arange(n) % 3)]
    batch = rng.choice(["b1", "b2"], n)
    pos = pd.Series(plate).groupby(plate).cumcount().to_numpy()  # one well per position and plate
    row, col = pos // 24, pos % 24 + 1
    obs = pd.DataFrame({"well_id": [f"w{i}" for i in range(n)], "batch": batch, "plate": plate,
                        "well": [f"{chr(65 + r)}{c:02d}" for r, c in zip(row, col)], "row": row, "col": col,
                        "site": 1, "perturbation": perts})
    obs["is_control"] = obs.perturbation == "NTC"
    obs["perturbation_type"] = np.where(obs.is_control, "control", "gene")
    if rename is not None:
        obs["perturbation"] = [rename(p) for p in obs["perturbation"]]
    screen = screen_with_blank_images(tmp_path / "screen", obs)
    count = rng.normal(100, 10, n)
    gene_vec = {g: rng.normal(size=16) for g in genes}
    comp_vec = {}
    for c in comps:
        v = rng.normal(size=16)
        for g in c:
            comp_vec.setdefault(g, v)
    signal = np.array([comp_vec.get(p, 0) * 1.5 + gene_vec.get(p, 0) * 0.5 if p != "NTC" else np.zeros(16)
                       for p in perts], dtype=float)
    embs = {"weakly_supervised": signal + rng.normal(size=(n, 16)), "random": rng.normal(size=(n, 8)),
            # the confounder table's sources: count, per-channel mean intensity, focus
            "cell_count": np.c_[count, rng.random(n)], "pixel_stats": rng.random((n, 2)),
            "focus": rng.random((n, 1))}
    write_caches(screen, embs, {"pixel_stats": ["DNA_mean", "ER_mean"]})
    compute_confounders(screen, workers=0)
    return screen


def test_run_benchmark_writes_every_file(tmp_path):
    from bioviz.bench.run import run_benchmark

    screen = _fake_screen(tmp_path)
    summary = run_benchmark(screen, ["weakly_supervised", "random"], adjust="density,plate", sources=["CORUM"],
                            n_boot=200, null_size=500)
    res = screen.results_dir
    recall = pd.read_csv(res / "recall.csv", keep_default_na=False)
    from bioviz.bench import results

    assert list(recall.columns) == results.table_columns("recall")  # the columns bench.results declares
    # beside each adjusted score: the density probe on the adjusted embedding, about 0
    adjusted = recall[recall.adjusted_for == "density+plate"]
    assert (adjusted.probe_r2.astype(float) < 0.05).all() and (recall[recall.adjusted_for == ""].probe_r2 == "").all()
    # no one-feature "confounder:cell_count": its cosines are +-1 and its recall 0 by construction
    assert set(recall.embedder) == {"weakly_supervised", "random", "confounder:intensity"}
    assert set(recall.adjusted_for) == {"", "density+plate"}
    r = recall[(recall.threshold == "0.05_0.95") & (recall.adjusted_for == "")].set_index("embedder")
    assert r.loc["weakly_supervised", "recall"] > 0.3 \
        and r.loc["weakly_supervised", "recall"] > 2 * r.loc["random", "recall"]
    assert (recall.ci_low <= recall.recall).all() and (recall.recall <= recall.ci_high).all()
    pairs = pd.read_parquet(res / "pairs.parquet")
    for c in ["source", "entity1", "entity2", "embedder", "cosine", "percentile", "recalled_0.05_0.95",
              "recalled_0.1_0.9", "also_recalled_0.05_0.95"]:
        assert c in pairs.columns
    probes = pd.read_csv(res / "probes.csv")
    assert list(probes.columns) == results.table_columns("probes")
    assert probes.query("embedder == 'confounder:intensity' and confounder == 'intensity_ER'").value.iloc[0] > 0.9
    assert probes.query("embedder == 'random' and confounder == 'intensity_ER'").value.iloc[0] < 0.1
    cka = pd.read_csv(res / "cka.csv")
    assert cka.query("embedder_a == 'weakly_supervised' and embedder_b == 'weakly_supervised'").cka.iloc[0] \
        == pytest.approx(1.0)
    act = pd.read_csv(res / "activity.csv")
    a = act[act.metric == "activity"].groupby("embedder").below_corrected_p.mean()
    assert a["weakly_supervised"] > 0.5 and a["random"] < 0.2
    comp = pd.read_csv(res / "comparisons.csv", keep_default_na=False)
    row = comp.query("embedder_a == 'weakly_supervised' and embedder_b == 'random' and threshold == '0.05_0.95' "
                     "and adjusted_for == ''")
    assert row.p_value.iloc[0] < 0.01
    assert (comp.p_adjusted >= comp.p_value).all() and (comp.p_adjusted <= 1).all()
    assert set(comp.embedder_a) == {"weakly_supervised"}  # models against diagnostics, not baselines vs baselines
    assert summary["embedders"] and (res / "summary.json").exists()
    assert summary["kinds"] == {"weakly_supervised": "model", "random": "null", "confounder:intensity": "baseline"}
    only = pd.read_csv(res / "model_only.csv")
    assert set(only.embedder) == {"weakly_supervised"} and "random" not in only.baselines.iloc[0]
    assert (only.chance_low <= only.chance_mean).all() and (only.chance_mean <= only.chance_high).all()
    assert (only["count"] > only.chance_high).any()  # real complex signal beats permuted labels


def test_run_benchmark_planted_truth_and_nothing_left(tmp_path):
    """planted = shared planted mechanism only; an embedding that is the cell count says
    "explained by density" instead of a recall; still_planted is the share of recalled pairs of
    the adjusted-for mechanism."""
    from bioviz.bench.run import run_benchmark

    from standin_dataset import write_caches

    from bioviz.screen import read_screen

    screen = _fake_screen(tmp_path)
    genes = sorted(set(screen.obs.perturbation) - {"NTC"})
    mech = {g: ["density", "morphology", "none"][i % 3] for i, g in enumerate(genes)}
    from bioviz.relationships import load_relationships

    rel = load_relationships("CORUM")
    rel = rel[rel.entity1.isin(genes) & rel.entity2.isin(genes)]
    same = [mech[a] if mech[a] == mech[b] else "none" for a, b in zip(rel.entity1, rel.entity2)]
    truth_rel = rel.assign(source="CORUM", mechanism=same)
    assert (truth_rel.mechanism == "none").any() and (truth_rel.mechanism != "none").any()
    tdir = screen.root / "truth"
    tdir.mkdir()
    truth_rel.to_csv(tdir / "relationships.csv", index=False)
    pd.DataFrame({"gene": genes, "mechanism": [mech[g] for g in genes]}).to_csv(tdir / "genes.csv", index=False)
    pd.DataFrame({"well_id": screen.obs.well_id}).to_csv(tdir / "wells.csv", index=False)
    from bioviz.embed import load_confounders

    count = load_confounders(screen)["cell_count"].to_numpy(dtype=float)
    write_caches(screen, {"cell_count": np.c_[count, 2 * count - 3]}, {"cell_count": ["cell_count", "x"]})
    screen = read_screen(screen.root)
    run_benchmark(screen, embedders=["cell_count", "weakly_supervised"], adjust="density", sources=["CORUM"],
                  n_boot=100, with_activity=False)
    recall = pd.read_csv(screen.results_dir / "recall.csv", keep_default_na=False)
    planted = recall[(recall.source == "planted") & (recall.adjusted_for == "")]
    n_planted = len(truth_rel[truth_rel.mechanism != "none"].drop_duplicates(["entity1", "entity2"]))
    assert (planted.n_pairs[planted.mechanism == ""] == n_planted).all()
    assert "none" not in set(planted.mechanism)
    gone = recall[(recall.embedder == "cell_count") & (recall.adjusted_for == "density")]
    assert len(gone) and (gone.recall == "").all() and (gone.reason == "explained by density").all()
    kept = recall[(recall.embedder == "weakly_supervised") & (recall.adjusted_for == "density") & (recall.mechanism == "")
                  & (recall.source == "planted")]
    share = kept.still_planted.astype(float)
    assert ((share >= 0) & (share <= 1)).all()


def test_run_benchmark_bad_input(tmp_path):
    from bioviz.bench.run import run_benchmark

    import dataclasses

    import re

    from bioviz.bench.run import relationships_from_column

    screen = _fake_screen(tmp_path)
    # A screen without controls is legal since compound screens (dae76e3): recall needs
    # control-normalised maps, so it is skipped with one notice naming the control label.
    summary = run_benchmark(dataclasses.replace(screen, control_label="non-targeting"), sources=["CORUM"],
                            embedders=["random"], with_activity=False)
    assert summary["sources"] == [] and summary["skipped_sources"] == {}
    assert any("no control wells" in w and "'non-targeting'" in w and "recall" in w for w in summary["warnings"])
    # A source matching no pair is skipped with its reason (the labels are not gene symbols).
    renamed = _fake_screen(tmp_path / "compounds", rename=lambda p: p if p == "NTC" else f"cmpd_{p}")
    summary = run_benchmark(renamed, sources=["SIGNOR"], embedders=["random"], with_activity=False)
    assert summary["sources"] == [] and list(summary["skipped_sources"]) == ["SIGNOR"]
    assert re.search(r"SIGNOR: no known pair.*gene symbol.*'cmpd_", summary["skipped_sources"]["SIGNOR"])
    assert any("recall skipped" in w for w in summary["warnings"])
    # Still bad input: relationships from a metadata column the screen lacks, naming the column.
    with pytest.raises(BenchmarkError, match="--relationships moa: the metadata has no column 'moa'"):
        relationships_from_column(renamed.obs, "moa", "NTC")
