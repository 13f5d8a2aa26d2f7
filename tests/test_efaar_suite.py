"""EFAAR's consistency, magnitude and cluster benchmarks: bit for bit efaar-benchmarking 1.0 (the
oracle, run here), known answers, planted signal, and the not-applicable rows."""
from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

from bioviz.bench import efaar_suite as es
from bioviz.relationships import corum_complexes

efaar = pytest.importorskip("efaar_benchmarking.benchmarking", reason="efaar-benchmarking 1.0 is the oracle")
pytest.importorskip("geomloss", reason="efaar's magnitude benchmark needs geomloss")


def _equal(ref: pd.DataFrame, ours: pd.DataFrame, cols) -> None:
    assert len(ref) == len(ours)
    for c in cols:
        a, b = ref[c].to_numpy(), ours[c].to_numpy()
        if a.dtype.kind in "fc" or b.dtype.kind in "fc":
            a, b = a.astype(float), b.astype(float)
            bad = ~((a == b) | (np.isnan(a) & np.isnan(b)))
            assert not bad.any(), f"{c}: {int(bad.sum())} values differ, e.g. {a[bad][:3]} vs {b[bad][:3]}"
        else:
            assert [list(v) if isinstance(v, list) else v for v in a] == [
                list(v) if isinstance(v, list) else v for v in b
            ], c


def _screen(seed, dtype, *, max_reps=7, n_genes=60, n_null=20, n_ctrl=40, dims=16, ties=False):
    """Wells of genes with 1..max_reps replicates, null genes among them, controls; shuffled."""
    rng = np.random.default_rng(seed)
    genes = [f"G{i}" for i in range(n_genes)]
    nulls = [f"N{i}" for i in range(n_null)]
    labels = []
    for g in genes + nulls:
        labels += [g] * int(rng.integers(1, max_reps + 1))
    labels += ["CTRL"] * n_ctrl
    labels = np.array(labels, dtype=object)[rng.permutation(len(labels))]
    if ties:  # few distinct rows and a zero row: equal cosines, equal distances
        base = rng.integers(-1, 2, size=(8, dims))
        x = base[rng.integers(0, 8, len(labels))].astype(dtype)
        x[0] = 0
    else:
        x = rng.normal(size=(len(labels), dims)).astype(dtype)
    return x, pd.DataFrame({"p": labels}), nulls


CASES = [("normal64", 0, np.float64, False), ("normal32", 1, np.float32, False), ("ties32", 2, np.float32, True),
         ("ties64", 3, np.float64, True)]


@pytest.mark.parametrize("name,seed,dtype,ties", CASES, ids=[c[0] for c in CASES])
def test_consistency_identical_to_efaar(name, seed, dtype, ties):
    x, meta, nulls = _screen(seed, dtype, ties=ties)
    ref = efaar.pert_signal_consistency_benchmark(x, meta, "p", nulls, keys_to_drop=["CTRL"], n_jobs=1)
    ours = es.pert_signal_consistency_benchmark(x, meta, "p", nulls, keys_to_drop=["CTRL"])
    _equal(ref, ours, ["pert", "avgcossim", "pval"])
    assert ours.avgcossim.isna().any() and ours.avgcossim.notna().any()  # 1-well perturbations: NaN, as efaar


@pytest.mark.parametrize("name,seed,dtype,ties", CASES, ids=[c[0] for c in CASES])
def test_magnitude_identical_to_efaar(name, seed, dtype, ties):
    x, meta, nulls = _screen(seed, dtype, ties=ties)
    np.random.seed(seed)  # efaar samples the controls with numpy's global RandomState
    ref = efaar.pert_signal_magnitude_benchmark(x, meta, "p", nulls, "CTRL", max_controls=25, n_jobs=1)
    ours = es.pert_signal_magnitude_benchmark(x, meta, "p", nulls, "CTRL", max_controls=25, random_state=seed)
    _equal(ref, ours, ["pert", "edist", "pval"])
    assert ours.edist.notna().sum() >= 10 and ours.edist.isna().any()  # < 5 wells: NaN, as efaar


