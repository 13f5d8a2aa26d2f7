"""Cell Painting images in false colour: percentile contrast stretch, then additive blending."""
from __future__ import annotations

import numpy as np


def hex_to_rgb(color: str) -> np.ndarray:
    c = color.lstrip("#")
    if len(c) == 3:
        c = "".join(ch * 2 for ch in c)
    return np.array([int(c[i:i + 2], 16) for i in (0, 2, 4)], dtype=np.float32) / 255.0


def stretch(plane: np.ndarray, low: float = 1.0, high: float = 99.5) -> np.ndarray:
    """Map the [low, high] percentiles to [0, 1]: dim stains become visible, a few hot pixels do not
    wash the image out. A flat plane stays black instead of dividing by zero."""
    plane = np.asarray(plane, dtype=np.float32)
    lo, hi = np.percentile(plane, [low, high])
    if hi - lo < 1e-8:
        return np.zeros_like(plane)
    return np.clip((plane - lo) / (hi - lo), 0.0, 1.0)


def composite(site: np.ndarray, colors, channels=None, channels_on=None, *, low: float = 1.0,
              high: float = 99.5) -> np.ndarray:
    """(C, H, W) site -> (H, W, 3) uint8.

    ``colors`` is either a list (one hex per plane) or a dict channel -> hex with ``channels``
    naming the planes; ``channels_on`` (names or indices) picks which planes are blended.
    """
    site = np.asarray(site)
    if site.ndim != 3:
        raise ValueError(f"expected a (C, H, W) site, got shape {site.shape}")
    n = site.shape[0]
    names = list(channels) if channels is not None else list(range(n))
    if isinstance(colors, dict):
        cols = [colors.get(nm, "#FFFFFF") for nm in names]
    else:
        cols = list(colors)
    on = set(range(n)) if channels_on is None else {
        names.index(c) if c in names else int(c) for c in channels_on if c in names or isinstance(c, int)}
    out = np.zeros(site.shape[1:] + (3,), dtype=np.float32)
    for i in sorted(on):
        out += stretch(site[i], low, high)[..., None] * hex_to_rgb(cols[i])
    return (np.clip(out, 0, 1) * 255).round().astype(np.uint8)


def grey(plane: np.ndarray, low: float = 1.0, high: float = 99.5) -> np.ndarray:
    return (stretch(plane, low, high) * 255).round().astype(np.uint8)


def montage(tiles: list[np.ndarray], ncols: int = 4, pad: int = 2) -> np.ndarray:
    """RGB tiles of one size in a grid with a white gutter."""
    if not tiles:
        return np.zeros((1, 1, 3), np.uint8)
    h, w = tiles[0].shape[:2]
    nrows = -(-len(tiles) // ncols)
    ncols = min(ncols, len(tiles))
    out = np.full((nrows * (h + pad) - pad, ncols * (w + pad) - pad, 3), 255, np.uint8)
    for k, t in enumerate(tiles):
        r, c = divmod(k, ncols)
        out[r * (h + pad): r * (h + pad) + h, c * (w + pad): c * (w + pad) + w] = t[:h, :w]
    return out
