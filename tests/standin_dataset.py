"""A synthetic dataset with embeddings and results already in place (test scaffolding).

Used by the dashboard tests (fast, no model needed) and by ``benchmarks/app_latency.py`` to stand
in for an RxRx3-core-sized screen (222,601 wells, 384-d). Only the embeddings are simulated; every
file is written by the product's own writers: the screen by ``bioviz.screen.write_screen``, each
embedding by ``bioviz.embed``'s cache writer (so ``bioviz.embed`` sees it as up to date), the
confounder table by ``bioviz.embed.compute_confounders`` from those caches, and ``results/`` by
``bioviz.bench.run_benchmark`` itself. Its files cannot differ from a real run's.

Planted structure: gene complexes act through one mechanism each -- ``density`` (changes the
cell count: the cell-count baseline sees it), ``morphology`` (only the trained model sees it) or
``intensity`` (stain intensity: the pixel baseline sees it).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from bioviz import atomic
from bioviz.screen import read_screen, write_screen

CHANNELS = ["DNA", "ER", "RNA", "AGP", "Mito"]
MECHANISMS = ("density", "morphology", "intensity")
SOURCES = ("CORUM", "StringDB")  # stand-ins for public sources: the planted pairs, and every other one


def _well_name(i: int, n_cols: int = 24) -> tuple[str, int, int]:
    r, c = divmod(i, n_cols)
    row = chr(65 + r) if r < 26 else "A" + chr(65 + r - 26)  # 1536-well plates: rows A..AF
    return f"{row}{c + 1:02d}", r, c + 1


def make_standin(out, *, n_plates: int = 2, wells_per_plate: int = 40, n_complexes: int = 6,
                 complex_size: int = 3, dim: int = 16, images: bool = True, image_size: int = 48,
                 seed: int = 0, results: bool = True, n_wells: int | None = None,
                 n_genes: int | None = None, **bench) -> Path:
    """Write the stand-in to ``out`` and return it. ``images=False`` points every well at one
    blank image per channel (a screen of 222k wells in seconds; the pages still open).
    ``bench``: options for ``run_benchmark`` (defaults: n_boot=200, null_size=200)."""
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
                rec[f"image_{ch}"] = f"images/{plate}/{well}_{ch}.png" if images else f"images/blank_{ch}.png"
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
    # Column 0 of cell_count is the count and pixel_stats holds <CH>_mean: the layout the confounder
    # table is assembled from (bioviz.embed.confounders), as a real cache has it.
    embs = {
        "weakly_supervised": (morph + 0.8 * dcount * rng.normal(size=dim) + plate_effect
                              + 0.5 * rng.normal(size=(n, dim))),
        "cell_count": np.hstack([cell_count[:, None], 40 + 0.5 * rng.normal(size=(n, 1))]),
        "pixel_stats": conf[[f"intensity_{ch}" for ch in CHANNELS]].to_numpy()
        + 0.002 * rng.normal(size=(n, len(CHANNELS))),
        "random": rng.normal(size=(n, min(dim, 64))),
        "focus": conf[["focus"]].to_numpy(),
    }
    names = {"pixel_stats": [f"{ch}_mean" for ch in CHANNELS], "cell_count": ["cell_count", "nucleus_area"],
             "focus": ["focus"]}
    out.mkdir(parents=True, exist_ok=True)
    if images:
        _write_images(out, obs, conf, gdf, image_size, rng)
    else:
        for ch in CHANNELS:
            p = out / f"images/blank_{ch}.png"
            p.parent.mkdir(parents=True, exist_ok=True)
            from PIL import Image

            Image.fromarray(np.zeros((image_size, image_size), np.uint8)).save(p)
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

    screen = read_screen(out, check_images=False)
    _write_embeddings(screen, embs, names)
    if results:
        from bioviz.bench import run_benchmark

        rels = {"CORUM": reldf[["entity1", "entity2"]], "StringDB": reldf.iloc[::2][["entity1", "entity2"]]}
        opts = dict(n_boot=200, null_size=200, with_confounder_baselines=False, seed=seed)
        opts.update(bench)
        run_benchmark(screen, ["weakly_supervised", "cell_count", "pixel_stats", "random"], adjust=["density"],
                      sources=[], relationships=rels, **opts)
    return out


def _write_embeddings(screen, embs: dict, names: dict) -> None:
    write_caches(screen, embs, names)
    from bioviz.embed import compute_confounders

    compute_confounders(screen, workers=0)


def write_caches(screen, embs: dict, names: dict | None = None) -> None:
    """Each simulated matrix (``{embedder: sites x features}``, rows in the screen's site order)
    through bioviz.embed's cache writer under the embedder's real config, so bioviz.embed sees it
    as up to date. The weakly supervised embedder gets a placeholder checkpoint: its config names
    the file's identity, and nothing here runs the network. ``names``: feature names per embedder
    (the confounder table reads ``<CH>_mean`` from pixel_stats and column 0 of cell_count)."""
    from bioviz.embed import cache, create_embedder
    from bioviz.embed.weakly_supervised import DEFAULT_WEIGHTS

    names = names or {}
    if "weakly_supervised" in embs:
        ckpt = screen.root / DEFAULT_WEIGHTS
        ckpt.parent.mkdir(parents=True, exist_ok=True)
        atomic.write_text(ckpt, "stand-in: not a checkpoint; the embedding beside it is simulated\n")
    fp = screen.fingerprint()
    for name, x in embs.items():
        e = create_embedder(name)
        e.resolve(screen)
        cache.write_cache(screen, e, cache.features_frame(screen.obs["well_id"], x), fp,
                          feature_names=names.get(name, [f"f{i}" for i in range(np.shape(x)[1])]))


def screen_with_blank_images(out, obs: pd.DataFrame, channels=("DNA", "ER"), control_label: str = "NTC",
                             size: int = 8):
    """A real Screen for ``obs`` (well_id, batch, plate, well, row, col, site, perturbation,
    perturbation_type, is_control) whose wells all point at one blank image per channel: for tests
    whose embeddings are simulated, so no pixel is ever read."""
    from PIL import Image

    out = Path(out)
    obs = obs.copy()
    for ch in channels:
        rel = f"images/blank_{ch}.png"
        (out / rel).parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(np.zeros((size, size), np.uint8)).save(out / rel)
        obs[f"image_{ch}"] = rel
    write_screen(out, obs, channels=list(channels), control_label=control_label, name=out.name)
    return read_screen(out)


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


def build_tiny_demo(out, seed: int = 1, embedders=("pixel_stats", "cell_count", "plate_layout", "random")) -> Path:
    """The tiny simulated screen run through the real pipeline: demo -> embed -> benchmark (with
    density adjustment), about half a minute. Used by the dashboard tests that must see the exact
    files the other modules write."""
    from bioviz.bench import run_benchmark
    from bioviz.cli import main as cli

    out = Path(out)
    if not (out / "dataset.json").is_file():
        rc = cli(["demo", "--preset", "tiny", "--out", str(out), "--seed", str(seed)])
        if rc:
            raise RuntimeError(f"bioviz demo failed with exit code {rc}")
    screen = read_screen(out)
    from bioviz.embed import embed

    embed(screen, list(embedders), workers=0)
    run_benchmark(screen, list(embedders), adjust=["density"], n_boot=200, null_size=200)
    return out
