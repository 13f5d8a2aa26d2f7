"""Plate heatmap in the style of CellProfiler Analyst's plate viewer: one panel per plate, wells as
squares at their row/column, coloured by one per-well value on a shared scale."""
from __future__ import annotations

import string

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from ..errors import BiovizError


def row_index(rows: pd.Series) -> np.ndarray:
    """Rows as 0-based integers: ints pass (the dataset format's 0-based ``row``), letters map A=0
    (AA, AB ... for 1,536-well plates)."""
    if pd.api.types.is_numeric_dtype(rows):
        return rows.astype(int).to_numpy()
    out = []
    for r in rows.astype(str):
        v = 0
        for ch in r.strip().upper():
            v = v * 26 + string.ascii_uppercase.index(ch) + 1
        out.append(v - 1)
    return np.asarray(out, dtype=int)


def row_label(i: int) -> str:
    """0 -> A, 25 -> Z, 26 -> AA."""
    s, i = "", i + 1
    while i:
        i, r = divmod(i - 1, 26)
        s = string.ascii_uppercase[r] + s
    return s


def plate_heatmap(values: pd.DataFrame, value: str, *, title: str | None = None, max_plates: int = 12,
                  ncols: int = 3, colorscale: str = "Viridis", height_per_row: int = 230) -> go.Figure:
    """``values``: one row per well with plate, row, col (0-based row), well, perturbation, well_id
    and ``value``. Wells are square markers (so a click selects one: customdata carries well_id);
    one colour scale for every plate, the colour bar beside the panels. Rows may be letters.
    A table without row/col: one-line BiovizError."""
    for c in ("plate", "row", "col"):
        if c not in values.columns or values[c].isna().all():
            raise BiovizError(f"plate view: this dataset has no {c!r} column, so wells cannot be placed on a plate")
    values = values.assign(row=row_index(values["row"]))
    plates = sorted(values["plate"].astype(str).unique())[:max_plates]
    d = values[values["plate"].astype(str).isin(plates)]
    ncols = max(1, min(ncols, len(plates)))
    nrows = -(-len(plates) // ncols)
    fig = make_subplots(rows=nrows, cols=ncols, subplot_titles=[f"plate {p}" for p in plates],
                        horizontal_spacing=0.05, vertical_spacing=0.16 if nrows > 1 else 0.1)
    v = pd.to_numeric(d[value], errors="coerce")
    lo, hi = (float(np.nanpercentile(v, 1)), float(np.nanpercentile(v, 99))) if v.notna().any() else (0.0, 1.0)
    if hi <= lo:
        hi = lo + 1e-9
    n_row = int(d["row"].max()) + 1 if len(d) else 1
    n_col = int(d["col"].max()) if len(d) else 1
    # markers sized to fill the panel's cells at a 1,280 px wide page
    size = max(5, min(16, int(320 / max(n_col, 1))))
    for k, p in enumerate(plates):
        s = d[d["plate"].astype(str) == p]
        sv = pd.to_numeric(s[value], errors="coerce")
        fig.add_trace(go.Scatter(
            x=s["col"], y=s["row"], mode="markers", name=p, showlegend=False,
            marker=dict(size=size, symbol="square", color=sv.fillna(lo), cmin=lo, cmax=hi, colorscale=colorscale,
                        line=dict(width=np.where(sv.isna(), 1, 0), color="#999"),
                        showscale=k == 0, colorbar=dict(title=dict(text=value, side="right"), len=0.9, thickness=14)),
            customdata=np.c_[s["well_id"].astype(str), s["well"].astype(str), s["perturbation"].astype(str),
                             [f"{x:.3g}" if pd.notna(x) else "n/a" for x in sv]],
            hovertemplate="%{customdata[1]} · %{customdata[2]}<br>" + value + " %{customdata[3]}<extra></extra>"),
            row=k // ncols + 1, col=k % ncols + 1)
    fig.update_yaxes(autorange="reversed", tickvals=list(range(0, n_row, max(1, n_row // 8))),
                     ticktext=[row_label(i) for i in range(0, n_row, max(1, n_row // 8))], showgrid=False, zeroline=False)
    fig.update_xaxes(showgrid=False, zeroline=False, dtick=max(2, n_col // 6))
    fig.update_layout(height=height_per_row * nrows + 80, margin=dict(l=10, r=10, t=60, b=10), plot_bgcolor="#f4f4f4",
                      title=dict(text=title or f"{value} on each plate", x=0, font=dict(size=15)),
                      clickmode="event+select", dragmode=False)
    return fig
