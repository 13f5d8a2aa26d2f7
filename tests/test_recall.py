"""EFAAR recall: number for number efaar-benchmarking 1.0 (run here as the oracle), plus bad input."""
from __future__ import annotations

import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from bioviz.bench.bootstrap import bootstrap_ci, holm, pair_clusters, paired_bootstrap_pvalue
from bioviz.bench.recall import (
    _k_left,
    _k_right,
    compact_upper,
    known_relationship_recall,
    null_cuts,
    null_ranks,
    recall_table,
)
from bioviz.errors import BenchmarkError
from bioviz.relationships import load_relationships



def _efaar():
    """The oracle, imported by the tests that need it only: a module-level importorskip would
    skip the oracle-free tests below too."""
    return pytest.importorskip("efaar_benchmarking.benchmarking", reason="efaar-benchmarking 1.0 is the oracle")

SOURCES = ["CORUM", "SIGNOR"]  # the big tables (StringDB, Reactome, HuMAP) cost the oracle seconds each


def _corum_genes():
    r = load_relationships("CORUM")
    return pd.unique(pd.concat([r.entity1, r.entity2]))


def _oracle(df: pd.DataFrame, genes, sources=SOURCES, thr=((0.05, 0.95), (0.1, 0.9)), rel_dir=None):
    from sklearn.utils import Bunch

    kw = {"benchmark_data_dir": rel_dir} if rel_dir else {}
    return _efaar().known_relationship_benchmark(
        Bunch(features=df, metadata=pd.DataFrame({"gene": genes})), "gene",
        benchmark_sources=list(sources), recall_thr_pairs=list(thr), **kw,
    )


def _maps():
    """Random and tie-heavy maps: integer features, duplicated rows, a zero row, float32/64."""
    rng = np.random.default_rng(7)
    genes = _corum_genes()
    out = []
    n = 600
    # a complex-structured map: genes of one CORUM complex share a direction
    g = rng.choice(genes, n, replace=False)
    x = rng.normal(size=(n, 24))
    out.append(("normal64", g, x))
    out.append(("normal32", g, x.astype(np.float32)))
    out.append(("int3", g, rng.integers(-1, 2, size=(n, 3)).astype(np.float32)))
    out.append(("int1", g, rng.integers(-2, 3, size=(n, 1)).astype(np.float64)))  # cosines all in {-1, 0, 1}
    base = rng.normal(size=(40, 8)).astype(np.float32)
    dup = base[rng.integers(0, 40, n)]
    dup[5] = 0.0
    out.append(("dup_rows32", g, dup))
    # structured: mix a shared complex signal into the first genes so many pairs are recalled
    from bioviz.relationships import corum_complexes

    comp = [c for c in corum_complexes().values() if 5 <= len(c) <= 15][:20]
    members = pd.unique(np.concatenate([np.array(c) for c in comp]))
    rest = [x for x in genes if x not in set(members)]
    g2 = np.concatenate([members, rng.choice(rest, n - len(members), replace=False)])
    x2 = rng.normal(size=(len(g2), 16))
    for i, c in enumerate(comp):
        idx = np.flatnonzero(np.isin(g2, c))
        x2[idx] += 2.0 * rng.normal(size=16)
    out.append(("complexes", g2, x2))
    return out


@pytest.mark.parametrize("name,genes,x", _maps(), ids=lambda v: v if isinstance(v, str) else "")
def test_identical_to_efaar(name, genes, x):
    df = pd.DataFrame(x, columns=[f"f{i}" for i in range(x.shape[1])])
    ref = _oracle(df, genes)
    ours = recall_table(df, genes, sources=SOURCES)
    pd.testing.assert_frame_equal(ours, ref[ours.columns], check_exact=True)
    assert set(ref.columns) == set(ours.columns)


def test_identical_with_odd_thresholds_and_custom_pairs(tmp_path):
    """User pairs with genes absent from the map, A-B and B-A duplicates and self-pairs."""
    rng = np.random.default_rng(3)
    genes = np.array([f"G{i:03d}" for i in range(200)])
    pairs = pd.DataFrame({"entity1": rng.choice(genes, 400), "entity2": rng.choice(genes, 400)})
    pairs = pd.concat([pairs, pairs.rename(columns={"entity1": "entity2", "entity2": "entity1"}),
                       pd.DataFrame({"entity1": ["G001", "ABSENT"], "entity2": ["G001", "G002"]})])
    (tmp_path / "mine.txt").write_text(pairs.to_csv(index=False))
    x = rng.integers(0, 3, size=(200, 2)).astype(np.float32)
    df = pd.DataFrame(x, columns=["a", "b"])
    thr = ((0.9, 0.1), (0.25, 0.75), (0.0, 1.0), (0.5, 0.5))
    ref = _oracle(df, genes, sources=["mine"], thr=thr, rel_dir=str(tmp_path))
    ours = recall_table(df, genes, relationships={"mine": pairs}, thresholds=thr)
    pd.testing.assert_frame_equal(ours, ref[ours.columns], check_exact=True)


