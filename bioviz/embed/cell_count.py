"""cell_count: nuclei on the DNA channel; count and mean nucleus area (the density confounder)."""
from __future__ import annotations

import numpy as np

from .registry import SiteEmbedder, register_embedder


class SegmentingEmbedder(SiteEmbedder):
    needs_segmentation = True

    def seg_defaults(self):
        # nucleus_diameter None: estimated per site (bioviz.segment) so one default fits any scale.
        return {"nuclear_channel": None, "nucleus_diameter": None}


@register_embedder("cell_count", description="nuclei count and mean nucleus area (DNA channel watershed)")
class CellCount(SegmentingEmbedder):
    def defaults(self):
        return self.seg_defaults()

    def site_features(self, img, seg):
        n = seg.n
        area = float((seg.nuclei > 0).sum()) / n if n else 0.0
        return np.array([n, area], dtype=np.float64)

    def feature_names(self, channels):
        return ["cell_count", "mean_nucleus_area"]
