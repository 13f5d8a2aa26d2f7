"""A simulated Cell Painting screen with known answers (``bioviz demo``).

``make_demo(out)`` writes a dataset folder (docs/design.md) plus ``truth/``:

- ``truth/genes.csv``: ``gene, complex, mechanism, effect_size, channel`` - one row per knocked-out
  gene; ``mechanism`` is morphology | density | intensity | none; ``effect_size`` is the distance
  moved in the morphology space (morphology), the fraction of cells lost (density), the signed
  fractional stain change of ``channel`` (intensity) or 0 (none).
- ``truth/wells.csv``: ``well_id, true_cell_count, out_of_focus, edge`` - cells drawn per site.
- ``truth/relationships.csv``: ``entity1, entity2, source, mechanism`` - one row per known pair
  per source (CORUM, HuMAP, Reactome, SIGNOR, StringDB) among the screen's genes; a pair listed by
  two sources has two rows. ``mechanism`` is the planted effect both genes share, else none.
"""
from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd

from ..errors import BiovizError
from .render import render_site
from .simulate import (CHANNELS, COLORS, CONTROL, PRESETS, SPLITS, MORPH_FEATURES, choose_complexes,
                       layout, plant_genes, truth_relationships, well_parameters)

__all__ = ["make_demo", "PRESETS", "SPLITS", "CHANNELS"]


def _is_previous_demo(path: Path) -> bool:
    return (path / "dataset.json").is_file() and (path / "truth").is_dir()


def _check_out(out: Path) -> None:
    if out.exists() and not (out.is_dir() and (not any(out.iterdir()) or _is_previous_demo(out))):
        raise BiovizError(f"{out} already exists and is not a bioviz demo folder; choose another --out")


def _publish(staging: Path, out: Path) -> None:
    """Swap the finished folder into place: readers see the old demo or the new one, never half."""
    _check_out(out)
    old = None
    if out.exists():
        old = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".old", dir=out.parent))
        os.replace(out, old / "demo")
    os.replace(staging, out)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def make_demo(out, *, preset: str = "tiny", seed: int = 0, split: str = "benchmark",
              progress: bool = False) -> Path:
    """Write a simulated screen with planted truth to ``out``; same arguments, same bytes."""
    from PIL import Image

    if preset not in PRESETS:
        raise BiovizError(f"unknown preset {preset!r}; choose one of {', '.join(PRESETS)}")
    if split not in SPLITS:
        raise BiovizError(f"unknown split {split!r}; choose one of {', '.join(SPLITS)}")
    p = PRESETS[preset]
    out = Path(out).expanduser().absolute()
    _check_out(out)
    split_id = SPLITS.index(split)
    rng = np.random.default_rng([int(seed), split_id, 0])
    genes = plant_genes(choose_complexes(p, split, rng), rng)
    reps = p.replicates if split == "benchmark" else p.train_replicates
    obs = layout(list(genes["gene"]), p, reps, rng)
    wp = well_parameters(obs, genes, p, rng)

    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".partial", dir=out.parent))
    try:
        counts = np.zeros(len(obs), dtype=int)
        paths = {ch: [] for ch in CHANNELS}
        sites = range(len(obs))
        if progress:
            from tqdm.auto import tqdm

            sites = tqdm(sites, desc=f"drawing {len(obs)} sites", unit="site")
        for i in sites:
            row = obs.iloc[i]
            site_rng = np.random.default_rng([int(seed), split_id, 1, i])
            pixels, counts[i] = render_site(wp["morph"][i], wp["chan_mult"][i], int(wp["target_cells"][i]),
                                            bool(wp["out_of_focus"][i]), p, site_rng)
            folder = staging / "images" / row["plate"]
            folder.mkdir(parents=True, exist_ok=True)
            for c, ch in enumerate(CHANNELS):
                rel = f"images/{row['plate']}/{row['well']}_s{row['site']}_{ch}.png"
                Image.fromarray(pixels[c]).save(staging / rel, compress_level=1)
                paths[ch].append(rel)
        for ch in CHANNELS:
            obs[f"image_{ch}"] = paths[ch]

        from ..atomic import write_csv
        from ..screen import write_screen

        write_screen(staging, obs, channels=list(CHANNELS), colors=COLORS, control_label=CONTROL,
                     name=f"bioviz demo ({preset}, {split}, seed {seed})")
        tdir = staging / "truth"
        gene_cols = ["gene", "complex", "mechanism", "effect_size", "channel"]
        write_csv(genes[gene_cols], tdir / "genes.csv", float_format="%.4f")
        wells = pd.DataFrame({"well_id": obs["well_id"], "true_cell_count": counts,
                              "out_of_focus": wp["out_of_focus"], "edge": wp["edge"]})
        write_csv(wells, tdir / "wells.csv")
        write_csv(truth_relationships(genes), tdir / "relationships.csv")
        # The planted morphology direction per gene, for anyone checking what a model recovered.
        morph = genes[["gene"] + [f"m_{f}" for f in MORPH_FEATURES]]
        morph.columns = ["gene"] + list(MORPH_FEATURES)
        write_csv(morph, tdir / "morphology.csv", float_format="%.4f")
        _publish(staging, out)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return out
