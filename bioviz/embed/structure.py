"""structure: intensity-free features from the masks alone (shape, crowding, neighbour distances).

What a model could learn without reading a single stain intensity: if this baseline recalls
relationships, the map may be reporting cell layout rather than biology.
"""
from __future__ import annotations

import numpy as np

from .cell_count import SegmentingEmbedder
from .registry import register_embedder

NAMES = ("count", "cell_area_fraction", "nucleus_area_fraction",
         "nucleus_area_median", "nucleus_area_iqr", "nucleus_eccentricity", "nucleus_solidity",
         "nucleus_form_factor", "cell_area_median", "cell_area_iqr", "cell_eccentricity",
         "cell_solidity", "cell_form_factor", "nucleus_cell_area_ratio",
         "nn_distance_median", "nn_distance_mean", "nn_distance_std", "neighbours_within_3d",
         "touching_fraction", "touching_neighbours_mean", "border_fraction")


def _touching(labels, n):
    """Per cell: number of distinct other cells sharing a 4-connected edge."""
    pairs = []
    for a, b in ((labels[:, :-1], labels[:, 1:]), (labels[:-1, :], labels[1:, :])):
        m = (a != b) & (a > 0) & (b > 0)
        pairs.append(np.stack([a[m], b[m]], 1))
    p = np.concatenate(pairs)
    if len(p) == 0:
        return np.zeros(n)
    p = np.unique(np.sort(p, 1), axis=0)
    return np.bincount(p.ravel(), minlength=n + 1)[1:]


@register_embedder("structure", description="intensity-free: nucleus/cell shape, crowding, nearest-neighbour distances")
class Structure(SegmentingEmbedder):
    revision = 2  # qhull solidity (and for morphology, subsampled granularity)

    def defaults(self):
        return self.seg_defaults()

    def site_features(self, img, seg):
        n = seg.n
        out = dict.fromkeys(NAMES, 0.0)
        H, W = seg.nuclei.shape
        out["count"] = n
        if n == 0:
            return np.array([out[k] for k in NAMES])
        nuc, cell = seg.shapes("nuclei"), seg.shapes("cells")
        out["cell_area_fraction"] = float((seg.cells > 0).mean())
        out["nucleus_area_fraction"] = float((seg.nuclei > 0).mean())
        for pre, t in (("nucleus", nuc), ("cell", cell)):
            q25, q50, q75 = np.percentile(t["area"], (25, 50, 75))
            out[f"{pre}_area_median"], out[f"{pre}_area_iqr"] = q50, q75 - q25
            out[f"{pre}_eccentricity"] = np.median(t["eccentricity"])
            out[f"{pre}_solidity"] = np.median(t["solidity"])
            out[f"{pre}_form_factor"] = np.median(t["form_factor"])
        out["nucleus_cell_area_ratio"] = float(np.median(nuc["area"] / np.maximum(cell["area"], 1)))
        pts = np.stack([nuc["cy"], nuc["cx"]], 1)
        if n > 1:
            d = np.sqrt(((pts[:, None] - pts[None]) ** 2).sum(-1))
            np.fill_diagonal(d, np.inf)
            nn = d.min(1)
            out["nn_distance_median"], out["nn_distance_mean"], out["nn_distance_std"] = (
                np.median(nn), nn.mean(), nn.std())
            out["neighbours_within_3d"] = float((d < 3 * seg.diameter).sum(1).mean())
        touch = _touching(seg.cells, n)
        out["touching_fraction"] = float((touch > 0).mean())
        out["touching_neighbours_mean"] = float(touch.mean())
        border = np.unique(np.concatenate([seg.cells[0], seg.cells[-1], seg.cells[:, 0], seg.cells[:, -1]]))
        out["border_fraction"] = float((border > 0).sum()) / n
        return np.array([out[k] for k in NAMES], dtype=np.float64)

    def feature_names(self, channels):
        return list(NAMES)
