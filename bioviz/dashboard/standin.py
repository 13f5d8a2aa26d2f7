"""A synthetic dataset with embeddings and results already in place, in the on-disk formats.

Used by the dashboard tests (fast, no model needed) and by ``benchmarks/app_latency.py`` to stand
in for an RxRx3-core-sized screen (222,601 wells, 384-d). The maps are simulated, but the results
files have exactly the columns ``bioviz.bench.run_benchmark`` writes (built with its recall
percentiles, bootstrap, attribution and CKA), so the pages cannot tell them from a real run.

Planted structure: gene complexes act through one mechanism each -- ``density`` (changes the
cell count: the cell-count baseline sees it), ``morphology`` (only the trained model sees it) or
``intensity`` (stain intensity: the pixel baseline sees it).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from .. import atomic
from ..screen import write_screen

CHANNELS = ["DNA", "ER", "RNA", "AGP", "Mito"]
MECHANISMS = ("density", "morphology", "intensity")
THRESHOLDS = ((0.05, 0.95), (0.1, 0.9))  # as bioviz.bench writes them
SOURCES = ("CORUM", "StringDB")


def _well_name(i: int, n_cols: int = 24) -> tuple[str, int, int]:
    r, c = divmod(i, n_cols)
    row = chr(65 + r) if r < 26 else "A" + chr(65 + r - 26)  # 1536-well plates: rows A..AF
    return f"{row}{c + 1:02d}", r, c + 1


def make_standin(out, *, n_plates: int = 2, wells_per_plate: int = 40, n_complexes: int = 6,
                 complex_size: int = 3, dim: int = 16, images: bool = True, image_size: int = 48,
                 seed: int = 0, results: bool = True, n_wells: int | None = None,
                 n_genes: int | None = None) -> Path:
    out = Path(out)
    rng = np.random.default_rng(seed)
    # genes: complexes with a mechanism each, then unrelated genes
    genes = []
    for k in range(n_complexes):
        mech = MECHANISMS[k % len(MECHANISMS)]
        for j in range(complex_size):
            genes.append(dict(gene=f"G{k:03d}{chr(65 + j)}", complex=f"C{k:03d}", mechanism=mech,
                              effect_size=round(float(rng.uniform(1.0, 2.0)), 3)))
    n_sites = n_plates * wells_per_plate
    n_ctrl_per_plate = max(2, wells_per_plate // 8)
    n_free = max(2, (n_sites - n_plates * n_ctrl_per_plate) // 2 - len(genes))
    if n_genes is not None:
        n_free = max(2, n_genes - len(genes))
    for j in range(n_free):
        genes.append(dict(gene=f"U{j:04d}", complex="", mechanism="none", effect_size=0.0))
    gdf = pd.DataFrame(genes)

    rows = []
    gene_cycle = np.resize(gdf["gene"].to_numpy(), n_sites)
    rng.shuffle(gene_cycle)
    gi = 0
    for p in range(n_plates):
        plate = f"P{p + 1:02d}"
        ctrl = set(rng.choice(wells_per_plate, n_ctrl_per_plate, replace=False).tolist())
        for w in range(wells_per_plate):
            well, r, c = _well_name(w, 24 if wells_per_plate <= 384 else 48)
            if w in ctrl:
                pert, ptype = "non-targeting", "control"
            else:
                pert, ptype = str(gene_cycle[gi]), "gene"
                gi += 1
            wid = f"{plate}_{well}_1"
            rec = dict(well_id=wid, batch=f"B{p // 2 + 1}", plate=plate, well=well, row=r, col=c, site=1,
                       perturbation=pert, perturbation_type=ptype, is_control=ptype == "control")
            for ch in CHANNELS:
                rec[f"image_{ch}"] = f"images/{plate}/{well}_{ch}.png"
            rows.append(rec)
    obs = pd.DataFrame(rows)
    if n_wells is not None:
        obs = obs.iloc[:n_wells].reset_index(drop=True)

    # per-gene latent effects
    comp_vec = {c: rng.normal(size=dim) for c in gdf["complex"].unique() if c}
    mech_of = dict(zip(gdf["gene"], gdf["mechanism"]))
    eff_of = dict(zip(gdf["gene"], gdf["effect_size"]))
    comp_of = dict(zip(gdf["gene"], gdf["complex"]))
    n = len(obs)
    pert = obs["perturbation"].to_numpy()
    density = np.zeros(n)
    inten = np.zeros(n)
    morph = np.zeros((n, dim))
    for i, g in enumerate(pert):
        m = mech_of.get(g, "none")
        e = eff_of.get(g, 0.0)
        if m == "density":
            density[i] = e * (1 if int(comp_of[g][1:]) % 2 else -1)
        elif m == "intensity":
            inten[i] = e
        elif m == "morphology":
            morph[i] = comp_vec[comp_of[g]] * e
    plate_idx = obs["plate"].factorize()[0]
    plate_effect = rng.normal(scale=0.3, size=(n_plates, dim))[plate_idx]
    cell_count = np.clip(200 * (1 + 0.35 * density + 0.08 * rng.normal(size=n)), 10, None).round()
    conf = pd.DataFrame({"well_id": obs["well_id"], "cell_count": cell_count})
    for k, ch in enumerate(CHANNELS):
        conf[f"intensity_{ch}"] = 0.2 + 0.05 * inten * (1 + 0.2 * k) + 0.01 * rng.normal(size=n) \
            + 0.02 * plate_idx
    conf["focus"] = 1 + 0.1 * rng.normal(size=n)
    conf["plate"] = obs["plate"]
    conf["batch"] = obs["batch"]
    conf["row"] = obs["row"]
    conf["col"] = obs["col"]
    conf["edge"] = (obs["row"].isin([0, 15]) | obs["col"].isin([1, 24])).astype(bool)

    dcount = (cell_count / 200 - 1)[:, None]
    embs = {
        "weakly_supervised": (morph + 0.8 * dcount * rng.normal(size=dim) + plate_effect
                              + 0.5 * rng.normal(size=(n, dim))).astype(np.float32),
        "cell_count": np.hstack([dcount, 0.05 * rng.normal(size=(n, 3))]),
        "pixel_stats": conf[[f"intensity_{ch}" for ch in CHANNELS]].to_numpy() - 0.2
        + 0.002 * rng.normal(size=(n, len(CHANNELS))),
        "random": rng.normal(size=(n, min(dim, 64))).astype(np.float32),
    }
    if dim > 64:  # the large stand-in: wide embeddings like RxRx3-core's 384-d
        embs["weakly_supervised"] = embs["weakly_supervised"].astype(np.float32)
    out.mkdir(parents=True, exist_ok=True)
    if images:
        _write_images(out, obs, conf, gdf, image_size, rng)
    write_screen(out, obs, channels=CHANNELS, control_label="non-targeting", name=out.name)
    truth = out / "truth"
    atomic.write_csv(gdf, truth / "genes.csv")
    atomic.write_csv(pd.DataFrame({"well_id": obs["well_id"], "gene": obs["perturbation"],
                                   "mechanism": [mech_of.get(g, "control") for g in pert]}),
                     truth / "wells.csv")
    rel = []
    for c, members in gdf[gdf["complex"] != ""].groupby("complex"):
        gs = sorted(members["gene"])
        for a in range(len(gs)):
            for b in range(a + 1, len(gs)):
                rel.append(dict(entity1=gs[a], entity2=gs[b], mechanism=members["mechanism"].iloc[0]))
    reldf = pd.DataFrame(rel)
    atomic.write_csv(reldf, truth / "relationships.csv")
    for name, x in embs.items():
        df = pd.DataFrame(np.asarray(x, dtype=np.float32), columns=[f"f{i}" for i in range(x.shape[1])])
        df.insert(0, "well_id", obs["well_id"].to_numpy())
        atomic.write_parquet(df, out / "embeddings" / f"{name}.parquet",
                             metadata={"embedder": name, "config": {}, "version": "standin"})
    atomic.write_parquet(conf, out / "embeddings" / "confounders.parquet")
    if results:
        _write_results(out, obs, conf, embs, reldf, rng)
    return out


def _write_images(out: Path, obs, conf, gdf, size: int, rng) -> None:
    from PIL import Image

    yy, xx = np.mgrid[0:size, 0:size]
    for i, rec in obs.iterrows():
        ncell = max(2, int(conf["cell_count"].iloc[i] / 40))
        centers = rng.uniform(4, size - 4, size=(ncell, 2))
        nuc = np.zeros((size, size))
        for cy, cx in centers:
            nuc += np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / 6.0)
        base = {"DNA": nuc, "ER": np.sqrt(nuc) * 0.6, "RNA": nuc * 0.5, "AGP": np.sqrt(nuc) * 0.3,
                "Mito": nuc ** 0.3 * 0.4}
        for ch in CHANNELS:
            img = base[ch] * (conf[f"intensity_{ch}"].iloc[i] / 0.2) + 0.03 * rng.random((size, size))
            arr = (np.clip(img / 1.5, 0, 1) * 255).astype(np.uint8)
            p = out / rec[f"image_{ch}"]
            p.parent.mkdir(parents=True, exist_ok=True)
            Image.fromarray(arr).save(p)


def _profiles(obs: pd.DataFrame, x: np.ndarray) -> pd.DataFrame:
    ctrl = obs["is_control"].to_numpy()
    x = x - x[ctrl].mean(0)
    sd = x[ctrl].std(0) + 1e-6
    x = x / sd
    df = pd.DataFrame(x)
    df["g"] = obs["perturbation"].to_numpy()
    return df[~ctrl].groupby("g").mean()


def _write_results(out: Path, obs, conf, embs, reldf, rng) -> None:
    from sklearn.linear_model import LogisticRegression, RidgeCV
    from sklearn.model_selection import cross_val_score

    from ..bench.attribution import attribute
    from ..bench.bootstrap import bootstrap_ci
    from ..bench.cka import linear_cka
    from ..bench.recall import threshold_label

    labels = [threshold_label(t) for t in THRESHOLDS]
    flags = [f"recalled_{lab}" for lab in labels]
    pairs_rows, recall_rows, probe_rows = [], [], []
    count = conf["cell_count"].to_numpy()
    for name, x in embs.items():
        for adjust in ("", "density"):
            xa = np.asarray(x, dtype=float)
            if adjust:
                design = np.c_[np.ones(len(count)), count]
                beta, *_ = np.linalg.lstsq(design, xa, rcond=None)
                xa = xa - design @ beta
            prof = _profiles(obs, xa)
            v = prof.to_numpy()
            v = v / (np.linalg.norm(v, axis=1, keepdims=True) + 1e-12)
            pos = {g: i for i, g in enumerate(prof.index)}
            if len(v) <= 3000:
                iu = np.triu_indices(len(v), 1)
                null = np.sort(np.einsum("ij,ij->i", v[iu[0]], v[iu[1]]))
            else:  # an RxRx3-sized screen: a sampled null instead of 17k^2 / 2 pairs
                i, j = rng.integers(0, len(v), (2, 200_000))
                null = np.sort(np.einsum("ij,ij->i", v[i[i != j]], v[j[i != j]]))
            for source in SOURCES:
                rel = reldf if source == "CORUM" else reldf.iloc[::2]
                rel = rel[rel["entity1"].isin(pos) & rel["entity2"].isin(pos)]
                ia = rel["entity1"].map(pos).to_numpy()
                ib = rel["entity2"].map(pos).to_numpy()
                cos = np.einsum("ij,ij->i", v[ia], v[ib])
                pct = np.searchsorted(null, cos) / max(len(null), 1)  # a fraction, as the benchmark's
                rec = dict(source=source, entity1=rel["entity1"].to_numpy(), entity2=rel["entity2"].to_numpy(),
                           embedder=name, adjusted_for=adjust, cosine=cos, percentile=pct,
                           mechanism=rel["mechanism"].to_numpy())
                for (lo, hi), flag in zip(THRESHOLDS, flags):
                    rec[flag] = (pct <= lo) | (pct >= hi)
                pairs_rows.append(pd.DataFrame(rec))
                for (lo, hi), lab, flag in zip(THRESHOLDS, labels, flags):
                    hit = rec[flag]
                    strata = [("", np.ones(len(rel), bool))]
                    if source == "CORUM":
                        strata += [(m, (rel["mechanism"] == m).to_numpy()) for m in MECHANISMS]
                    for mech, mask in strata:
                        h = hit[mask]
                        if len(h) == 0:
                            continue
                        ci_low, ci_high = bootstrap_ci(h, n_boot=200, seed=0)
                        recall_rows.append(dict(embedder=name, source=source, threshold=lab, recall=float(h.mean()),
                                                ci_low=ci_low, ci_high=ci_high, adjusted_for=adjust,
                                                mechanism=mech, n_pairs=int(len(h)), null_size=len(null)))
        xs = np.asarray(x, dtype=float)
        sub = rng.choice(len(xs), min(len(xs), 4000), replace=False)
        for c in ["cell_count"] + [col for col in conf.columns if col.startswith("intensity_")] + ["focus"]:
            r2 = cross_val_score(RidgeCV(alphas=(0.1, 1, 10)), xs[sub], conf[c].to_numpy()[sub], cv=3,
                                 scoring="r2").mean()
            probe_rows.append(dict(embedder=name, confounder=c, metric="r2", value=float(max(r2, -1))))
        acc = cross_val_score(LogisticRegression(max_iter=300), xs[sub], conf["plate"].to_numpy()[sub], cv=3).mean()
        chance = conf["plate"].value_counts(normalize=True).max()
        probe_rows.append(dict(embedder=name, confounder="plate", metric="accuracy", value=float(acc)))
        probe_rows.append(dict(embedder=name, confounder="plate", metric="chance", value=float(chance)))
    res = out / "results"
    pairs = attribute(pd.concat(pairs_rows, ignore_index=True), flags)
    atomic.write_csv(pd.DataFrame(recall_rows), res / "recall.csv")
    atomic.write_parquet(pairs, res / "pairs.parquet", metadata={"thresholds": labels})
    atomic.write_csv(pd.DataFrame(probe_rows), res / "probes.csv")
    names = list(embs)
    sub = rng.choice(len(obs), min(len(obs), 3000), replace=False)
    cka = [dict(embedder_a=a, embedder_b=b, cka=linear_cka(np.asarray(embs[a], float)[sub],
                                                           np.asarray(embs[b], float)[sub]))
           for a in names for b in names]
    atomic.write_csv(pd.DataFrame(cka), res / "cka.csv")
    act = []
    for name, x in embs.items():
        prof = _profiles(obs, np.asarray(x, dtype=float))
        strength = np.linalg.norm(prof.to_numpy(), axis=1)
        act.append(pd.DataFrame(dict(embedder=name, perturbation=prof.index, metric="activity",
                                     mean_average_precision=np.clip(strength / 4, 0, 1),
                                     corrected_p_value=np.exp(-strength), below_corrected_p=strength > 2)))
    atomic.write_csv(pd.concat(act, ignore_index=True), res / "activity.csv")
    atomic.write_json(res / "summary.json", {"embedders": names, "sources": list(SOURCES),
                                              "thresholds": labels, "standin": True})


def build_tiny_demo(out, seed: int = 1, embedders=("pixel_stats", "cell_count", "plate_layout", "random")) -> Path:
    """The tiny simulated screen run through the real pipeline: demo -> embed -> benchmark (with
    density adjustment), about half a minute. Used by the dashboard tests that must see the exact
    files the other modules write."""
    from ..bench import run_benchmark
    from ..cli import main as cli
    from ..screen import read_screen

    out = Path(out)
    if not (out / "dataset.json").is_file():
        rc = cli(["demo", "--preset", "tiny", "--out", str(out), "--seed", str(seed)])
        if rc:
            raise RuntimeError(f"bioviz demo failed with exit code {rc}")
    screen = read_screen(out)
    from ..embed import embed

    embed(screen, list(embedders), workers=0)
    run_benchmark(screen, list(embedders), adjust=["density"], n_boot=200, null_size=200)
    return out
