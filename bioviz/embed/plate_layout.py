"""plate_layout: one-hot plate, row and column plus an edge flag, the "plate information" baseline.

If this scores like a model, the model's map may be recalling where wells sat, not what they held.
"""
from __future__ import annotations

import numpy as np

from .registry import TableEmbedder, register_embedder

# (rows, cols) of standard plates, smallest first.
PLATE_FORMATS = ((2, 3), (4, 6), (8, 12), (16, 24), (32, 48))


def plate_shape(obs) -> tuple[int, int]:
    """Smallest standard plate holding every (row, col) in the screen (rows 0-based, cols 1-based)."""
    max_r, max_c = int(obs["row"].max()) + 1, int(obs["col"].max())
    for r, c in PLATE_FORMATS:
        if max_r <= r and max_c <= c:
            return r, c
    return max_r, max_c


def edge_flag(obs) -> np.ndarray:
    """True for wells on the outermost ring of the plate (evaporation and temperature edge effects)."""
    nr, nc = plate_shape(obs)
    r, c = obs["row"].to_numpy(), obs["col"].to_numpy()
    return (r == 0) | (r == nr - 1) | (c == 1) | (c == nc)


@register_embedder("plate_layout", description="one-hot plate, row, column and an edge flag")
class PlateLayout(TableEmbedder):
    def table_features(self, screen):
        obs = screen.obs
        blocks = []
        self._names = []
        for col in ("plate", "row", "col"):
            levels = sorted(obs[col].unique(), key=lambda v: (str(type(v)), v))
            codes = obs[col].map({v: i for i, v in enumerate(levels)}).to_numpy()
            blocks.append(np.eye(len(levels))[codes])
            self._names += [f"{col}={v}" for v in levels]
        blocks.append(edge_flag(obs)[:, None].astype(float))
        self._names.append("edge")
        return np.concatenate(blocks, 1)

    def feature_names(self, channels):
        return getattr(self, "_names", None)
