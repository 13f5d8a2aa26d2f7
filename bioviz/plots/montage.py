"""Montage along an axis: wells ordered along a confounder or a UMAP direction, shown as one
image strip from the low end to the high end, so a biologist sees what "high cell count" or
"this direction" looks like."""
from __future__ import annotations

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from ..errors import BiovizError


def montage_order(df: pd.DataFrame, value: str, n: int = 8, *, id_col: str = "well_id") -> pd.DataFrame:
    """``n`` wells evenly spaced along ``value`` (the well nearest each of n quantiles from the
    lowest to the highest, no well twice): id, value, quantile, position (0 = low end)."""
    if value not in df.columns:
        raise BiovizError(f"montage: no column {value!r} to order wells by")
    d = df[[id_col, value]].dropna()
    if len(d) == 0:
        raise BiovizError(f"montage: no well has a value for {value!r}")
    d = d.sort_values(value, kind="stable").reset_index(drop=True)
    n = min(int(n), len(d))
    targets = np.linspace(0, len(d) - 1, n)
    picked, used = [], set()
    for t in targets:
        i = int(round(t))
        while i in used and i + 1 < len(d):
            i += 1
        used.add(i)
        picked.append(i)
    out = d.iloc[picked].reset_index(drop=True)
    out["quantile"] = np.asarray(picked) / max(1, len(d) - 1)
    out["position"] = np.arange(len(out))
    return out


def direction_scores(xy: np.ndarray, start, end) -> np.ndarray:
    """Projection of 2-D points onto the direction start -> end (0 at start, 1 at end)."""
    a, b = np.asarray(start, float), np.asarray(end, float)
    d = b - a
    norm = float(d @ d)
    if norm == 0:
        raise BiovizError("montage: the direction's two ends are the same point")
    return (np.asarray(xy, float) - a) @ d / norm


def montage_strip(tiles, labels, *, title: str, gap: int = 4, tile_px: int = 150) -> go.Figure:
    """One row of tiles (H x W x 3 uint8 arrays, equal size) with a caption under each; the
    x axis runs from the low end to the high end of the ordering."""
    tiles = [np.asarray(t) for t in tiles]
    if not tiles:
        raise BiovizError("montage: no images to show")
    h, w = tiles[0].shape[:2]
    if any(t.shape[:2] != (h, w) for t in tiles):
        raise BiovizError("montage: tiles differ in size; resize them to one size first")
    strip = np.full((h, len(tiles) * (w + gap) - gap, 3), 255, dtype=np.uint8)
    for i, t in enumerate(tiles):
        rgb = t if t.ndim == 3 else np.repeat(t[..., None], 3, axis=2)
        strip[:, i * (w + gap): i * (w + gap) + w] = rgb[..., :3]
    fig = go.Figure(go.Image(z=strip))
    centers = [i * (w + gap) + w / 2 for i in range(len(tiles))]
    fig.update_xaxes(tickvals=centers, ticktext=[str(l) for l in labels], showgrid=False, tickfont=dict(size=10))
    fig.update_yaxes(visible=False)
    width = min(1280, max(400, len(tiles) * (tile_px + 6) + 40))
    fig.update_layout(title=dict(text=title, x=0.01, xanchor="left"), width=width,
                      height=int(tile_px * h / w) + 130, margin=dict(l=10, r=10, t=60, b=60))
    return fig