def _cluster_map(seed, dtype, n=300):
    rng = np.random.default_rng(seed)
    comp = [c for c in corum_complexes().values() if 4 <= len(c) <= 12][:15]
    members = list(pd.unique(np.concatenate([np.array(c) for c in comp])))
    pool = sorted({g for c in corum_complexes().values() for g in c} - set(members))
    genes = np.array(members + list(rng.choice(pool, n - len(members), replace=False)), dtype=object)
    x = rng.normal(size=(n, 12))
    for c in comp[:5]:  # planted: five complexes share a direction
        x[np.isin(genes, c)] += 2.5 * rng.normal(size=12)
    return x.astype(dtype), genes, comp


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("layout", ["array", "c_frame"])
def test_cluster_identical_to_efaar(dtype, layout, capsys):
    from sklearn.utils import Bunch

    x, genes, _ = _cluster_map(4, dtype)
    # efaar reads DataFrame.values: a frame built from an array (copied) is Fortran-ordered, some
    # (a transposed frame, a float32 groupby mean) C-ordered; row norms differ in the last bit
    feats = pd.DataFrame(x) if layout == "array" else pd.DataFrame(x.T).T
    assert feats.values.flags.c_contiguous == (layout == "c_frame")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ref = efaar.cluster_benchmark(Bunch(features=feats, metadata=pd.DataFrame({"g": genes})), "g", min_genes=3)
        ours = es.cluster_benchmark(feats if layout == "c_frame" else x, genes, min_genes=3)
    _equal(ref, ours, ["cluster", "within_cossim_mean", "between_cossim_mean", "genes", "cluster_size",
                       "not_cluster_size", "ks_stat", "ks_pval"])
    assert len(ours) >= 15


def test_cluster_one_gene_complexes_like_efaar():
    """min_genes=1: one-gene complexes have no within pair; efaar gives NaN and no gene list."""
    from sklearn.utils import Bunch

    x, genes, _ = _cluster_map(5, np.float64, n=120)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ref = efaar.cluster_benchmark(Bunch(features=pd.DataFrame(x), metadata=pd.DataFrame({"g": genes})), "g",
                                      min_genes=1)
        ours = es.cluster_benchmark(x, genes, min_genes=1)
    _equal(ref, ours, ["cluster", "within_cossim_mean", "between_cossim_mean", "genes", "cluster_size",
                       "not_cluster_size", "ks_stat", "ks_pval"])
    assert (ours.cluster_size == 1).any() and ours.ks_pval.isna().any()


def test_ks_statistic_equals_scipy_on_ties():
    from scipy.stats import ks_2samp

    rng = np.random.default_rng(0)
    for _ in range(200):
        n1, n2 = int(rng.integers(1, 30)), int(rng.integers(1, 400))
        a = rng.integers(-3, 4, n1).astype(float)
        b = rng.integers(-3, 4, n2).astype(float) + (rng.random() < 0.5) * rng.normal(size=n2)
        ref = ks_2samp(a, b)
        d, p = es._ks_test(es.ks_statistic(a, b), n1, n2)
        assert d == ref.statistic and p == ref.pvalue


# -- known answers and planted signal -----------------------------------------------------------


def test_consistency_known_answer():
    """Two wells at 90 degrees: mean cosine 0; two at 0 degrees: 1.  Nulls 0.1 and 0.5 -> p."""
    x = np.array([[1, 0], [0, 1],  # A: 0
                  [1, 1], [2, 2],  # B: 1
                  [1, 0], [1, 0.2],  # null N1: cos = 0.98058...
                  [1, 0], [-1, 0.1]], dtype=float)  # null N2: cos = -0.995...
    meta = pd.DataFrame({"p": ["A", "A", "B", "B", "N1", "N1", "N2", "N2"]})
    out = es.pert_signal_consistency_benchmark(x, meta, "p", ["N1", "N2"])
    assert out.pert.tolist() == ["A", "B"]
    assert out.avgcossim.iloc[0] == pytest.approx(0.0, abs=1e-15)
    assert out.avgcossim.iloc[1] == pytest.approx(1.0)
    # A = 0 lies above one of two null values, B above both: p = 1 - rank / 2
    assert out.pval.tolist() == [0.5, 0.0]


def test_magnitude_known_answer():
    """Energy distance of a shifted copy: 2 E|X-Y| - E|X-X'| - E|Y-Y'| on points of a line."""
    ctrl = np.array([[0.0], [1.0], [2.0], [3.0], [4.0], [5.0]])
    shifted = ctrl[:5] + 100.0
    x = np.vstack([ctrl, shifted, ctrl[:5] + 0.0])
    meta = pd.DataFrame({"p": ["C"] * 6 + ["FAR"] * 5 + ["NULL"] * 5})
    out = es.pert_signal_magnitude_benchmark(x, meta, "p", ["NULL"], "C", random_state=0)
    far = out.set_index("pert").loc["FAR"]

    def energy(a, b):  # V-statistics with geomloss's 1e-4 self-distance (sqrt of its 1e-8 clamp)
        d = lambda u, v: np.sqrt(np.maximum((u[:, None, 0] - v[None, :, 0]) ** 2, 1e-8)).mean()
        return 2 * d(a, b) - d(a, a) - d(b, b)

    assert far.edist == pytest.approx(energy(shifted, ctrl), rel=1e-12)
    assert far.pval == 0.0  # farther than the only null perturbation


