"""Drawing one simulated Cell Painting site: five 16-bit channels of cells with known parameters.

Each cell is drawn on a small patch around it with whole-array numpy (no per-pixel loops);
mitochondria and nucleoli are point sets blurred once per site. The planted morphology
point of a well (see simulate.MORPH_FEATURES) sets the mean cell shape; cells vary around it.
"""
from __future__ import annotations

import numpy as np
from scipy import ndimage as ndi

from .simulate import CHANNELS, MORPH_FEATURES, Preset

DNA, ER, RNA, AGP, MITO = range(len(CHANNELS))
GAIN = 8000.0        # camera counts per unit of simulated signal
PHOTON = 3.0         # counts per detected photon: sets the Poisson noise
OFFSET = 200.0       # camera dark offset
BACKGROUND = np.array([0.02, 0.03, 0.025, 0.03, 0.02])  # autofluorescence per channel
_Z = {f: i for i, f in enumerate(MORPH_FEATURES)}


def _cells(morph: np.ndarray, n: int, preset: Preset, rng: np.random.Generator) -> dict:
    """Per-cell shape parameters for n candidate cells of one well."""
    r0 = preset.nucleus_radius
    z = morph
    r = r0 * np.exp(0.12 * z[_Z["nuclear_size"]] + rng.normal(0, 0.08, n))
    aspect = np.exp(0.2 + 0.15 * z[_Z["nuclear_shape"]] + rng.normal(0, 0.06, n))
    aspect = np.maximum(aspect, 1.0)
    rc = r0 * 2.1 * np.exp(0.15 * z[_Z["cell_size"]] + rng.normal(0, 0.08, n))
    return {
        "a": r * np.sqrt(aspect), "b": r / np.sqrt(aspect), "r": r,
        "theta": rng.uniform(0, np.pi, n),
        "ca": rc * rng.uniform(1.0, 1.25, n), "cb": rc / rng.uniform(1.0, 1.25, n),
        "phi": rng.uniform(0, np.pi, n),
        "frag": 1 / (1 + np.exp(-(0.9 * z[_Z["mito_fragmentation"]] + rng.normal(0, 0.3, n)))),
        "actin": 0.45 * np.exp(0.35 * z[_Z["actin_texture"]] + rng.normal(0, 0.12, n)),
        "er_len": 0.3 * np.exp(0.4 * z[_Z["er_spread"]] + rng.normal(0, 0.1, n)),
        "psi": rng.uniform(0, np.pi, n),
        "bright": np.exp(rng.normal(0, 0.15, (n, len(CHANNELS)))),
    }


def _place(cells: dict, target: int, size: int, gap: float, rng: np.random.Generator) -> np.ndarray:
    """Indices of accepted candidates; centres stored in cells['y'], cells['x'].

    Dart throwing on precomputed distances: nuclei never touch (gap pixels apart) and lie wholly
    inside the field, so the number placed is the count a segmenter should find.
    """
    m = len(cells["a"])
    margin = cells["a"] + 1.5
    cells["y"] = margin + rng.random(m) * (size - 2 * margin)
    cells["x"] = margin + rng.random(m) * (size - 2 * margin)
    d = np.hypot(cells["y"][:, None] - cells["y"][None], cells["x"][:, None] - cells["x"][None])
    blocked = d < (cells["a"][:, None] + cells["a"][None] + gap)
    free = np.ones(m, dtype=bool)
    chosen = []
    for i in range(m):
        if free[i]:
            chosen.append(i)
            if len(chosen) == target:
                break
            free &= ~blocked[i]
    return np.array(chosen, dtype=int)


