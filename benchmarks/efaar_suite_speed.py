"""EFAAR's consistency, magnitude and cluster benchmarks: efaar-benchmarking 1.0 against bioviz, one run.

    python benchmarks/efaar_suite_speed.py [--genes 8000] [--wells 6] [--controls 500] [--dims 128]
                                          [--null 400] [--efaar-jobs 1] [--only consistency magnitude cluster]

A random float32 screen of real gene symbols: ``--wells`` replicate wells per gene, ``--controls``
control wells, ``--null`` of the genes used as the null ("non-expressed") perturbations; its map
(mean per gene) for the cluster benchmark (CORUM complexes with >= 10 map genes, efaar's default).
Each benchmark is timed through ``efaar_benchmarking.benchmarking`` and through
``bioviz.bench.efaar_suite`` on the same input; the script prints both times, the ratio, and
whether every number of the two tables is identical (bit for bit, NaN where NaN).  Exits 1 if
any number differs.

efaar runs with ``n_jobs=--efaar-jobs`` (default 1: its sequential path, so the comparison is CPU
time against CPU time on a shared machine; its default 5 spawns loky workers and pickles the
control sample into every task) and ``--torch-threads`` torch threads (default 1, its fastest on
a loaded machine; bioviz's per-perturbation loop always uses one).
"""
from __future__ import annotations

import argparse
import sys
import time
import warnings

import numpy as np
import pandas as pd


def gene_pool() -> np.ndarray:
    from bioviz.relationships import SOURCES, load_relationships

    genes = pd.unique(pd.concat([pd.concat([t.entity1, t.entity2]) for t in map(load_relationships, SOURCES)]))
    return np.sort(genes)


def same(a: pd.DataFrame, b: pd.DataFrame, cols) -> bool:
    for c in cols:
        x, y = a[c].to_numpy(), b[c].to_numpy()
        if x.dtype.kind in "fc" or y.dtype.kind in "fc":
            if not np.array_equal(x.astype(float), y.astype(float), equal_nan=True):
                return False
        elif [list(v) if isinstance(v, (list, tuple)) else v for v in x] != [
            list(v) if isinstance(v, (list, tuple)) else v for v in y
        ]:
            return False
    return len(a) == len(b)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--genes", type=int, default=8000)
    ap.add_argument("--wells", type=int, default=6, help="replicate wells per gene (efaar's magnitude needs 5)")
    ap.add_argument("--controls", type=int, default=500)
    ap.add_argument("--null", type=int, default=400, help="genes used as the null perturbations")
    ap.add_argument("--dims", type=int, default=128)
    ap.add_argument("--efaar-jobs", type=int, default=1)
    ap.add_argument("--only", nargs="+", default=["consistency", "magnitude", "cluster"])
    ap.add_argument("--torch-threads", type=int, default=1,
                    help="torch threads for efaar's geomloss calls (on a loaded 2-core machine 2 threads spin: 50x slower)")
    args = ap.parse_args(argv)
    warnings.filterwarnings("ignore")
    import torch

    torch.set_num_threads(args.torch_threads)

    from efaar_benchmarking import benchmarking as eb
    from sklearn.utils import Bunch

    from bioviz.bench import efaar_suite as es

    rng = np.random.default_rng(0)
    genes = rng.choice(gene_pool(), args.genes, replace=False)
    labels = np.concatenate([np.repeat(genes, args.wells), np.repeat(["non-targeting"], args.controls)])
    labels = labels[rng.permutation(len(labels))].astype(object)
    x = rng.normal(size=(len(labels), args.dims)).astype(np.float32)
    meta = pd.DataFrame({"gene": labels})
    null = list(genes[: args.null])
    rows = []
    all_same = True

    def record(name, t_efaar, t_ours, ok, n):
        nonlocal all_same
        all_same &= ok
        rows.append({"benchmark": name, "genes": args.genes, "rows": n, "efaar_s": round(t_efaar, 2),
                     "bioviz_s": round(t_ours, 3), "ratio": round(t_efaar / t_ours, 1), "identical": ok})
        print(rows[-1], file=sys.stderr, flush=True)

    if "consistency" in args.only:
        t = time.perf_counter()
        ref = eb.pert_signal_consistency_benchmark(x, meta, "gene", null, keys_to_drop=["non-targeting"],
                                                   n_jobs=args.efaar_jobs)
        t_e = time.perf_counter() - t
        t = time.perf_counter()
        ours = es.pert_signal_consistency_benchmark(x, meta, "gene", null, keys_to_drop=["non-targeting"])
        t_o = time.perf_counter() - t
        record("consistency", t_e, t_o, same(ref, ours, ["pert", "avgcossim", "pval"]), len(ours))
    if "magnitude" in args.only:
        np.random.seed(0)
        t = time.perf_counter()
        ref = eb.pert_signal_magnitude_benchmark(x, meta, "gene", null, "non-targeting", n_jobs=args.efaar_jobs)
        t_e = time.perf_counter() - t
        t = time.perf_counter()
        ours = es.pert_signal_magnitude_benchmark(x, meta, "gene", null, "non-targeting", random_state=0)
        t_o = time.perf_counter() - t
        record("magnitude", t_e, t_o, same(ref, ours, ["pert", "edist", "pval"]), len(ours))
    if "cluster" in args.only:
        frame = pd.DataFrame(x)
        frame["gene"] = labels
        agg = frame.groupby("gene", sort=True).mean()
        feats = agg.reset_index(drop=True)
        t = time.perf_counter()
        ref = eb.cluster_benchmark(Bunch(features=feats, metadata=pd.DataFrame({"gene": agg.index})), "gene")
        t_e = time.perf_counter() - t
        t = time.perf_counter()
        ours = es.cluster_benchmark(feats, agg.index)
        t_o = time.perf_counter() - t
        cols = ["cluster", "within_cossim_mean", "between_cossim_mean", "genes", "cluster_size", "not_cluster_size",
                "ks_stat", "ks_pval"]
        record("cluster", t_e, t_o, same(ref, ours, cols), len(ours))
    print(pd.DataFrame(rows).to_string(index=False))
    print("identical numbers:", "yes" if all_same else "NO")
    return 0 if all_same else 1


if __name__ == "__main__":
    raise SystemExit(main())
