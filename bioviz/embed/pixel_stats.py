"""pixel_stats: intensity distribution of each channel, no notion of cells at all."""
from __future__ import annotations

import numpy as np

from .registry import SiteEmbedder, register_embedder

QUANTILES = (1, 5, 25, 50, 75, 95, 99)


@register_embedder("pixel_stats", description="per channel: mean, std, 7 quantiles, coarse log histogram")
class PixelStats(SiteEmbedder):
    def defaults(self):
        # Log-spaced bins: 16-bit stains often use only the lowest percent of the range, where
        # linear bins would put every pixel in bin 0.
        return {"bins": 8, "log_min": -4.0}

    def site_features(self, img, seg=None):
        bins, lo = int(self.config["bins"]), float(self.config["log_min"])
        edges = np.concatenate([[-np.inf], np.logspace(lo, 0, bins)[:-1], [np.inf]])
        out = []
        for plane in img:
            flat = plane.ravel()
            q = np.percentile(flat, QUANTILES)
            hist = np.histogram(flat, bins=edges)[0] / flat.size
            out.append(np.concatenate([[flat.mean(), flat.std()], q, hist]))
        return np.concatenate(out)

    def feature_names(self, channels):
        names = ["mean", "std"] + [f"q{q}" for q in QUANTILES] + [f"hist{i}" for i in range(int(self.config["bins"]))]
        return [f"{ch}_{n}" for ch in channels for n in names]
