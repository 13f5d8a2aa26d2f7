"""Time `bioviz import rxrx3-core` on a generated RxRx3-core-sized screen.

222,601 metadata rows laid out like metadata_rxrx3_core.csv (180 experiments, 1536-well
addresses, CRISPR guides, compounds with SMILES at 8 concentrations, EMPTY/CRISPR controls) and an
OpenPhenom-shaped embeddings parquet (well_id + feature_0..feature_383, float64). The import runs
in a child process so its wall time and peak memory (ru_maxrss) are its own. Reference in the same
run: a child that only reads the two input files with pandas (the least any import must do), so the
ratio says how much the import adds to reading its inputs. Goal (issue 10): < 60 s, < 4 GB on 2 cores.

    .venv/bin/python benchmarks/import_speed.py [--rows 222601] [--keep DIR]

Also times `bioviz embed --embedders precomputed --no-confounders` on the imported folder (the
next step a user runs), for information.
"""
from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

REPO = Path(__file__).resolve().parents[1]


def generate(d: Path, n: int, seed: int = 0) -> tuple[Path, Path]:
    rng = np.random.default_rng(seed)
    n_gene = int(n * 0.57)                 # 126,900 CRISPR wells of 222,601 in the real file
    n_comp = n - n_gene
    rows = [chr(65 + i) for i in range(26)] + ["A" + chr(65 + i) for i in range(6)]  # A..Z, AA..AF
    addresses = np.array([f"{r}{c:02d}" for r in rows for c in range(1, 49)])        # 1536 wells
    genes = np.array([f"GENE{i}" for i in range(736)])
    compounds = np.array([f"CPD-{i}" for i in range(1674)])
    conc = np.array([0.0025, 0.01, 0.025, 0.1, 0.25, 1.0, 2.5, 10.0])

    def layout(k, experiments, plates_per_exp):
        exp = rng.choice(experiments, k)
        plate = rng.integers(1, plates_per_exp + 1, k)
        addr = np.empty(k, dtype=object)
        # Unique (experiment, plate, address): number wells within each plate.
        key = pd.Series(exp).astype(str) + "_" + pd.Series(plate).astype(str)
        order = key.groupby(key).cumcount().to_numpy()
        addr[:] = addresses[order % len(addresses)]
        plate = plate + 48 * (order // len(addresses))  # spill over to the next plate number
        return exp, plate, addr

    gexp, gplate, gaddr = layout(n_gene, np.array([f"gene-{i:03d}" for i in range(1, 177)]), 9)
    gene = rng.choice(genes, n_gene)
    g_ctrl = rng.random(n_gene) < 0.2
    gene = np.where(g_ctrl, "EMPTY_control", gene)
    treat = np.where(g_ctrl, "EMPTY_control", pd.Series(gene).astype(str) + "_guide_" + rng.integers(1, 7, n_gene).astype(str))
    cexp, cplate, caddr = layout(n_comp, np.array([f"compound-{i:03d}" for i in range(1, 5)]), 48)
    comp = rng.choice(compounds, n_comp)
    kind = rng.random(n_comp)
    ctreat = np.where(kind < 0.1, "EMPTY_control", np.where(kind < 0.33, "CRISPR_control", comp))
    is_cpd = ~pd.Series(ctreat).str.endswith("_control").to_numpy()
    smiles = np.where(is_cpd, "CC1=[N+](CCCCCCCCCC[N+]2=C(C)C=C(N)C3=CC=CC=C23)C2=CC=CC=C2C(N)=C1", "")
    cconc = np.where(is_cpd, rng.choice(conc, n_comp).astype(object), "")
    meta = pd.DataFrame({
        "experiment_name": np.concatenate([gexp, cexp]),
        "plate": np.concatenate([gplate, cplate]),
        "address": np.concatenate([gaddr, caddr]),
        "gene": np.concatenate([gene, np.full(n_comp, "")]),
        "treatment": np.concatenate([treat, ctreat]),
        "SMILES": np.concatenate([np.full(n_gene, ""), smiles]),
        "concentration": np.concatenate([np.full(n_gene, ""), cconc]),
        "perturbation_type": np.concatenate([np.full(n_gene, "CRISPR"), np.full(n_comp, "COMPOUND")]),
        "cell_type": "HUVEC",
    })
    meta.insert(0, "well_id", meta["experiment_name"] + "_" + meta["plate"].astype(str) + "_" + meta["address"])
    assert not meta["well_id"].duplicated().any()
    meta_path = d / "metadata_rxrx3_core.csv"
    meta.to_csv(meta_path, index=False)
    emb = pd.DataFrame(rng.normal(size=(n, 384)), columns=[f"feature_{i}" for i in range(384)])
    emb.insert(0, "well_id", meta["well_id"].to_numpy())
    emb_path = d / "OpenPhenom_rxrx3_core_embeddings.parquet"
    emb.to_parquet(emb_path, index=False)
    return meta_path, emb_path


def timed(cmd: list[str]) -> tuple[float, float, float, str]:
    """(wall s, CPU s, peak RSS GB, stdout) of one child process (os.wait4 gives that child's own rusage).

    CPU seconds (user + sys) are reported beside wall time because the 2 cores are shared: under
    load the wall time of the same run varies several-fold, its CPU time much less."""
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        t0 = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=out, stderr=err, cwd=REPO)
        _, status, usage = os.wait4(proc.pid, 0)
        dt = time.perf_counter() - t0
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        text = out.read()
        if proc.returncode != 0:
            sys.exit(f"failed: {' '.join(cmd)}\n{text}\n{err.read()}")
    return dt, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024**2, text  # ru_maxrss: KiB on Linux


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rows", type=int, default=222_601)
    ap.add_argument("--keep", default=None, help="folder to generate into and keep (default: a temp folder)")
    args = ap.parse_args()
    d = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="bioviz_import_speed_"))
    d.mkdir(parents=True, exist_ok=True)
    try:
        t0 = time.perf_counter()
        meta_path, emb_path = generate(d, args.rows)
        print(f"generated {args.rows} rows + 384-d embeddings in {time.perf_counter() - t0:.1f} s "
              f"({emb_path.stat().st_size / 1e6:.0f} MB parquet)")
        py = sys.executable
        ref = ("import pandas as pd, sys; m = pd.read_csv(sys.argv[1], low_memory=False); "
               "e = pd.read_parquet(sys.argv[2]); print(len(m), e.shape)")
        t_ref, c_ref, mem_ref, _ = timed([py, "-c", ref, str(meta_path), str(emb_path)])
        out = d / "dataset"
        t_imp, c_imp, mem_imp, text = timed([py, "-m", "bioviz", "import", "rxrx3-core", "--metadata", str(meta_path),
                                      "--embeddings", str(emb_path), "--out", str(out)])
        print(text.strip())
        print(f"load average at start: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
        print(f"reference (pandas reads both files): {t_ref:6.1f} s wall, {c_ref:6.1f} s CPU, peak {mem_ref:.2f} GB")
        print(f"bioviz import rxrx3-core:            {t_imp:6.1f} s wall, {c_imp:6.1f} s CPU, peak {mem_imp:.2f} GB; "
              f"ratio {t_imp / t_ref:.2f}x reference wall, {c_imp / c_ref:.2f}x CPU")
        # On a shared machine wall time includes waiting for a core; CPU time is what the import costs.
        print(f"goal < 60 s, < 4 GB: wall {'met' if t_imp < 60 else 'NOT met'}, CPU {'met' if c_imp < 60 else 'NOT met'}, "
              f"memory {'met' if mem_imp < 4 else 'NOT met'}")
        t_emb, c_emb, mem_emb, _ = timed([py, "-m", "bioviz", "embed", "--dataset", str(out), "--embedders", "precomputed",
                                   "--no-confounders"])
        print(f"then bioviz embed precomputed:       {t_emb:6.1f} s wall, {c_emb:6.1f} s CPU, peak {mem_emb:.2f} GB")
    finally:
        if not args.keep:
            shutil.rmtree(d, ignore_errors=True)


if __name__ == "__main__":
    main()
