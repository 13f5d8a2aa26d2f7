"""Density view of a big embedding map: binned counts coloured by the bin's mean or majority.

At 222k wells a scatter is overplotted (the last-drawn colour wins) and its WebGL payload is
megabytes; a 2-D histogram shows where the wells are and what dominates each place. Each non-empty
bin is one square marker (not a heatmap image) so the lasso still selects: a selected bin stands
for every well in it.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from .figures import CATEGORICAL_MAX, CATEGORY_COLORS, OTHER, _natural

DENSITY_ABOVE = 50_000  # points; above this the Embeddings page draws the density view


def bin_points(x: np.ndarray, y: np.ndarray, bins: int = 150):
    """-> (bin id per point, bin centres x, y, bin width, height); ids index a bins x bins grid."""
    x = np.asarray(x, np.float64)
    y = np.asarray(y, np.float64)
    x0, x1 = float(np.nanmin(x)), float(np.nanmax(x))
    y0, y1 = float(np.nanmin(y)), float(np.nanmax(y))
    wx = (x1 - x0) / bins or 1.0
    wy = (y1 - y0) / bins or 1.0
    ix = np.clip(((x - x0) / wx).astype(np.int64), 0, bins - 1)
    iy = np.clip(((y - y0) / wy).astype(np.int64), 0, bins - 1)
    ids = iy * bins + ix
    cx = x0 + (np.arange(bins * bins) % bins + 0.5) * wx
    cy = y0 + (np.arange(bins * bins) // bins + 0.5) * wy
    return ids, cx, cy, wx, wy


def embedding_density(df: pd.DataFrame, color: str | None, *, bins: int = 150, categorical: bool | None = None,
                      highlight=None, title: str = "", height: int = 520):
    """Figure of binned ``df.x, df.y``; returns (fig, bin_curves, bin_rows).

    bin_curves[trace][point] is a bin id, bin_rows(bin ids) -> the rows of ``df`` in those bins, so
    a lasso on the figure maps back to wells. Numeric ``color``: bins coloured by the mean; other:
    by the majority category (top CATEGORICAL_MAX, the rest 'other'). Hover: wells per bin and the
    colour's value. ``highlight``: those rows drawn as points with a black outline.
    """
    n = len(df)
    x = df["x"].to_numpy(np.float32)
    y = df["y"].to_numpy(np.float32)
    ids, cx, cy, wx, wy = bin_points(x, y, bins)
    counts = np.bincount(ids, minlength=bins * bins)
    occupied = np.flatnonzero(counts)
    order = np.argsort(ids, kind="stable")
    starts = np.concatenate([[0], np.cumsum(counts)])

    def bin_rows(bin_ids) -> np.ndarray:
        parts = [order[starts[b]:starts[b + 1]] for b in np.unique(np.asarray(bin_ids, dtype=np.int64))
                 if 0 <= b < len(counts)]
        return np.sort(np.concatenate(parts)) if parts else np.array([], dtype=np.int64)

    # Marker side in pixels so neighbouring bins touch at the figure's drawn size.
    size = max(2.0, (height - 60) / bins)
    traces, curves = [], []
    values = df[color] if color and color in df.columns else None
    if values is not None and categorical is None:
        categorical = not pd.api.types.is_numeric_dtype(values) or pd.api.types.is_bool_dtype(values) \
            or values.nunique() <= 12
    cnt = counts[occupied]
    if values is None:
        traces.append(go.Scattergl(x=cx[occupied], y=cy[occupied], mode="markers", showlegend=False,
                                   marker=dict(symbol="square", size=size, color=np.log10(cnt), colorscale="Greys",
                                               colorbar=dict(title=dict(text="log10 wells", side="right"),
                                                             thickness=12)),
                                   text=[f"{c} wells" for c in cnt], hovertemplate="%{text}<extra></extra>"))
        curves.append(occupied)
    elif categorical:
        codes, uniques = pd.factorize(values.astype(str), sort=False)
        k = len(uniques)
        tally = np.bincount(ids[codes >= 0] * k + codes[codes >= 0], minlength=bins * bins * k).reshape(-1, k)
        major = tally[occupied].argmax(1)
        share = tally[occupied].max(1) / np.maximum(cnt, 1)
        top = np.argsort(-np.bincount(codes[codes >= 0], minlength=k), kind="stable")[:CATEGORICAL_MAX]
        shown = sorted(top, key=lambda c: _natural(str(uniques[c])))
        rest = ~np.isin(major, top)
        groups = ([(f"other ({k - len(top)})", OTHER, rest)] if rest.any() else []) + \
            [(str(uniques[c]), CATEGORY_COLORS[i % len(CATEGORY_COLORS)], major == c) for i, c in enumerate(shown)]
        for name, col, m in groups:
            if not m.any():
                continue
            text = [f"{c} wells<br>{color}: mostly {uniques[j]} ({s:.0%})" for c, j, s in zip(cnt[m], major[m], share[m])]
            traces.append(go.Scattergl(x=cx[occupied[m]], y=cy[occupied[m]], mode="markers", name=name,
                                       marker=dict(symbol="square", size=size, color=col),
                                       text=text, hovertemplate="%{text}<extra></extra>"))
            curves.append(occupied[m])
    else:
        v = pd.to_numeric(values, errors="coerce").to_numpy(np.float64)
        ok = np.isfinite(v)
        s = np.bincount(ids[ok], weights=v[ok], minlength=bins * bins)
        c_ok = np.bincount(ids[ok], minlength=bins * bins)
        mean = np.where(c_ok > 0, s / np.maximum(c_ok, 1), np.nan)[occupied]
        lo, hi = np.nanpercentile(v[ok], [1, 99]) if ok.any() else (0.0, 1.0)
        text = [f"{c} wells<br>mean {color}: {m:.3g}" for c, m in zip(cnt, mean)]
        traces.append(go.Scattergl(x=cx[occupied], y=cy[occupied], mode="markers", showlegend=False,
                                   marker=dict(symbol="square", size=size, color=mean, colorscale="Viridis",
                                               cmin=float(lo), cmax=float(hi) if hi > lo else float(lo) + 1,
                                               colorbar=dict(title=dict(text=f"mean {color}", side="right"),
                                                             thickness=12)),
                                   text=text, hovertemplate="%{text}<extra></extra>"))
        curves.append(occupied)
    if highlight is not None and len(highlight):
        rows = np.asarray(highlight, dtype=int)
        traces.append(go.Scattergl(x=x[rows], y=y[rows], mode="markers", name=f"selected ({len(rows)})",
                                   marker=dict(size=4, color="rgba(0,0,0,0)", line=dict(color="black", width=1)),
                                   hoverinfo="skip"))
        curves.append(None)  # points, not bins: not selectable as bins
    fig = go.Figure(data=traces, layout=dict(
        # the density note on its own line: on one line the title ran past a half-width map at 222,601
        title=dict(text=f"{title}<br><sup>density of {n:,} points in {bins} x {bins} bins</sup>", x=0.01),
        height=height, margin=dict(l=10, r=10, t=60, b=10), dragmode="lasso", legend=dict(itemsizing="constant", font=dict(size=11)),
        xaxis=dict(title=dict(text="UMAP 1"), showticklabels=False, zeroline=False),
        yaxis=dict(title=dict(text="UMAP 2"), showticklabels=False, zeroline=False),
        plot_bgcolor="white", uirevision=title))
    return fig, curves, bin_rows


def selected_bin_rows(selection, curves, bin_rows) -> np.ndarray:
    """Rows of every well in the bins a lasso/box selected on an ``embedding_density`` figure."""
    if not selection:
        return np.array([], dtype=np.int64)
    points = selection.get("points", []) if hasattr(selection, "get") else []
    bins = []
    for p in points or []:
        c = p.get("curve_number", p.get("curveNumber"))
        i = p.get("point_index", p.get("pointIndex", p.get("point_number")))
        if c is None or i is None or not (0 <= int(c) < len(curves)) or curves[int(c)] is None:
            continue
        if 0 <= int(i) < len(curves[int(c)]):
            bins.append(int(curves[int(c)][int(i)]))
    return bin_rows(bins) if bins else np.array([], dtype=np.int64)
