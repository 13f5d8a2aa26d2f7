"""Confounder-matched nulls (bench.matched_null): binning and coarsening with a known answer, recall
per cell against a brute-force efaar rule, calibration on random maps, bad input, and on an unseen
demo seed (11; never used for tuning) the planted pairs: density-driven recall falls to chance
under matched:density, morphology recall is kept, intensity-driven recall falls under
matched:intensity, and the random embedder is calibrated under every matched null."""
from __future__ import annotations

import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from bioviz.bench import matched_null as mn
from bioviz.errors import BenchmarkError


def _labels(n):
    return [f"G{i:03d}" for i in range(n)]


# -- binning and coarsening: known answers ------------------------------------------------------


def test_quantile_bins_equal_counts_and_ties_share_a_bin():
    b = mn.quantile_bins(np.arange(60, dtype=float), 6)
    assert np.bincount(b).tolist() == [10] * 6
    assert (np.diff(b) >= 0).all()
    tied = mn.quantile_bins(np.array([0, 0, 0, 0, 1, 2, 3, 4, 5, 6.0]), 5)
    assert len(set(tied[:4])) == 1


def test_coarsening_keeps_min_pairs_per_cell_known_answer():
    levels = {"density": np.arange(60, dtype=float)}
    # 6 bins of 10: diagonal cells 45 pairs, off-diagonal 100
    cells, info = mn.choose_bins(levels, ["density"], min_pairs=40)
    assert info["bins"] == {"density": 6} and info["cells"] == 21 and info["smallest_cell"] == 45
    # >= 100 per cell needs bins of >= 15 members (105 pairs on the diagonal): 4 bins
    cells, info = mn.choose_bins(levels, ["density"], min_pairs=100)
    assert info["bins"] == {"density": 4} and info["smallest_cell"] == 105 and info["cells"] == 10
    counts = np.bincount(cells.null_codes().astype(int))
    assert counts[counts > 0].min() == 105 and counts.sum() == 60 * 59 // 2
    # even 2 bins (30 each: 435 pairs on the diagonal) cannot give 500: no cells, a reason with the count
    cells, info = mn.choose_bins(levels, ["density"], min_pairs=500)
    assert cells is None and "1770 null pairs" in info["reason"] and "435 < 500" in info["reason"]


def test_joint_cells_plate_sharing_and_coarsening_order():
    n = 80
    plates = np.zeros((n, 2), dtype=bool)
    plates[:40, 0] = True
    plates[40:, 1] = True
    levels = {"density": np.arange(n, dtype=float), "plate": plates}
    cells = mn.null_cells(levels, ["density", "plate"], {"density": 2})
    i, j = np.array([0, 0, 50]), np.array([1, 60, 70])
    desc = [cells.describe(c) for c in cells.pair_codes(i, j)]
    assert desc == ["density bins 1&1 of 2, shares a plate", "density bins 1&2 of 2, no shared plate",
                    "density bins 2&2 of 2, shares a plate"]
    # the row-major null codes agree with the pair codes of every (i, j), i < j
    ii, jj = np.triu_indices(n, 1)
    assert np.array_equal(cells.null_codes(), cells.pair_codes(ii, jj))
    # the confounder with the most bins coarsens first; plate keeps its two cells
    _, info = mn.choose_bins(levels, ["density", "plate"], min_pairs=150)
    assert info["bins"]["plate"] == 2 and info["smallest_cell"] >= 150


def test_parse_and_labels():
    assert mn.parse_matched("density,density+plate,matched:intensity") == [["density"], ["density", "plate"],
                                                                          ["intensity"]]
    assert mn.null_model_label(["density", "intensity"]) == "matched:density+intensity"
    assert mn.null_model_label([]) == "all"
    with pytest.raises(BenchmarkError, match="unknown confounder 'size'"):
        mn.parse_matched("size")


# -- recall per cell: brute force efaar rule -----------------------------------------------------


def _efaar_recalled(null: np.ndarray, q: float, lo: float, hi: float) -> bool:
    """efaar's rule on one cell: searchsorted left/right in the sorted null, ranks / N."""
    s = np.sort(null)
    left = np.searchsorted(s, q, side="left") / len(s)
    right = np.searchsorted(s, q, side="right") / len(s)
    return bool(right <= lo or left >= hi)


