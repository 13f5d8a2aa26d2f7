"""random: Gaussian noise, the null every embedding must beat."""
from __future__ import annotations

import numpy as np

from .registry import TableEmbedder, register_embedder


@register_embedder("random", description="Gaussian noise (the null)")
class RandomNull(TableEmbedder):
    def defaults(self):
        return {"dim": 128, "seed": 0}

    def table_features(self, screen):
        rng = np.random.default_rng(int(self.config["seed"]))
        return rng.standard_normal((screen.n_sites, int(self.config["dim"])))
