"""One segmentation per site per run, shared by cell_count, morphology, structure and confounders.

Nuclei come from ``bioviz.segment`` (smoothing, Otsu, distance-transform watershed). Cells are
the nuclei grown into the foreground of the non-DNA channels, as CellProfiler's
IdentifySecondaryObjects does with its "distance" methods, capped at about one nucleus
diameter so an isolated nucleus in a dim field does not claim the whole image.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage as ndi


@dataclass
class Segmentation:
    nuclei: np.ndarray   # int32 labels, 0 = background
    cells: np.ndarray    # int32 labels, same ids as nuclei
    diameter: float      # typical nucleus diameter used (pixels)

    @property
    def n(self) -> int:
        return int(self.nuclei.max())

    def shapes(self, which: str) -> dict:
        """Shape table of 'nuclei' or 'cells', computed once and shared by the embedders of a site."""
        memo = self.__dict__.setdefault("_shapes", {})
        if which not in memo:
            memo[which] = shape_table(getattr(self, which), self.n)
        return memo[which]


def seg_key(cfg: dict) -> tuple:
    return (cfg.get("nuclear_channel"), cfg.get("nucleus_diameter"))


def segment_site(img: np.ndarray, nuc_index: int, nucleus_diameter: float | None = None) -> Segmentation:
    from skimage.filters import threshold_otsu
    from skimage.segmentation import expand_labels

    from ..segment import estimate_nucleus_diameter, segment_nuclei

    dna = img[nuc_index]
    d = float(nucleus_diameter) if nucleus_diameter else estimate_nucleus_diameter(dna)
    d = max(d, 3.0)
    nuclei = segment_nuclei(dna, nucleus_diameter=d)
    if nuclei.max() == 0:
        return Segmentation(nuclei, nuclei.copy(), d)
    others = [i for i in range(img.shape[0]) if i != nuc_index]
    grown = expand_labels(nuclei, distance=max(1.0, d))
    if others:
        cyto = ndi.gaussian_filter(img[others].mean(0), max(0.5, d / 12))
        if float(cyto.max() - cyto.min()) > 0:
            fg = cyto > threshold_otsu(cyto)
            grown = np.where(fg | (nuclei > 0), grown, 0)
    return Segmentation(nuclei, grown.astype(np.int32), d)


SHAPE_PROPS = ("area", "perimeter", "eccentricity", "solidity", "extent",
               "major_axis_length", "minor_axis_length")


def shape_table(labels: np.ndarray, n: int) -> dict[str, np.ndarray]:
    """Per-object shape (object ids 1..n, in order; absent ids get zeros).

    Same definitions as skimage's regionprops (moments-based axes and eccentricity, its perimeter
    estimator), but the convex hull comes from qhull on pixel corners instead of rasterising a
    hull image per object: the part that dominated a site's feature time.
    """
    from scipy.spatial import ConvexHull
    from skimage.measure import perimeter

    out = {k: np.zeros(n) for k in SHAPE_PROPS + ("form_factor", "cy", "cx")}
    if n == 0:
        return out
    corners = np.array([[-0.5, -0.5], [-0.5, 0.5], [0.5, -0.5], [0.5, 0.5]])
    for k, sl in enumerate(ndi.find_objects(labels, max_label=n)):
        if sl is None:
            continue
        mask = labels[sl] == k + 1
        yy, xx = np.nonzero(mask)
        a = float(len(yy))
        cy, cx = yy.mean(), xx.mean()
        dy, dx = yy - cy, xx - cx
        # skimage's inertia tensor: central second moments with a 1/12 pixel term.
        myy, mxx, mxy = (dy * dy).mean() + 1 / 12, (dx * dx).mean() + 1 / 12, (dy * dx).mean()
        root = np.sqrt(((myy - mxx) / 2) ** 2 + mxy**2)
        l1, l2 = (myy + mxx) / 2 + root, max((myy + mxx) / 2 - root, 0.0)
        out["area"][k] = a
        out["major_axis_length"][k] = 4 * np.sqrt(l1)
        out["minor_axis_length"][k] = 4 * np.sqrt(l2)
        out["eccentricity"][k] = np.sqrt(1 - l2 / l1) if l1 > 0 else 0.0
        out["extent"][k] = a / mask.size
        out["perimeter"][k] = perimeter(np.pad(mask, 1), 4)
        pts = (np.stack([yy, xx], 1)[:, None, :] + corners[None]).reshape(-1, 2)
        try:
            out["solidity"][k] = min(1.0, a / ConvexHull(pts).volume)
        except Exception:  # degenerate hull (cannot happen with pixel corners, but never crash a run)
            out["solidity"][k] = 1.0
        out["cy"][k], out["cx"][k] = cy + sl[0].start, cx + sl[1].start
    per = np.maximum(out["perimeter"], 1e-6)
    # 4*pi*A/P^2: 1 for a disk, lower for ragged or elongated outlines (CellProfiler's FormFactor).
    out["form_factor"] = np.where(out["area"] > 0, np.clip(4 * np.pi * out["area"] / per**2, 0, 2), 0.0)
    return out


def median_or_zero(x: np.ndarray, axis=0):
    """Median over cells; a site without cells gets zeros (its cell_count of 0 says why)."""
    if x.shape[axis] == 0:
        return np.zeros(x.shape[1:] if axis == 0 else x.shape[:1])
    return np.median(x, axis=axis)