def test_matched_recall_equals_brute_force_per_cell():
    from sklearn.metrics.pairwise import cosine_similarity

    rng = np.random.default_rng(3)
    n = 90
    labels = _labels(n)
    dens = rng.normal(size=n)
    x = rng.normal(size=(n, 8)) + dens[:, None] * np.linspace(0.5, 1.5, 8)  # density-driven map
    levels = {"density": dens}
    rel = pd.DataFrame({"entity1": [labels[a] for a in range(0, 40, 2)], "entity2": [labels[a] for a in range(1, 41, 2)]})
    run = mn.matched_recall(x, labels, levels, ["density"], relationships=rel, with_ranks=True, min_pairs=100)
    cells, _ = mn.choose_bins(levels, ["density"], min_pairs=100)
    cos = cosine_similarity(x, x)
    ii, jj = np.triu_indices(n, 1)
    null_codes = cells.pair_codes(ii, jj)
    pdf = run.pairs["custom"]
    for _, row in pdf.iterrows():
        a, b = labels.index(row.entity1), labels.index(row.entity2)
        code = cells.pair_codes(np.array([a]), np.array([b]))[0]
        cell_null = cos[ii[null_codes == code], jj[null_codes == code]]
        assert row.cell_size == len(cell_null)
        for lo, hi in ((0.05, 0.95), (0.1, 0.9)):
            assert row[f"recalled_{lo}_{hi}"] == _efaar_recalled(cell_null, row.cosine, lo, hi)
        s = np.sort(cell_null)
        pct = (np.searchsorted(s, row.cosine, "left") + np.searchsorted(s, row.cosine, "right")) / (2 * len(s))
        assert row.percentile == pytest.approx(pct)
    # the cell's histogram for the drill-down is the same set of numbers
    a, b = labels.index(pdf.entity1[0]), labels.index(pdf.entity2[0])
    got = mn.cell_null(x, labels, levels, cells, a, b)
    assert len(got) == pdf.cell_size[0]


def test_random_map_is_calibrated_under_every_matched_null():
    """Known pairs = every pair of a random map: recall under each matched null is the tail
    fraction (0.10 at 0.05/0.95, 0.20 at 0.1/0.9) to within the discreteness of the cuts."""
    rng = np.random.default_rng(5)
    n = 240
    labels = _labels(n)
    plates = rng.random((n, 3)) < 0.4
    plates[np.arange(n), rng.integers(0, 3, n)] = True
    levels = {"density": rng.normal(size=n), "intensity": rng.normal(size=(n, 4)), "focus": rng.normal(size=n),
              "plate": plates}
    ii, jj = np.triu_indices(n, 1)
    rel = pd.DataFrame({"entity1": np.array(labels)[ii], "entity2": np.array(labels)[jj]})
    x = rng.normal(size=(n, 16))
    for spec in (["density"], ["intensity"], ["focus"], ["plate"], ["density", "intensity"], ["density", "plate"]):
        run = mn.matched_recall(x, labels, levels, spec, relationships=rel)
        r = run.table.iloc[0]
        assert abs(r["recall_0.05_0.95"] - 0.10) < 0.005, spec
        assert abs(r["recall_0.1_0.9"] - 0.20) < 0.005, spec


def test_matched_null_removes_a_planted_confounder_and_keeps_biology():
    """Synthetic map = density signal + a biology signal shared within complexes: the density
    pairs are recalled against all pairs, at chance against the matched null; biology pairs stay."""
    from bioviz.bench.recall import known_relationship_recall

    rng = np.random.default_rng(11)
    n = 300
    labels = _labels(n)
    dens = rng.normal(0, 0.3, n)
    dens[:60] = rng.normal(-2.0, 0.3, 60)  # 60 low-density perturbations (10 'complexes' of 6)
    bio = rng.normal(size=(n, 12)) * 0.3
    for k in range(10):  # 10 biology complexes of 6 among the others
        bio[60 + 6 * k:66 + 6 * k] += rng.normal(size=12)
    x = np.hstack([dens[:, None] * np.ones((1, 4)) + rng.normal(0, 0.2, (n, 4)), bio])
    dpairs = [(labels[a], labels[b]) for k in range(10) for a in range(6 * k, 6 * k + 6) for b in range(a + 1, 6 * k + 6)]
    bpairs = [(labels[a], labels[b]) for k in range(10) for a in range(60 + 6 * k, 66 + 6 * k)
              for b in range(a + 1, 66 + 6 * k)]
    rels = {"density": pd.DataFrame(dpairs, columns=["entity1", "entity2"]),
            "biology": pd.DataFrame(bpairs, columns=["entity1", "entity2"])}
    plain = known_relationship_recall(x, labels, relationships=rels).table.set_index("source")["recall_0.05_0.95"]
    matched = mn.matched_recall(x, labels, {"density": dens}, ["density"], relationships=rels).table
    matched = matched.set_index("source")["recall_0.05_0.95"]
    assert plain["density"] > 0.5
    assert abs(matched["density"] - 0.10) <= 0.1
    assert matched["biology"] >= 0.8 * plain["biology"]


