"""Relationships' query view: the perturbation's own activity, then its top-k neighbours in every map."""
import math

import numpy as np
import pandas as pd

from bioviz.dashboard.neighbors import (activity_sentence, known_partners, neighbours_table, neighbours_wide,
                                        query_activity, top_k_similar)


def _profiles(n=40, d=7, seed=0, ties=False):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, d))
    if ties:  # two exact copies: equal cosine to any query, order by name
        x[5] = x[6] = x[7]
    names = [f"G{i:02d}" for i in range(n - 1)] + ["NT"]
    df = pd.DataFrame(x, columns=[f"f{i}" for i in range(d)])
    df.insert(0, "perturbation", names)
    return df


def _brute(df, query, k, control="NT"):
    """Pure-Python cosine ranking (the oracle)."""
    feats = [c for c in df.columns if c.startswith("f")]
    rows = {r["perturbation"]: [float(r[c]) for c in feats] for _, r in df.iterrows()}
    q = rows[query]

    def cos(a, b):
        return sum(x * y for x, y in zip(a, b)) / (math.sqrt(sum(x * x for x in a)) * math.sqrt(sum(y * y for y in b)))

    scored = sorted(((-cos(q, v), name) for name, v in rows.items() if name not in (query, control)))
    return [(name, -s) for s, name in scored[:k]]


def test_top_k_equals_brute_force_cosine_ranking():
    for seed in range(5):
        df = _profiles(seed=seed, ties=seed == 0)
        for query in ("G00", "G07", "G20"):
            got = top_k_similar(df, query, k=8, control_label="NT")
            want = _brute(df, query, 8)
            assert list(got["perturbation"]) == [n for n, _ in want]
            np.testing.assert_allclose(got["cosine"], [c for _, c in want], rtol=1e-12)
            assert list(got["rank"]) == list(range(1, 9))
    # the query matches case-insensitively; absent: empty
    assert list(top_k_similar(df, "g03", 3)["perturbation"]) == [n for n, _ in _brute(df, "G03", 3)]
    assert top_k_similar(df, "NOPE", 3).empty
    # k larger than the map: every other non-control perturbation
    assert len(top_k_similar(df, "G00", 1000, control_label="NT")) == len(df) - 2


def test_neighbours_in_every_map_with_known_pairs_marked():
    maps = {"random": _profiles(seed=1), "weakly_supervised": _profiles(seed=2)}
    pairs = pd.DataFrame({"source": ["CORUM", "planted", "CORUM"], "entity1": ["G01", "G01", "G03"],
                          "entity2": ["G02", "G02", "G01"], "embedder": "x"})
    known = known_partners(pairs, "G01")
    assert known == {"G02": "CORUM+planted", "G03": "CORUM"}
    t = neighbours_table(maps, "G01", k=38, control_label="NT", known=known)
    assert list(dict.fromkeys(t["embedder"])) == ["weakly_supervised", "random"]  # models first
    for emb, prof in maps.items():
        sub = t[t["embedder"] == emb]
        assert list(sub["perturbation"]) == [n for n, _ in _brute(prof, "G01", 38)]
        assert set(sub.loc[sub["known"] != "", "perturbation"]) == {"G02", "G03"}
    wide = neighbours_wide(t[t["rank"] <= 5])
    assert list(wide.columns) == ["rank", "weakly_supervised", "random"] and len(wide) == 5


def test_query_activity_reads_activity_csv_rows():
    act = pd.DataFrame({
        "embedder": ["random", "random", "weakly_supervised", "weakly_supervised", "random"],
        "perturbation": ["TP53", "TP53", "TP53", "TP53", "MDM2"],
        "metric": ["activity", "consistency", "activity", "consistency", "activity"],
        "mean_average_precision": [0.1, 0.2, 0.9, 0.8, 0.5],
        "corrected_p_value": [0.6, 0.7, 0.001, 0.01, 0.5],
        "below_corrected_p": [False, False, True, True, False]})
    t = query_activity(act, "tp53")
    assert list(t["embedder"]) == ["weakly_supervised", "random"]
    w = t.set_index("embedder")
    assert w.loc["weakly_supervised", "activity mAP"] == 0.9 and w.loc["random", "consistency p (FDR)"] == 0.7
    assert bool(w.loc["weakly_supervised", "active"]) and not bool(w.loc["random", "active"])
    s = activity_sentence(t, "TP53")
    assert "active" in s and "1 of 2" in s and "weakly_supervised" in s
    assert query_activity(act, "NOPE").empty and "no activity score" in activity_sentence(query_activity(act, "NOPE"), "NOPE")
    assert "not distinguishable" in activity_sentence(query_activity(act, "MDM2"), "MDM2")


def test_query_activity_shows_efaars_consistency_beside_copairs():
    act = pd.DataFrame({"embedder": ["random", "weakly_supervised"], "perturbation": ["TP53", "TP53"],
                        "metric": ["activity", "activity"], "mean_average_precision": [0.1, 0.9],
                        "corrected_p_value": [0.6, 0.001], "below_corrected_p": [False, True]})
    cons = pd.DataFrame({"embedder": ["weakly_supervised", "weakly_supervised", "random"],
                         "perturbation": ["TP53", "MDM2", "MDM2"], "avgcossim": [0.42, 0.1, 0.0],
                         "pval": [0.003, 0.4, 0.9], "null": "negative controls", "null_size": 10, "note": ""})
    w = query_activity(act, "tp53", cons).set_index("embedder")
    assert w.loc["weakly_supervised", "efaar consistency"] == 0.42
    assert w.loc["weakly_supervised", "efaar consistency p"] == 0.003
    assert np.isnan(w.loc["random", "efaar consistency"])  # random has no TP53 row
    # no consistency.csv (or no row for the query anywhere): the columns are left out, not shown empty
    assert "efaar consistency" not in query_activity(act, "tp53").columns
    assert "efaar consistency" not in query_activity(act, "tp53", cons[cons.perturbation == "MDM2"]).columns
