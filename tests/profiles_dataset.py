"""A small compound screen distributed as per-well CellProfiler profiles (no images), for the
profiles-only tests: written as a pycytominer-style CSV, then brought in by ``bioviz import profiles``.

Two plates x 96 wells: 24 compounds in 4 MOAs (6 compounds each) at 3 concentrations, one well
each per plate, and 24 DMSO wells per plate. Each MOA has its own direction in feature space
(scaled by dose), each compound a smaller one of its own; ``Cells_Count`` drops for one MOA, and
``Cells_Intensity_MeanIntensity_DNA`` / ``_Mito`` are features too, so the confounder table has a
count and two intensities.
"""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd

REPO = Path(__file__).resolve().parents[1]
BIOVIZ = [sys.executable, "-m", "bioviz"]
MOAS = ("tubulin inhibitor", "HDAC inhibitor", "EGFR inhibitor", "ATPase inhibitor")
CONCS = (0.1, 1.0, 10.0)


def profiles_table(seed: int = 0, n_features: int = 24) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    moa_dir = rng.normal(size=(len(MOAS), n_features))
    rows = []
    wells = [f"{r}{c:02d}" for r in "ABCDEFGH" for c in range(1, 13)]
    for plate in ("P1", "P2"):
        layout = [("DMSO", "", 0.0)] * 24
        for m, moa in enumerate(MOAS):
            for k in range(6):
                layout += [(f"cpd_{m}{k}", moa, c) for c in CONCS]
        order = rng.permutation(len(layout))
        for w, i in zip(wells, order):
            cpd, moa, conc = layout[i]
            x = rng.normal(scale=1.0, size=n_features)
            count = 400.0
            if cpd != "DMSO":
                m = MOAS.index(moa)
                own = np.random.default_rng(abs(hash(cpd)) % 2**32).normal(size=n_features)
                x += (1.0 + np.log10(conc) + 1.5) * (1.2 * moa_dir[m] + 0.4 * own)
                if m == 0:
                    count *= 0.5
            rows.append({"Metadata_Plate": plate, "Metadata_Well": w, "Metadata_pert_iname": cpd,
                         "Metadata_moa": moa, "Metadata_mmoles_per_liter": conc,
                         **{f"Cells_Feature_{j}": x[j] for j in range(n_features)},
                         "Cells_Count": count + rng.normal(scale=20),
                         "Cells_Intensity_MeanIntensity_DNA": 0.1 * x[0] + rng.normal(),
                         "Cells_Intensity_MeanIntensity_Mito": 0.1 * x[1] + rng.normal()})
    return pd.DataFrame(rows)


def bioviz(*args, check=True) -> subprocess.CompletedProcess:
    r = subprocess.run([*BIOVIZ, *map(str, args)], capture_output=True, text=True, cwd=REPO)
    if check and r.returncode != 0:
        raise AssertionError(f"bioviz {' '.join(map(str, args))} failed:\n{r.stdout}\n{r.stderr}")
    return r


def build_profiles_dataset(root: Path, *, benchmark: bool = True) -> Path:
    """Import, embed (all) and benchmark (with --relationships moa) the synthetic profiles."""
    root = Path(root)
    root.parent.mkdir(parents=True, exist_ok=True)
    table = root.parent / f"{root.name}_profiles.csv"
    profiles_table().to_csv(table, index=False)
    bioviz("import", "profiles", table, "--out", root)
    bioviz("embed", "--dataset", root, "--embedders", "all", "--quiet")
    if benchmark:
        bioviz("benchmark", "--dataset", root, "--relationships", "moa", "--n-boot", 200, "--quiet")
    return root