# -- levels and bad input -------------------------------------------------------------------------


def _screen_tables(n_pert=30, reps=3, seed=0):
    rng = np.random.default_rng(seed)
    perts = ["NT"] * 12 + [f"G{i}" for i in range(n_pert) for _ in range(reps)]
    m = len(perts)
    obs = pd.DataFrame({"well_id": [f"w{i}" for i in range(m)], "perturbation": perts,
                        "batch": np.where(np.arange(m) % 2 == 0, "b1", "b2"),
                        "plate": np.where(np.arange(m) % 3 == 0, "P1", "P2")})
    conf = pd.DataFrame({"well_id": obs.well_id, "cell_count": rng.integers(5, 40, m),
                         "intensity_DNA": rng.normal(100, 5, m), "intensity_RNA": rng.normal(50, 5, m),
                         "focus": np.ones(m), "plate": obs.plate, "batch": obs.batch})
    return obs, conf


def test_levels_are_control_standardised_log_counts_per_batch():
    obs, conf = _screen_tables()
    labels = [f"G{i}" for i in range(30)]
    levels, skipped = mn.perturbation_levels(obs, conf, "NT", labels, ["density"])
    t = obs.merge(conf[["well_id", "cell_count"]], on="well_id")
    t["v"] = np.log1p(t.cell_count)
    c = t[t.perturbation == "NT"].groupby("batch")["v"].agg(["mean", "std"])
    c["std"] = t[t.perturbation == "NT"].groupby("batch")["v"].std(ddof=0)
    t["z"] = (t.v - t.batch.map(c["mean"])) / t.batch.map(c["std"])
    want = t.groupby("perturbation")["z"].mean().reindex(labels).to_numpy()
    assert np.allclose(levels["density"], want)
    assert not skipped


def test_bad_input_constant_absent_and_profiles_only():
    obs, conf = _screen_tables()
    labels = [f"G{i}" for i in range(30)]
    levels, skipped = mn.perturbation_levels(obs, conf, "NT", labels, ["focus", "density"])
    assert "density" in levels and "focus" not in levels
    assert skipped["focus"].startswith("matched null focus: focus is constant") and "skipped" in skipped["focus"]
    _, skipped = mn.perturbation_levels(obs, conf.drop(columns="cell_count"), "NT", labels, ["density"])
    assert "looked for cell_count, Count_Cells" in skipped["density"]
    # a profiles-only dataset: no confounder table, a count column in the metadata is used
    _, skipped = mn.perturbation_levels(obs, None, "NT", labels, ["density"])
    assert "no cell-count column in the metadata" in skipped["density"] and "looked for cell_count" in skipped["density"]
    obs2 = obs.assign(Count_Cells=conf.cell_count)
    levels, skipped = mn.perturbation_levels(obs2, None, "NT", labels, ["density"])
    assert "density" in levels and not skipped


def test_benchmark_matched_reports_skips_and_too_few_pairs():
    obs, conf = _screen_tables()
    rng = np.random.default_rng(0)
    labels = [f"G{i}" for i in range(30)]
    m = pd.DataFrame(rng.normal(size=(30, 5)), columns=[f"f{i}" for i in range(5)])
    m.insert(0, "perturbation", labels)
    rel = {"custom": pd.DataFrame({"entity1": labels[:10], "entity2": labels[10:20]})}
    warnings = []
    frames, failed, info = mn.benchmark_matched({"e": m}, obs, conf, "NT", "density,focus", relationships=rel,
                                                warnings=warnings)
    # 30 perturbations: 435 null pairs, fewer than one cell needs
    assert failed and failed[0][0] == "matched:density" and "435 null pairs" in failed[0][1]
    assert any("focus is constant" in w for w in warnings)
    assert "skipped" in info["matched:focus"] and not frames


# -- the unseen demo seed ---------------------------------------------------------------------------

SEED = 11  # never used to tune the simulator, the models or the matched null
NEEDED = ("cell_count", "pixel_stats", "morphology", "random")
NULLS = "density,intensity,focus,plate,density+intensity"