def test_order_statistics_match_searchsorted():
    """The two cut values reproduce efaar's rank comparisons for every query, ties included."""
    rng = np.random.default_rng(0)
    for n in (7, 100, 1000, 999):
        null = rng.integers(0, 5, size=n).astype(float)
        q = np.concatenate([rng.integers(-1, 6, size=50).astype(float), null[:5]])
        s = np.sort(null)
        left = np.searchsorted(s, q, "left") / n
        right = np.searchsorted(s, q, "right") / n
        thr = [(0.05, 0.95), (0.1, 0.9), (0.2, 0.8), (0.0, 1.0), (0.3, 0.31)]
        cuts = null_cuts(null.copy(), thr)
        for (lo, hi), flag in zip(thr, cuts.recalled(q)):
            np.testing.assert_array_equal(flag, (right <= lo) | (left >= hi))
        lt, le = null_ranks(null, q)
        np.testing.assert_array_equal(lt, np.searchsorted(s, q, "left"))
        np.testing.assert_array_equal(le, np.searchsorted(s, q, "right"))
    for n in (3, 20, 49, 1000):
        for t in (0.0, 0.05, 0.1, 0.3, 0.9, 0.95, 1.0):
            c = _k_left(t, n)
            assert c / n <= t if c >= 0 else True
            assert c == n or (c + 1) / n > t
            c = _k_right(t, n)
            assert c > n or c / n >= t
            assert c == 0 or (c - 1) / n < t


def test_compact_upper_both_layouts():
    rng = np.random.default_rng(1)
    m = rng.normal(size=(30, 30))
    ref = np.sort(m[np.triu_indices(30, 1)])
    np.testing.assert_array_equal(np.sort(compact_upper(m.copy(order="C"))), ref)
    np.testing.assert_array_equal(np.sort(compact_upper(m.copy(order="F"))), ref)


def test_random_embedding_recalls_about_ten_percent():
    """No signal: a pair is in the outer 5% on either side with probability 0.10."""
    rng = np.random.default_rng(11)
    genes = _corum_genes()[:3000]
    x = rng.normal(size=(len(genes), 32))
    t = recall_table(x, genes, sources=["CORUM"])
    assert t["query_distribution_size"].iloc[0] > 2000
    assert abs(t["recall_0.05_0.95"].iloc[0] - 0.10) < 0.02
    assert abs(t["recall_0.1_0.9"].iloc[0] - 0.20) < 0.03


def test_bad_input_is_one_clear_error():
    rng = np.random.default_rng(0)
    genes = _corum_genes()[:50]
    x = rng.normal(size=(50, 4))
    with pytest.raises(BenchmarkError, match="at least 20"):
        recall_table(x[:19], genes[:19], sources=["CORUM"])
    with pytest.raises(BenchmarkError, match="duplicated perturbation labels"):
        recall_table(x, np.r_[genes[:49], genes[:1]], sources=["CORUM"])
    bad = x.copy()
    bad[3, 2] = np.nan
    with pytest.raises(BenchmarkError, match="NaN"):
        recall_table(bad, genes, sources=["CORUM"])
    with pytest.raises(BenchmarkError, match="CORUM.*no.*gene symbol"):
        recall_table(x, [f"compound_{i}" for i in range(50)], sources=["CORUM"])
    with pytest.raises(BenchmarkError, match="unknown relationship source"):
        recall_table(x, genes, sources=["KEGG"])


def test_pair_percentiles_and_flags_agree():
    rng = np.random.default_rng(5)
    genes = _corum_genes()[:400]
    res = known_relationship_recall(rng.normal(size=(400, 8)), genes, sources=["CORUM"], with_ranks=True)
    p = res.pairs["CORUM"]
    n = res.cuts.size
    np.testing.assert_array_equal(p["recalled_0.05_0.95"], (p.count_le / n <= 0.05) | (p.count_lt / n >= 0.95))
    assert p["recalled_0.05_0.95"].mean() == res.table["recall_0.05_0.95"].iloc[0]


def test_bootstrap_ci_and_paired_pvalue():
    rng = np.random.default_rng(2)
    a = rng.random(2000) < 0.30
    b = rng.random(2000) < 0.20
    lo, hi = bootstrap_ci(a, n_boot=500)
    assert lo < a.mean() < hi and hi - lo < 0.06
    # 0 and 1 get a real interval (Wilson over the units), never [0, 0]
    lo0, hi0 = bootstrap_ci(np.zeros(40, bool), clusters=np.repeat(np.arange(10), 4))
    assert lo0 == 0 and hi0 == pytest.approx(1.96 ** 2 / (10 + 1.96 ** 2), rel=1e-3)
    lo1, hi1 = bootstrap_ci(np.ones(40, bool))
    assert hi1 == 1 and 0.85 < lo1 < 0.95
    assert paired_bootstrap_pvalue(a, b, n_boot=500)["p_value"] < 0.01
    same = paired_bootstrap_pvalue(a, a.copy(), n_boot=500)
    assert same["p_value"] == 1.0 and same["diff"] == 0.0
    assert paired_bootstrap_pvalue(b, a, n_boot=500)["p_value"] > 0.9


