"""The design and the planted truth of the simulated screen: which genes, which wells, which effects.

Genes are real symbols from CORUM complexes so the real relationship tables (CORUM, HuMAP,
Reactome, SIGNOR, StringDB) score the simulated maps. Each chosen complex gets one planted
mechanism; everything the renderer needs per well is decided here, so rendering is a pure
function of (well parameters, per-site random stream).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import pandas as pd

from ..relationships import SOURCES, corum_complexes, load_relationships

CHANNELS = ("DNA", "ER", "RNA", "AGP", "Mito")
COLORS = {"DNA": "#0000FF", "ER": "#00FF00", "RNA": "#FFFF00", "AGP": "#FF0000", "Mito": "#FF00FF"}
CONTROL = "non-targeting"
CELL_TYPE = "U2OS (simulated)"
MECHANISMS = ("morphology", "density", "intensity", "none")
MECHANISM_SHARE = {"morphology": 0.35, "density": 0.30, "intensity": 0.15, "none": 0.20}
# Axes of the planted morphology space; render.py turns a point here into cell shapes.
MORPH_FEATURES = ("nuclear_size", "nuclear_shape", "mito_fragmentation", "actin_texture",
                  "er_spread", "cell_size")
INTENSITY_CHANNELS = ("ER", "RNA", "AGP", "Mito")  # DNA stays put so cell counts stay honest
SPLITS = ("benchmark", "train")


@dataclass(frozen=True)
class Preset:
    name: str
    n_genes: int            # at least this many genes (whole complexes are added)
    replicates: int         # wells per gene (benchmark split)
    train_replicates: int   # wells per gene (train split)
    control_fraction: float
    image_size: int
    nucleus_radius: float   # pixels, control cells
    cells_per_site: float   # mean nuclei in a control, non-edge site
    plate_rows: int
    plate_cols: int
    n_batches: int
    blur_sigma: float       # out-of-focus sites
    out_of_focus_rate: float


PRESETS = {
    "tiny": Preset("tiny", n_genes=32, replicates=4, train_replicates=6, control_fraction=0.15,
                   image_size=64, nucleus_radius=3.6, cells_per_site=9.0, plate_rows=8, plate_cols=12,
                   n_batches=2, blur_sigma=1.6, out_of_focus_rate=0.03),
    "default": Preset("default", n_genes=300, replicates=4, train_replicates=6, control_fraction=0.2,
                      image_size=128, nucleus_radius=5.0, cells_per_site=22.0, plate_rows=16,
                      plate_cols=24, n_batches=2, blur_sigma=2.2, out_of_focus_rate=0.03),
}


# --- gene choice ------------------------------------------------------------------------------
@lru_cache(maxsize=1)
def _all_relationships() -> pd.DataFrame:
    return pd.concat([load_relationships(s).assign(source=s) for s in SOURCES], ignore_index=True)


@lru_cache(maxsize=1)
def complex_pool() -> tuple[tuple[str, tuple[str, ...]], ...]:
    """Disjoint CORUM complexes of 3-8 genes, best-annotated first (seed independent).

    Ranked by the mean log number of known relationships of their genes, so the real tables
    have pairs to score; a greedy pass keeps each gene in one complex only.
    """
    rel = _all_relationships()
    degree = pd.concat([rel.entity1, rel.entity2]).value_counts()
    cands = []
    for name, genes in corum_complexes().items():
        genes = tuple(dict.fromkeys(genes))
        if not 3 <= len(genes) <= 8:
            continue
        deg = np.array([degree.get(g, 0) for g in genes])
        if deg.min() < 5:
            continue
        cands.append((-float(np.log1p(deg).mean()), name, genes))
    cands.sort()
    used: set[str] = set()
    pool = []
    for _, name, genes in cands:
        if used.isdisjoint(genes):
            pool.append((name, genes))
            used.update(genes)
    return tuple(pool)


def choose_complexes(preset: Preset, split: str, rng: np.random.Generator):
    """Complexes for one split: even pool ranks are benchmark, odd are train, so splits never share genes."""
    pool = complex_pool()[SPLITS.index(split)::2]
    mean_size = np.mean([len(g) for _, g in pool])
    k = min(len(pool), int(math.ceil(2.2 * preset.n_genes / mean_size)))
    chosen, n = [], 0
    for i in rng.permutation(k):
        if n >= preset.n_genes:
            break
        chosen.append(pool[i])
        n += len(pool[i][1])
    if n < preset.n_genes:  # pragma: no cover - the pool holds ~600 genes per split
        raise RuntimeError(f"only {n} genes available for split {split}")
    chosen.sort(key=lambda c: c[0])
    return chosen


def assign_mechanisms(n: int, rng: np.random.Generator) -> list[str]:
    counts = {m: int(round(MECHANISM_SHARE[m] * n)) for m in MECHANISMS}
    for m in MECHANISMS:  # every mechanism appears, even in the tiny screen
        counts[m] = max(counts[m], 1)
    while sum(counts.values()) > n:
        counts[max(counts, key=lambda m: counts[m])] -= 1
    while sum(counts.values()) < n:
        counts["morphology"] += 1
    labels = [m for m in MECHANISMS for _ in range(counts[m])]
    return [labels[i] for i in rng.permutation(n)]


def plant_genes(complexes, rng: np.random.Generator) -> pd.DataFrame:
    """One row per gene: its complex, mechanism, effect size and the parameters render.py reads.

    effect_size: morphology = distance moved in the morphology space (in units of the
    well-to-well noise of each axis, ~1.5 strong, ~0.4 subtle); density = fraction of cells
    lost; intensity = signed fractional change of the channel's stain; none = 0.
    """
    mechs = assign_mechanisms(len(complexes), rng)
    rows = []
    for (name, genes), mech in zip(complexes, mechs):
        direction = np.zeros(len(MORPH_FEATURES))
        channel, base = "", 0.0
        if mech == "morphology":
            axes = rng.choice(len(MORPH_FEATURES), size=rng.integers(2, 4), replace=False)
            direction[axes] = rng.choice([-1.0, 1.0], size=len(axes)) * rng.uniform(0.6, 1.0, len(axes))
            direction /= np.linalg.norm(direction)
            base = rng.uniform(0.4, 1.6)
        elif mech == "density":
            base = rng.uniform(0.5, 0.75)
        elif mech == "intensity":
            channel = str(rng.choice(INTENSITY_CHANNELS))
            base = rng.choice([-1.0, 1.0]) * rng.uniform(0.3, 0.55)
        for gene in genes:
            size = base * rng.uniform(0.85, 1.15) if mech != "none" else 0.0
            morph = np.zeros(len(MORPH_FEATURES))
            if mech == "morphology":
                d = direction + rng.normal(0, 0.15, len(MORPH_FEATURES))
                morph = size * d / np.linalg.norm(d)
            row = {"gene": gene, "complex": name, "mechanism": mech, "effect_size": round(float(size), 4),
                   "channel": channel}
            row.update({f"m_{f}": float(v) for f, v in zip(MORPH_FEATURES, morph)})
            rows.append(row)
    return pd.DataFrame(rows)


# --- plate layout ---------------------------------------------------------------------------
def _well_name(row: int, col: int) -> str:
    return f"{chr(ord('A') + row)}{col:02d}"


def layout(genes: list[str], preset: Preset, replicates: int, rng: np.random.Generator) -> pd.DataFrame:
    """Metadata rows (design.md columns + cell_type): replicates dealt round-robin over plates."""
    entries = [g for g in genes for _ in range(replicates)]
    n_controls = int(math.ceil(len(entries) * preset.control_fraction / (1 - preset.control_fraction)))
    per_plate = preset.plate_rows * preset.plate_cols
    total = len(entries) + n_controls
    n_plates = int(math.ceil(total / per_plate))
    n_plates = int(math.ceil(n_plates / preset.n_batches) * preset.n_batches)
    # Plate k belongs to batch k % n_batches: consecutive replicates land in different batches.
    plates = [(f"B{k % preset.n_batches + 1}", f"B{k % preset.n_batches + 1}P{k // preset.n_batches + 1}")
              for k in range(n_plates)]
    offset = rng.integers(n_plates)
    by_plate: list[list[str]] = [[] for _ in range(n_plates)]
    for j, e in enumerate(entries + [CONTROL] * n_controls):
        by_plate[(j + offset) % n_plates].append(e)
    rows = []
    for (batch, plate), items in zip(plates, by_plate):
        positions = rng.permutation(per_plate)[: len(items)]
        for pert, pos in zip(rng.permutation(np.array(items, dtype=object)), positions):
            r, c = divmod(int(pos), preset.plate_cols)
            well = _well_name(r, c + 1)
            ctrl = pert == CONTROL
            rows.append({
                "well_id": f"{plate}_{well}_s1", "batch": batch, "plate": plate, "well": well,
                "row": r, "col": c + 1, "site": 1, "perturbation": pert,
                "perturbation_type": "control" if ctrl else "gene", "is_control": bool(ctrl),
                "cell_type": CELL_TYPE,
            })
    obs = pd.DataFrame(rows).sort_values(["plate", "row", "col"], kind="stable").reset_index(drop=True)
    return obs


# --- per-well rendering parameters ----------------------------------------------------------
def well_parameters(obs: pd.DataFrame, genes: pd.DataFrame, preset: Preset, rng: np.random.Generator):
    """Everything render.py needs per well, plus the nuisance factors (recorded for the truth)."""
    n = len(obs)
    gene_idx = genes.set_index("gene")
    plates = sorted(obs["plate"].unique())
    batches = sorted(obs["batch"].unique())
    # Batch effects: stain intensity drifts per batch and, less, per plate, per channel.
    batch_mult = {b: np.exp(rng.normal(0, 0.15, len(CHANNELS))) for b in batches}
    plate_mult = {p: np.exp(rng.normal(0, 0.07, len(CHANNELS))) for p in plates}
    plate_density = {p: float(np.exp(rng.normal(0, 0.04))) for p in plates}
    edge = ((obs["row"] == 0) | (obs["row"] == preset.plate_rows - 1)
            | (obs["col"] == 1) | (obs["col"] == preset.plate_cols)).to_numpy()

    morph = np.zeros((n, len(MORPH_FEATURES)))
    chan_mult = np.ones((n, len(CHANNELS)))
    density = np.ones(n)
    for i, pert in enumerate(obs["perturbation"]):
        if pert == CONTROL:
            continue
        g = gene_idx.loc[pert]
        if g["mechanism"] == "morphology":
            morph[i] = [g[f"m_{f}"] for f in MORPH_FEATURES]
        elif g["mechanism"] == "density":
            density[i] = 1.0 - g["effect_size"]
        elif g["mechanism"] == "intensity":
            chan_mult[i, CHANNELS.index(g["channel"])] *= 1.0 + g["effect_size"]
    morph += rng.normal(0, 0.25, morph.shape)  # replicate (well-to-well) noise
    for i, (b, p) in enumerate(zip(obs["batch"], obs["plate"])):
        chan_mult[i] *= batch_mult[b] * plate_mult[p] * np.exp(rng.normal(0, 0.04, len(CHANNELS)))
    mean_cells = (preset.cells_per_site * density * np.where(edge, 0.7, 1.0)
                  * obs["plate"].map(plate_density).to_numpy() * np.exp(rng.normal(0, 0.1, n)))
    target = np.maximum(1, np.round(mean_cells)).astype(int)
    out_of_focus = rng.random(n) < preset.out_of_focus_rate
    return {"morph": morph, "chan_mult": chan_mult, "target_cells": target,
            "out_of_focus": out_of_focus, "edge": edge}


# --- truth ----------------------------------------------------------------------------------
def truth_relationships(genes: pd.DataFrame) -> pd.DataFrame:
    """One row per (known pair, source) among the screen's genes with the mechanism linking them.

    A pair shares a mechanism when both genes carry the same planted effect: same complex
    (morphology), both density, or the same channel shifted the same way (intensity); else none.
    """
    g = genes.set_index("gene")
    screen = set(g.index)
    rel = _all_relationships()
    rel = rel[rel.entity1.isin(screen) & rel.entity2.isin(screen)].copy()
    a, b = g.loc[rel.entity1], g.loc[rel.entity2]
    ma, mb = a["mechanism"].to_numpy(), b["mechanism"].to_numpy()
    same_complex = a["complex"].to_numpy() == b["complex"].to_numpy()
    same_shift = ((a["channel"].to_numpy() == b["channel"].to_numpy())
                  & (np.sign(a["effect_size"].to_numpy()) == np.sign(b["effect_size"].to_numpy())))
    mech = np.where((ma == "morphology") & (mb == "morphology") & same_complex, "morphology",
                    np.where((ma == "density") & (mb == "density"), "density",
                             np.where((ma == "intensity") & (mb == "intensity") & same_shift,
                                      "intensity", "none")))
    out = pd.DataFrame({"entity1": rel.entity1.to_numpy(), "entity2": rel.entity2.to_numpy(),
                        "source": rel.source.to_numpy(), "mechanism": mech})
    return out.sort_values(["entity1", "entity2", "source"], kind="stable").reset_index(drop=True)