def test_planted_signal_found_and_noise_not():
    """Genes with a planted replicate signal are consistent and far from controls; noise genes not."""
    rng = np.random.default_rng(11)
    d, reps = 32, 6
    labels, rows = [], []
    for i in range(40):  # null: non-expressed genes, pure noise
        labels += [f"N{i}"] * reps
        rows.append(rng.normal(size=(reps, d)))
    for i in range(20):  # planted: each gene its own direction, 3 sd
        labels += [f"S{i}"] * reps
        rows.append(rng.normal(size=(reps, d)) + 3 * rng.normal(size=d) / np.sqrt(d) * 3)
    for i in range(20):  # expressed but inert: noise
        labels += [f"Z{i}"] * reps
        rows.append(rng.normal(size=(reps, d)))
    labels += ["CTRL"] * 200
    rows.append(rng.normal(size=(200, d)))
    x, meta = np.vstack(rows), pd.DataFrame({"p": labels})
    nulls = [f"N{i}" for i in range(40)]
    cons = es.pert_signal_consistency_benchmark(x, meta, "p", nulls, keys_to_drop=["CTRL"]).set_index("pert")
    mag = es.pert_signal_magnitude_benchmark(x, meta, "p", nulls, "CTRL", random_state=0).set_index("pert")
    planted = [f"S{i}" for i in range(20)]
    inert = [f"Z{i}" for i in range(20)]
    assert (cons.loc[planted, "pval"] == 0).all() and (mag.loc[planted, "pval"] == 0).all()
    assert cons.loc[planted, "avgcossim"].min() > cons.loc[inert, "avgcossim"].max()
    assert (cons.loc[inert, "pval"] < 0.05).sum() <= 3 and (mag.loc[inert, "pval"] < 0.05).sum() <= 3


def test_planted_complexes_separate():
    x, genes, comp = _cluster_map(6, np.float64)
    out = es.cluster_benchmark(x, genes, min_genes=3).set_index("cluster")
    names = [k for k, v in corum_complexes().items() if v in comp]
    planted = [k for k in names if corum_complexes()[k] in comp[:5]]
    other = [k for k in names if k not in planted and k in out.index]
    assert (out.loc[planted, "within_cossim_mean"] > 0.5).all()
    assert (out.loc[planted, "ks_pval"] < 1e-6).all()
    assert out.loc[other, "within_cossim_mean"].abs().max() < out.loc[planted, "within_cossim_mean"].min()


# -- what does not apply -------------------------------------------------------------------------


def test_not_applicable_cases():
    x = np.random.default_rng(0).normal(size=(30, 4))
    one_each = pd.DataFrame({"p": [f"G{i}" for i in range(25)] + ["CTRL"] * 5})
    with pytest.raises(es.NotApplicable, match="no replicates"):
        es.pert_signal_consistency_benchmark(x, pd.DataFrame({"p": [f"G{i}" for i in range(20)] + ["N"] * 10}),
                                             "p", ["N"])
    with pytest.raises(es.NotApplicable, match="no null perturbation is in the screen"):
        es.pert_signal_consistency_benchmark(x, one_each, "p", ["ABSENT"])
    with pytest.raises(es.NotApplicable, match="fewer than 5 wells"):
        es.pert_signal_magnitude_benchmark(
            x, pd.DataFrame({"p": ["G"] * 4 + ["H"] * 4 + ["N"] * 6 + ["CTRL"] * 16}), "p", ["N"], "CTRL")
    with pytest.raises(es.NotApplicable, match="control label 'NONE'"):
        es.pert_signal_magnitude_benchmark(
            x, pd.DataFrame({"p": ["G"] * 8 + ["N"] * 6 + ["CTRL"] * 16}), "p", ["N"], "NONE")
    with pytest.raises(es.NotApplicable, match="no CORUM cluster has 10 or more genes"):
        es.cluster_benchmark(x, [f"NOTAGENE{i}" for i in range(30)])