def test_cluster_bootstrap_is_wider_when_pairs_share_genes():
    """Complexes recalled all-or-nothing: resampling pairs pretends 10x the information there is."""
    rng = np.random.default_rng(3)
    sizes = rng.integers(3, 8, 60)
    e1, e2, hit = [], [], []
    for c, k in enumerate(sizes):  # a clique of k genes per complex, recalled or not as a whole
        genes = [f"C{c}_{g}" for g in range(k)]
        pairs = [(a, b) for i, a in enumerate(genes) for b in genes[i + 1:]]
        e1 += [a for a, _ in pairs]
        e2 += [b for _, b in pairs]
        hit += [rng.random() < 0.3] * len(pairs)
    cl, unit = pair_clusters(e1, e2)
    assert unit == "complex" and len(np.unique(cl)) == 60
    naive = np.subtract(*bootstrap_ci(hit, n_boot=500)[::-1])
    clustered = np.subtract(*bootstrap_ci(hit, n_boot=500, clusters=cl)[::-1])
    assert clustered > 2.5 * naive
    # one giant component (a dense source): genes are resampled, a pair weighted by both its genes
    cl2, unit2 = pair_clusters(["A", "A", "B", "C"], ["B", "C", "C", "D"])
    assert unit2 == "gene" and cl2.tolist() == [[0, 1], [0, 2], [1, 2], [2, 3]]
    hub = rng.random(300) < 0.5  # 300 pairs of one hub gene: resampling genes sees ~1 unit of information
    e1 = ["HUB"] * 300
    e2 = [f"G{i}" for i in range(300)]
    cl3, _ = pair_clusters(e1, e2)
    lo, hi = bootstrap_ci(hub, n_boot=300, clusters=np.c_[cl3, cl3] if cl3.ndim == 1 else cl3)
    assert np.isfinite([lo, hi]).all() and lo <= hub.mean() <= hi


def test_holm():
    np.testing.assert_allclose(holm([0.01, 0.04, 0.03, np.nan, 0.5]), [0.04, 0.09, 0.09, np.nan, 0.5])


def test_cli_recall(tmp_path):
    rng = np.random.default_rng(4)
    genes = _corum_genes()[:300]
    df = pd.DataFrame(rng.normal(size=(300, 6)), columns=[f"f{i}" for i in range(6)])
    df.insert(0, "gene", genes)
    df["note"] = "x"  # a non-numeric column beside the features is ignored, with a message
    df.to_parquet(tmp_path / "map.parquet")
    out = tmp_path / "out.csv"
    cmd = [sys.executable, "-m", "bioviz", "recall", "--map", str(tmp_path / "map.parquet"), "--pert-col", "gene",
           "--sources", "CORUM,SIGNOR", "--thresholds", "0.05,0.95", "0.1,0.9", "--out", str(out)]
    r = subprocess.run(cmd, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    got = pd.read_csv(out)
    assert list(got.columns) == ["source", "null_distribution_size", "query_distribution_size",
                                 "recall_0.05_0.95", "recall_0.1_0.9"]
    ref = recall_table(df[[f"f{i}" for i in range(6)]], genes, sources=["CORUM", "SIGNOR"])
    np.testing.assert_allclose(got[ref.columns[1:]].to_numpy(float), ref[ref.columns[1:]].to_numpy(float))
    df.iloc[:10].to_csv(tmp_path / "small.csv", index=False)
    r = subprocess.run([*cmd[:5], str(tmp_path / "small.csv"), *cmd[6:]], capture_output=True, text=True)
    assert r.returncode == 2 and "at least 20" in r.stderr and "Traceback" not in r.stderr


def test_select_ranks_on_a_large_null_is_exact():
    """The sampled-bracket path (nulls over 800k values) against a full sort, with heavy ties."""
    from bioviz.bench.recall import select_ranks

    rng = np.random.default_rng(9)
    for x in (rng.normal(size=1_000_000).astype(np.float32), rng.integers(0, 9, size=900_001).astype(float)):
        ks = sorted({int(len(x) * f) for f in (0.0, 0.05, 0.1, 0.5, 0.9, 0.95)} | {len(x) - 1})
        ref = np.sort(x)
        got = select_ranks(x.copy(), ks)
        assert [got[k] for k in ks] == [ref[k] for k in ks]
