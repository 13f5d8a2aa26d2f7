"""cell_count: nuclei on the DNA channel, counts only (the density confounder).

Three named counts per site: ``cell_count`` (the nuclei kept by the filters), ``border_nuclei``
(nuclei touching the image edge) and ``crowded_nuclei`` (kept nuclei with another kept nucleus
centre within two nucleus diameters, CellProfiler's MeasureObjectNeighbors "NumberOfNeighbors > 0"
at that distance).  Counts only: the mean nucleus area it once carried is a shape feature, which
the ``morphology`` embedder has (``nucleus_area``); with it, cell_count's map mixed planted
morphology into "density".

Why a third count: a one-count map has cosines of +-1 only (ties everywhere, no recall to speak
of), and the demo's simulator keeps nuclei off the image edge, so ``border_nuclei`` is nearly
constant there (sd 0.06 over 1,520 sites of seed 11) and the map was one-dimensional in practice:
planted-density recall 0 at 0.05/0.95.  Crowding rises faster than the count itself (about with
its square at low density), so it varies wherever density does and is not collinear with it.
"""
from __future__ import annotations

import numpy as np

from ..errors import EmbedderError
from .registry import SiteEmbedder, register_embedder


class SegmentingEmbedder(SiteEmbedder):
    needs_segmentation = True

    def seg_defaults(self):
        # nucleus_diameter None: estimated per site (bioviz.segment) so one default fits any scale.
        return {"nuclear_channel": None, "nucleus_diameter": None}


# CellProfiler-comparable filters. They are applied to cell_count's own view of the shared
# segmentation (morphology and structure still see every nucleus), and they enter the cache key
# only when set: the defaults count exactly what cell_count counted before they existed, so
# caches computed then stay valid.
FILTERS = {"exclude_border": False, "min_nucleus_area": None, "max_nucleus_area": None}


def kept_nuclei(nuclei: np.ndarray, n: int, *, exclude_border: bool = False,
                min_nucleus_area: float | None = None, max_nucleus_area: float | None = None):
    """(keep mask over nucleus ids 1..n, their areas in pixels) after CellProfiler-style filters.

    exclude_border: drop nuclei touching the image edge (CellProfiler's IdentifyPrimaryObjects
    default). On the real 1,080 px site (BR00143976 C03 s3) this takes bioviz from 39 to 38
    nuclei against CellProfiler's 37 outlines (tests/test_cell_count.py).
    min/max_nucleus_area: keep nuclei whose area (pixels) lies in the closed range, like
    CellProfiler's "discard objects outside the diameter range" but stated as an area.
    """
    areas = np.bincount(nuclei.ravel(), minlength=n + 1)[1:n + 1].astype(np.float64)
    keep = np.ones(n, dtype=bool)
    if exclude_border and n:
        edge = np.unique(np.concatenate([nuclei[0], nuclei[-1], nuclei[:, 0], nuclei[:, -1]]))
        edge = edge[(edge > 0) & (edge <= n)]
        keep[edge - 1] = False
    if min_nucleus_area is not None:
        keep &= areas >= float(min_nucleus_area)
    if max_nucleus_area is not None:
        keep &= areas <= float(max_nucleus_area)
    return keep, areas


@register_embedder("cell_count", description="nuclei counts: kept, touching the border, crowded (DNA channel watershed); "
                   "options exclude_border, min_nucleus_area, max_nucleus_area")
class CellCount(SegmentingEmbedder):
    revision = 3  # 1 carried mean nucleus area; 2 is counts only; 3 adds crowded_nuclei

    def defaults(self):
        return {**self.seg_defaults(), **FILTERS}

    def __init__(self, **cfg):
        super().__init__(**cfg)
        if not isinstance(self.config["exclude_border"], bool):
            raise EmbedderError(f"embedder cell_count: exclude_border must be true or false, "
                                f"not {self.config['exclude_border']!r}")
        lo, hi = self.config["min_nucleus_area"], self.config["max_nucleus_area"]
        for key, v in (("min_nucleus_area", lo), ("max_nucleus_area", hi)):
            if v is not None and (isinstance(v, bool) or not isinstance(v, (int, float)) or v < 0):
                raise EmbedderError(f"embedder cell_count: {key} must be a number of pixels >= 0, not {v!r}")
        if lo is not None and hi is not None and lo > hi:
            raise EmbedderError(f"embedder cell_count: min_nucleus_area {lo} is above max_nucleus_area {hi}")
        for key, default in FILTERS.items():
            if self.config[key] is default:
                del self.config[key]

    def site_features(self, img, seg):
        keep, _ = kept_nuclei(seg.nuclei, seg.n, **{k: self.config.get(k, d) for k, d in FILTERS.items()})
        border = 0
        if seg.n:
            edge = np.unique(np.concatenate([seg.nuclei[0], seg.nuclei[-1], seg.nuclei[:, 0], seg.nuclei[:, -1]]))
            border = int(((edge > 0) & (edge <= seg.n)).sum())
        return np.array([int(keep.sum()), border, crowded_nuclei(seg.nuclei, seg.n, keep, seg.diameter)],
                        dtype=np.float64)

    def feature_names(self, channels):
        return ["cell_count", "border_nuclei", "crowded_nuclei"]


def crowded_nuclei(nuclei: np.ndarray, n: int, keep: np.ndarray, diameter: float, *, within: float = 2.0) -> int:
    """Kept nuclei with at least one other kept nucleus whose centre lies within ``within`` nucleus
    diameters of their own centre."""
    ids = np.flatnonzero(keep) + 1
    if len(ids) < 2:
        return 0
    from scipy import ndimage as ndi
    from scipy.spatial import cKDTree

    centres = np.asarray(ndi.center_of_mass(np.ones_like(nuclei, dtype=np.uint8), nuclei, ids), dtype=np.float64)
    pairs = cKDTree(centres).query_pairs(within * float(diameter), output_type="ndarray")
    return int(len(np.unique(pairs))) if len(pairs) else 0