def test_suite_rows_say_not_applicable_never_a_number():
    """Four wells per gene (the demo's design): consistency from control pseudo-perturbations,
    magnitude not applicable (efaar needs 5), cluster not applicable on non-CORUM labels."""
    rng = np.random.default_rng(1)
    labels = np.array([f"G{i}" for i in range(30) for _ in range(4)] + ["non-targeting"] * 41, dtype=object)
    x = rng.normal(size=(len(labels), 8))
    m = pd.DataFrame(x).groupby(labels).mean()
    m = m.drop(index="non-targeting")
    out = es.suite_rows("emb", x, labels, "non-targeting", m.to_numpy(), m.index)
    cons = out["consistency"]
    assert list(cons.columns) == es.CONSISTENCY_COLUMNS and len(cons) == 30
    assert cons["null"].iloc[0] == "negative controls: 10 pseudo-perturbations of 4 non-targeting wells"
    assert cons["null_size"].iloc[0] == 10 and cons["avgcossim"].notna().all()
    for key, cols in (("magnitude", es.MAGNITUDE_COLUMNS), ("cluster", es.CLUSTER_COLUMNS)):
        row = out[key]
        assert list(row.columns) == cols and len(row) == 1
        assert row["note"].iloc[0].startswith("not applicable: ")
        num = [c for c in cols if c in ("edist", "pval", "within_cossim_mean", "ks_stat", "ks_pval")]
        assert row[num].isna().all(axis=None)
    assert "4 wells" in out["magnitude"]["note"].iloc[0]


def test_control_null_and_expression_null():
    labels = ["A"] * 5 + ["C"] * 23
    nc = es.control_null(labels, "C", 5, seed=0)
    assert len(nc.null_perts) == 4 and (pd.Series(nc.labels).value_counts()[nc.null_perts] == 5).all()
    assert (nc.labels == "C").sum() == 3  # the remainder keeps the control label
    half = es.control_null(labels, "C", 5, reserve=0.5, seed=0)
    assert len(half.null_perts) == 2 and (half.labels == "C").sum() == 13
    assert es.control_null(labels, "C", 5, seed=0).labels.tolist() == nc.labels.tolist()  # reproducible
    ex = es.expression_null(labels + ["OR1A1"] * 3, ["OR1A1", "OR2B2"])
    assert ex.null_perts == ["OR1A1"] and ex.kind == "non-expressed genes" and "1 of 2" in ex.description


def test_bad_input_one_line():
    from bioviz.errors import BenchmarkError

    x = np.zeros((4, 2))
    with pytest.raises(BenchmarkError, match="no column 'gene'"):
        es.pert_signal_consistency_benchmark(x, pd.DataFrame({"p": list("aabb")}), "gene", ["a"])
    with pytest.raises(BenchmarkError, match="4 feature rows but 3 metadata rows"):
        es.pert_signal_consistency_benchmark(x, pd.DataFrame({"p": list("aab")}), "p", ["a"])
    x[1, 1] = np.nan
    with pytest.raises(BenchmarkError, match="row 1"):
        es.pert_signal_consistency_benchmark(x, pd.DataFrame({"p": list("aabb")}), "p", ["a"])
    with pytest.raises(BenchmarkError, match="control_key should not be in keys_to_drop"):
        es.pert_signal_magnitude_benchmark(np.zeros((4, 2)), pd.DataFrame({"p": list("aabb")}), "p", ["a"], "b",
                                           keys_to_drop=["b"])
    with pytest.raises(BenchmarkError, match="GO table is a storage pointer"):
        es.cluster_benchmark(np.zeros((4, 2)), list("abcd"), source="GO")


def test_null_genes_option_reaches_the_consistency_benchmark(standin_copy, tmp_path, capsys):
    """`bioviz benchmark --null-genes FILE`: the consistency null is those genes' wells (efaar's
    non-expressed-gene null), said in the CLI and written to consistency.csv; a list that matches
    no perturbation is one line naming the file."""
    from bioviz.bench.results import read_results
    from bioviz.cli import main
    from bioviz.screen import read_screen

    screen = read_screen(standin_copy)
    perts = sorted(set(screen.obs["perturbation"].astype(str)) - {str(screen.control_label)})
    genes = tmp_path / "not_expressed.txt"
    genes.write_text("# HeLa, TPM < 1\n" + "\n".join(perts[:4] + ["OR1A1"]) + "\n")
    rc = main(["benchmark", "--dataset", str(standin_copy), "--embedders", "random", "--null-genes", str(genes),
               "--n-boot", "20", "--quiet"])
    assert rc == 0
    assert "consistency and magnitude null: non-expressed genes (user list): 4 of 5 in the screen" in \
        capsys.readouterr().out
    cons = read_results(screen, tables=["consistency"])["consistency"]
    assert (cons["null"] == "non-expressed genes (user list): 4 of 5 in the screen").all()
    assert (cons["null_size"] == 4).all()
    # the null genes are the null, not scored against themselves
    assert not set(perts[:4]) & set(cons["perturbation"])

    bad = tmp_path / "mouse.txt"
    bad.write_text("Actb\nGapdh\n")
    for path, msg in ((bad, "none of its 2 genes is a perturbation of this screen (e.g. Actb, Gapdh)"),
                      (tmp_path / "absent.txt", "no such file")):
        assert main(["benchmark", "--dataset", str(standin_copy), "--null-genes", str(path), "--quiet"]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and msg in err[0] and str(path) in err[0], err