def _bioviz(*args):
    r = subprocess.run([sys.executable, "-m", "bioviz", *args], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr[-2000:]
    return r


@pytest.fixture(scope="session")
def unseen_demo(tmp_path_factory):
    """The default demo at an unseen seed, four cheap embedders, benchmarked under every matched
    null (built once per session: ~3 min on 2 quiet cores)."""
    root = tmp_path_factory.mktemp("matched_demo") / "screen"
    _bioviz("demo", "--preset", "default", "--seed", str(SEED), "--out", str(root), "--quiet")
    _bioviz("embed", "--dataset", str(root), "--embedders", ",".join(NEEDED), "--quiet")
    r = _bioviz("benchmark", "--dataset", str(root), "--matched-null", NULLS, "--adjust", "density",
                "--n-boot", "200", "--quiet")
    return root, r


def _planted(root):
    from bioviz.bench.results import read_results
    from bioviz.screen import read_screen

    rec = read_results(read_screen(root, check_images=False), tables=["recall"], null_model=None)["recall"]
    return rec[(rec.source == "planted") & (rec.threshold == "0.05_0.95") & (rec.adjusted_for == "")]


@pytest.mark.slow
def test_unseen_seed_random_embedder_calibrated_under_every_matched_null(unseen_demo):
    root, _ = unseen_demo
    rec = _planted(root)
    rnd = rec[(rec.embedder == "random") & (rec.mechanism == "")]
    models = set(rnd.null_model)
    assert {"all", "matched:density", "matched:intensity", "matched:focus", "matched:density+intensity"} <= models
    for _, r in rnd.iterrows():
        if r.reason:
            continue
        assert r.ci_low <= 0.10 <= r.ci_high, (r.null_model, r.recall, r.ci_low, r.ci_high)


@pytest.mark.slow
def test_unseen_seed_density_to_chance_morphology_kept_intensity_to_chance(unseen_demo):
    root, _ = unseen_demo
    rec = _planted(root).set_index(["embedder", "mechanism", "null_model"])["recall"]
    # cell_count is checked in its own xfail test below: since it holds counts only (issue 9) its raw
    # planted-density recall on seed 11 is 0, so there is no density recall to remove.
    for emb in ("pixel_stats",):
        assert rec[(emb, "density", "all")] > 0.2, emb  # density drives it against all pairs
        # no recall beyond chance + 0.05 is left. Measured at seed 11: cell_count 0.277 -> 0.104,
        # pixel_stats 0.486 -> 0.048: below 0.10 because the density pairs make up most of the
        # lowest-density cell's own null, so they fill its upper tail only (one-sided chance, 0.05)
        assert rec[(emb, "density", "matched:density")] <= 0.10 + 0.05, emb
        assert rec[(emb, "density", "matched:density")] <= 0.5 * rec[(emb, "density", "all")], emb
    all_m = rec[("morphology", "morphology", "all")]
    assert all_m > 0.2
    assert rec[("morphology", "morphology", "matched:density")] >= 0.8 * all_m
    ci = rec[("confounder:intensity", "intensity", "all")]
    assert ci > 0.2
    assert abs(rec[("confounder:intensity", "intensity", "matched:intensity")] - 0.10) <= 0.05


@pytest.mark.slow
def test_unseen_seed_cell_count_density_to_chance(unseen_demo):
    # measured on seed 11 with cell_count's three counts (crowded_nuclei added): 0.390 all pairs ->
    # 0.072 matched on density (it was 0 all pairs with two counts: a map of ties)
    root, _ = unseen_demo
    rec = _planted(root).set_index(["embedder", "mechanism", "null_model"])["recall"]
    assert rec[("cell_count", "density", "all")] > 0.2
    assert rec[("cell_count", "density", "matched:density")] <= 0.10 + 0.05


@pytest.mark.slow
def test_unseen_seed_results_files_carry_null_model_and_bins(unseen_demo):
    import json

    root, _ = unseen_demo
    summary = json.loads((root / "results" / "summary.json").read_text())
    assert summary["matched_null"]["matched:density"]["bins"]["density"] >= 2
    assert summary["matched_null"]["matched:density"]["smallest_cell"] >= mn.MIN_PAIRS
    pairs = pd.read_parquet(root / "results" / "pairs.parquet")
    assert {"all", "matched:density"} <= set(pairs.null_model)
    md = pairs[pairs.null_model == "matched:density"]
    assert md.null_cell.str.startswith("density bins").all()
    # read_results gives the all-pairs rows by default: old views count every pair once
    from bioviz.bench.results import read_results
    from bioviz.screen import read_screen

    p = read_results(read_screen(root, check_images=False), tables=["pairs"])["pairs"]
    assert set(p.null_model) == {"all"}


# -- what the dashboard says ---------------------------------------------------------------------


def _recall_rows():
    rows = []
    def add(emb, null_model, adj, rec, reason=""):
        rows.append(dict(embedder=emb, source="planted", threshold="0.05/0.95", recall=rec, ci_low=rec - 0.03,
                         ci_high=rec + 0.03, adjusted_for=adj, mechanism="", n_pairs=100, null_size=1000,
                         null_model=null_model, reason=reason))
    # cell_count: density drives it; matched and regression agree on chance
    add("cell_count", "all", "", 0.37); add("cell_count", "all", "density", 0.08); add("cell_count", "matched:density", "", 0.09)
    # pixel_stats: the regression leaves it high, the matched null removes it: they disagree
    add("pixel_stats", "all", "", 0.67); add("pixel_stats", "all", "density", 0.60); add("pixel_stats", "matched:density", "", 0.10)
    add("morphology", "all", "", 0.54); add("morphology", "all", "density", 0.55); add("morphology", "matched:density", "", 0.60)
    return pd.DataFrame(rows)


def test_null_model_table_and_findings_agree_and_disagree():
    from bioviz.dashboard import nulls
    from bioviz.dashboard.findings import matched_null_findings

    rec = _recall_rows()
    t = nulls.null_model_table(rec, threshold="0.05_0.95", source="planted", matched="matched:density")
    assert t.groupby("embedder").size().eq(3).all()
    assert list(t[t.embedder == "cell_count"]["null"]) == ["all pairs", "adjusted for density", "matched:density"]
    cmp_ = nulls.compare_nulls(t).set_index("embedder")
    assert cmp_.loc["cell_count", "agree"] == True and cmp_.loc["pixel_stats", "agree"] == False  # noqa: E712
    notes = nulls.findings(rec, threshold="0.05/0.95")
    cc = [n for n in notes if "cell_count" in n]
    assert cc and "0.09 under the matched:density null" in cc[0] and "agrees (0.08)" in cc[0]
    px = [n for n in notes if "pixel_stats" in n]
    assert px and "disagree by 0.50" in px[0]
    mo = [n for n in notes if "morphology" in n]
    assert mo and "keeps its recall beyond the confounder" in mo[0] and "0.60 under the matched:density" in mo[0]
    assert matched_null_findings(rec, threshold="0.05/0.95")  # Home's wrapper says the same
    assert matched_null_findings(rec[rec.null_model == "all"], threshold="0.05/0.95") == []


def test_findings_name_the_reason_when_a_matched_null_has_no_number():
    from bioviz.dashboard import nulls

    rec = _recall_rows()
    rec.loc[rec.null_model == "matched:density", "recall"] = np.nan
    rec.loc[rec.null_model == "matched:density", "reason"] = "too few pairs for a matched null: 435 null pairs"
    notes = nulls.findings(rec, threshold="0.05/0.95")
    assert notes == ["No matched:density null for planted: too few pairs for a matched null: 435 null pairs."]


def test_matched_cell_histogram_holds_the_pairs_of_that_cell():
    from bioviz.dashboard import nulls

    obs, conf = _screen_tables(n_pert=60, reps=3)
    rng = np.random.default_rng(1)
    labels = [f"G{i}" for i in range(60)]
    prof = pd.DataFrame(rng.normal(size=(60, 6)), columns=[f"f{i}" for i in range(6)])
    prof.insert(0, "perturbation", labels)
    cell = nulls.matched_cell(prof, obs, conf, "NT", "matched:density", {"density": 3}, "G1", "G2")
    levels, _ = mn.perturbation_levels(obs, conf, "NT", labels, ["density"])
    b = mn.quantile_bins(levels["density"], 3)
    k = np.bincount(b)
    lo, hi = sorted((b[1], b[2]))
    assert cell["size"] == (k[lo] * (k[lo] - 1) // 2 if lo == hi else k[lo] * k[hi])
    assert cell["cell"] == f"density bins {lo + 1}&{hi + 1} of 3"
    x = prof[[f"f{i}" for i in range(6)]].to_numpy()
    assert cell["value"] == pytest.approx(x[1] @ x[2] / np.linalg.norm(x[1]) / np.linalg.norm(x[2]))
    assert 0 <= cell["percentile"] <= 100 and len(cell["values"]) == cell["size"]
    assert nulls.matched_cell(prof, obs, conf, "NT", "matched:density", {"density": 3}, "G1", "NOPE") is None
