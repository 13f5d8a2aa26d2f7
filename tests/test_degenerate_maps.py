"""Degenerate is not small: a map whose cosines are +-1 almost everywhere gets "not applicable",
never a recall computed on ties (bench.recall.degenerate_map, issue 9)."""
import numpy as np
import pandas as pd

from bioviz.bench.recall import degenerate_map


def test_one_feature_or_one_direction_is_not_applicable():
    rng = np.random.default_rng(0)
    assert degenerate_map(rng.normal(size=(50, 1))) == "not applicable: one feature, so every cosine is ±1"
    # a second column that is 0 for 97% of perturbations: the old two-count cell_count on demo seed 11
    x = np.column_stack([rng.normal(size=300), np.where(rng.random(300) < 0.03, 1.0, 0.0)])
    why = degenerate_map(x)
    assert why.startswith("not applicable: ") and why.endswith("of pairs tie at cosine ±1 (one direction in practice)"), why
    # the same share measured by brute force
    xn = x / np.linalg.norm(x, axis=1, keepdims=True)
    c = (xn @ xn.T)[np.triu_indices(300, 1)]
    assert f"{(np.abs(c) >= 1 - 1e-6).mean():.0%}" in why
    # rank 1 in many columns
    assert degenerate_map(np.outer(rng.normal(size=40), rng.normal(size=8))).startswith("not applicable")
    # real directions: scored
    assert degenerate_map(rng.normal(size=(300, 3))) == ""
    assert degenerate_map(rng.normal(size=(5000, 4))) == ""  # sampled, still fine


def test_a_single_count_map_is_reported_without_a_number(standin_copy):
    from bioviz.bench import run_benchmark
    from bioviz.bench.results import read_results
    from bioviz.dashboard import datasets as ds
    from bioviz.embed import embed, load_confounders
    from bioviz.screen import read_screen

    screen = read_screen(standin_copy)
    conf = load_confounders(screen)
    path = standin_copy / "one_count.csv"
    conf[["well_id", "cell_count"]].to_csv(path, index=False)
    embed(screen, ["precomputed"], configs={"precomputed": {"path": str(path)}}, workers=0, confounders=False)
    run_benchmark(screen, ["precomputed", "random"], n_boot=50, null_size=100, with_confounder_baselines=False)
    res = read_results(screen)
    rec = res["recall"]
    one = rec[(rec["embedder"] == "precomputed") & (rec["null_model"] == "all")]
    assert len(one) and one["recall"].isna().all()
    assert (one["reason"] == "not applicable: one feature, so every cosine is ±1").all()
    assert rec[rec["embedder"] == "random"]["recall"].notna().all()
    assert "precomputed" in res["summary"]["not_applicable"]
    card = ds.scorecard(rec[rec["null_model"] == "all"], res["probes"])
    row = card.set_index("embedder").loc["precomputed"]
    assert np.isnan(row["mean recall"]) and row["note"] == "no score: one feature, so every cosine is ±1"