def render_site(morph: np.ndarray, chan_mult: np.ndarray, target_cells: int, out_of_focus: bool,
                preset: Preset, rng: np.random.Generator) -> tuple[np.ndarray, int]:
    """(5, H, W) uint16 image of one site and the number of cells drawn in it."""
    size = preset.image_size
    cand = _cells(morph, max(4 * target_cells, 8), preset, rng)
    keep = _place(cand, target_cells, size, gap=max(2.0, 0.5 * preset.nucleus_radius), rng=rng)
    c = {k: v[keep] for k, v in cand.items()}
    img = np.zeros((len(CHANNELS), size, size), dtype=np.float64)
    tex = ndi.gaussian_filter(rng.standard_normal((size, size)), 0.8)
    tex /= tex.std() + 1e-9
    mito_pts, nucleoli = [], []

    for i in range(len(keep)):
        cy, cx, a, b, r = c["y"][i], c["x"][i], c["a"][i], c["b"][i], c["r"][i]
        ca, cb = c["ca"][i], c["cb"][i]
        # The cell body sits off-centre around its nucleus, as in spread adherent cells.
        oy, ox = rng.normal(0, 0.15 * ca, 2)
        half = int(np.ceil(max(ca, cb) + abs(oy) + abs(ox) + 2))
        y0, y1 = max(0, int(cy) - half), min(size, int(cy) + half + 2)
        x0, x1 = max(0, int(cx) - half), min(size, int(cx) + half + 2)
        yy = np.arange(y0, y1)[:, None] - cy
        xx = np.arange(x0, x1)[None, :] - cx
        ct, st = np.cos(c["theta"][i]), np.sin(c["theta"][i])
        rn = np.hypot((xx * ct + yy * st) / a, (-xx * st + yy * ct) / b)
        nuc = np.clip((1 - rn) * r * 1.5 + 0.5, 0, 1)
        cp, sp = np.cos(c["phi"][i]), np.sin(c["phi"][i])
        yb, xb = yy - oy, xx - ox
        rc = np.hypot((xb * cp + yb * sp) / ca, (-xb * sp + yb * cp) / cb)
        edge_px = (1 - rc) * 0.5 * (ca + cb)  # distance inside the cell edge, pixels
        body = np.clip(edge_px * 0.7 + 0.5, 0, 1)
        dn = np.maximum(rn - 1, 0) * r  # distance outside the nucleus, pixels
        er_len = c["er_len"][i] * 0.5 * (ca + cb)
        w = xx * np.cos(c["psi"][i]) + yy * np.sin(c["psi"][i])
        fibres = 0.5 + 0.5 * np.cos(2 * np.pi * w / 3.5 + rng.uniform(0, 2 * np.pi))
        t = tex[y0:y1, x0:x1]
        k = c["bright"][i]
        img[DNA, y0:y1, x0:x1] += k[DNA] * nuc * (0.8 + 0.2 * t)
        img[ER, y0:y1, x0:x1] += k[ER] * 0.55 * body * np.exp(-dn / er_len) * (1 - 0.7 * nuc) * (1 + 0.15 * t)
        img[RNA, y0:y1, x0:x1] += k[RNA] * body * (0.12 + 0.18 * np.exp(-dn / (1.5 * er_len))) * (1 - 0.4 * nuc)
        rim = np.exp(-0.5 * (edge_px / 1.2) ** 2) * (edge_px > -2)
        img[AGP, y0:y1, x0:x1] += k[AGP] * (body * (0.12 + c["actin"][i] * fibres * 0.5) + 0.35 * rim)
        img[MITO, y0:y1, x0:x1] += k[MITO] * 0.06 * body * (1 - nuc)

        # Mitochondria: fragmented cells show many small dots, fused cells short tubules.
        n_p = int(0.1 * np.pi * ca * cb) + 4
        s = np.sqrt(rng.uniform((r / ca) ** 2, 1.0, n_p)) * 0.92
        ang = rng.uniform(0, 2 * np.pi, n_p)
        px, py = s * ca * np.cos(ang), s * cb * np.sin(ang)
        py_, px_ = cy + oy + px * sp + py * cp, cx + ox + px * cp - py * sp
        small = rng.random(n_p) < c["frag"][i]
        mito_pts.append((py_, px_, small, np.full(n_p, k[MITO] * 0.9 * 30 / n_p)))
        n_nuc = int(rng.integers(1, 4))
        off = rng.normal(0, 0.3 * r, (n_nuc, 2))
        nucleoli.append((cy + off[:, 0], cx + off[:, 1], np.full(n_nuc, k[RNA] * 1.2 * r)))

    if mito_pts:
        py, px, small, wt = (np.concatenate(v) for v in zip(*mito_pts))
        dots = np.zeros((size, size))
        tubes = np.zeros((size, size))
        _splat(dots, py[small], px[small], wt[small])
        ang = rng.uniform(0, np.pi, int((~small).sum()))
        for step in (-1.2, 0.0, 1.2):  # a tubule = three dots in a row
            _splat(tubes, py[~small] + step * np.sin(ang), px[~small] + step * np.cos(ang), wt[~small] / 3)
        img[MITO] += ndi.gaussian_filter(dots, 0.6) + ndi.gaussian_filter(tubes, 0.9)
        ny, nx, nw = (np.concatenate(v) for v in zip(*nucleoli))
        spots = np.zeros((size, size))
        _splat(spots, ny, nx, nw)
        img[RNA] += ndi.gaussian_filter(spots, max(0.6, 0.18 * preset.nucleus_radius))

    # Nuisance: stain batch effects, vignetting, autofluorescence, focus, shot noise.
    yy, xx = np.mgrid[:size, :size]
    rr = ((yy - size / 2) ** 2 + (xx - size / 2) ** 2) / (size / 2) ** 2
    vignette = 1 - 0.18 * rr
    img = (img * chan_mult[:, None, None] + BACKGROUND[:, None, None]) * vignette
    if out_of_focus:
        img = ndi.gaussian_filter(img, (0, preset.blur_sigma, preset.blur_sigma))
    photons = rng.poisson(np.maximum(img, 0) * (GAIN / PHOTON))
    counts = photons * PHOTON + OFFSET
    return np.clip(counts, 0, 65535).astype(np.uint16), len(keep)


def _splat(target: np.ndarray, y: np.ndarray, x: np.ndarray, w: np.ndarray) -> None:
    iy, ix = np.round(y).astype(int), np.round(x).astype(int)
    ok = (iy >= 0) & (iy < target.shape[0]) & (ix >= 0) & (ix < target.shape[1])
    np.add.at(target, (iy[ok], ix[ok]), w[ok])
