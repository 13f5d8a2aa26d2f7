"""morphology: CellProfiler-like per-cell features, aggregated per site by the median over cells.

Per cell: nucleus and cell shape (regionprops); per channel the nucleus and cytoplasm intensity;
Haralick texture from a grey-level co-occurrence matrix of the cell; and a granularity spectrum
(intensity removed by successively larger openings). Every per-cell measurement is computed for
all cells at once with bincount over the label image, which keeps a 2-core run in minutes.
"""
from __future__ import annotations

import numpy as np
from scipy import ndimage as ndi

from .cell_count import SegmentingEmbedder
from .registry import register_embedder
from .seg import median_or_zero

NUC_SHAPE = ("area", "perimeter", "eccentricity", "solidity", "extent",
             "major_axis_length", "minor_axis_length", "form_factor")
CELL_SHAPE = ("area", "perimeter", "eccentricity", "solidity", "form_factor")
INTENSITY = ("nuc_mean", "nuc_std", "nuc_integrated", "cyto_mean", "cyto_std")
TEXTURE = ("contrast", "homogeneity", "asm", "correlation", "entropy")


def _label_stats(plane, labels, n):
    flat, lab = plane.ravel().astype(np.float64), labels.ravel()
    cnt = np.bincount(lab, minlength=n + 1)[1:]
    s = np.bincount(lab, weights=flat, minlength=n + 1)[1:]
    s2 = np.bincount(lab, weights=flat * flat, minlength=n + 1)[1:]
    mean = np.divide(s, cnt, out=np.zeros(n), where=cnt > 0)
    var = np.divide(s2, cnt, out=np.zeros(n), where=cnt > 0) - mean**2
    return mean, np.sqrt(np.maximum(var, 0)), s


def haralick(plane, labels, n, levels):
    """Per-object Haralick features, symmetric GLCM at distance 1, averaged over 0 and 90 degrees."""
    fg = labels > 0
    if n == 0 or not fg.any():
        return np.zeros((n, len(TEXTURE)))
    lo, hi = np.percentile(plane[fg], (0.5, 99.5))
    q = np.clip(((plane - lo) / max(hi - lo, 1e-12) * levels).astype(np.int64), 0, levels - 1)
    L2 = levels * levels
    feats = np.zeros((n, len(TEXTURE)))
    i, j = np.meshgrid(np.arange(levels), np.arange(levels), indexing="ij")
    for a_sl, b_sl in (((slice(None), slice(None, -1)), (slice(None), slice(1, None))),
                       ((slice(None, -1), slice(None)), (slice(1, None), slice(None)))):
        la, lb = labels[a_sl], labels[b_sl]
        same = (la == lb) & (la > 0)
        key = la[same].astype(np.int64) * L2 + q[a_sl][same] * levels + q[b_sl][same]
        P = np.bincount(key, minlength=(n + 1) * L2).reshape(n + 1, levels, levels)[1:].astype(np.float64)
        P = P + P.transpose(0, 2, 1)
        tot = P.sum((1, 2), keepdims=True)
        P = np.divide(P, tot, out=np.zeros_like(P), where=tot > 0)
        contrast = (P * (i - j) ** 2).sum((1, 2))
        homog = (P / (1.0 + (i - j) ** 2)).sum((1, 2))
        asm = (P**2).sum((1, 2))
        mu = (P * i).sum((1, 2))
        sd = np.sqrt(np.maximum((P * (i - mu[:, None, None]) ** 2).sum((1, 2)), 0))
        cov = (P * (i - mu[:, None, None]) * (j - mu[:, None, None])).sum((1, 2))
        # A flat cell has no defined correlation; 0 keeps the matrix finite and says "no structure".
        corr = np.divide(cov, sd**2, out=np.zeros(n), where=sd > 1e-12)
        ent = -(P * np.log(P, out=np.zeros_like(P), where=P > 0)).sum((1, 2))
        feats += np.stack([contrast, homog, asm, corr, ent], 1) / 2.0
    return feats


def granularity(plane, labels, n, radii, subsample=2):
    """Fraction of each object's intensity removed between openings of radius r-1 and r.

    Square structuring elements (CellProfiler uses disks) on a 2x mean-pooled image (CellProfiler
    subsamples by 4 by default): separable min/max filters on a quarter of the pixels keep the
    spectrum cheap; radii are in subsampled pixels.
    """
    if n == 0:
        return np.zeros((n, len(radii)))
    if subsample > 1:
        f = int(subsample)
        h, w = (plane.shape[0] // f) * f, (plane.shape[1] // f) * f
        plane = plane[:h, :w].reshape(h // f, f, w // f, f).mean((1, 3))
        labels = labels[:h:f, :w:f]
    lab = labels.ravel()
    prev = plane
    total = np.bincount(lab, weights=plane.ravel().astype(np.float64), minlength=n + 1)[1:]
    out = []
    for r in radii:
        opened = ndi.grey_opening(plane, size=(2 * r + 1, 2 * r + 1))
        removed = np.bincount(lab, weights=(prev - opened).ravel().astype(np.float64), minlength=n + 1)[1:]
        out.append(np.divide(removed, total, out=np.zeros(n), where=total > 0))
        prev = opened
    return np.stack(out, 1)


@register_embedder("morphology", description="CellProfiler-like per-cell shape, intensity, texture, granularity; median per site")
class Morphology(SegmentingEmbedder):
    revision = 2  # qhull solidity (and for morphology, subsampled granularity)

    def defaults(self):
        return {**self.seg_defaults(), "glcm_levels": 8, "granularity_radii": [1, 2, 3, 4],
                "granularity_subsample": 2}

    def site_features(self, img, seg):
        n = seg.n
        nuc_shape, cell_shape = seg.shapes("nuclei"), seg.shapes("cells")
        cols = [nuc_shape[k] for k in NUC_SHAPE] + [cell_shape[k] for k in CELL_SHAPE]
        cyto = np.where(seg.nuclei > 0, 0, seg.cells)
        radii = [int(r) for r in self.config["granularity_radii"]]
        for plane in img:
            nm, ns, nsum = _label_stats(plane, seg.nuclei, n)
            cm, cs, _ = _label_stats(plane, cyto, n)
            cols += [nm, ns, nsum, cm, cs]
            cols += list(haralick(plane, seg.cells, n, int(self.config["glcm_levels"])).T)
            cols += list(granularity(plane, seg.cells, n, radii, int(self.config["granularity_subsample"])).T)
        per_cell = np.stack(cols, 1) if n else np.zeros((0, len(cols)))
        return median_or_zero(per_cell)

    def feature_names(self, channels):
        radii = self.config["granularity_radii"]
        names = [f"nucleus_{k}" for k in NUC_SHAPE] + [f"cell_{k}" for k in CELL_SHAPE]
        for ch in channels:
            names += [f"{ch}_{k}" for k in INTENSITY] + [f"{ch}_texture_{k}" for k in TEXTURE]
            names += [f"{ch}_granularity_{r}" for r in radii]
        return names
