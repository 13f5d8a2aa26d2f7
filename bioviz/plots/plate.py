"""Plate heatmap: any per-well value on the plate layout, one panel per plate (CellProfiler
Analyst's plate viewer).  Each cell carries its well_id in ``customdata`` so a page can open the
clicked well's images."""
from __future__ import annotations

import string

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from ..errors import BiovizError


def _row_index(rows: pd.Series) -> np.ndarray:
    """Rows as 0-based integers: ints pass (the dataset format's 0-based ``row``), letters map A=0."""
    if pd.api.types.is_numeric_dtype(rows):
        return rows.astype(int).to_numpy()
    letters = {c: i for i, c in enumerate(string.ascii_uppercase)}
    out = []
    for r in rows.astype(str):
        r = r.strip().upper()
        v = 0
        for ch in r:  # AA, AB ... for 1536-well plates
            v = v * 26 + letters[ch] + 1
        out.append(v - 1)
    return np.asarray(out)


def row_label(i: int) -> str:
    s = ""
    i += 1
    while i:
        i, r = divmod(i - 1, 26)
        s = string.ascii_uppercase[r] + s
    return s


def plate_grid(df: pd.DataFrame, plate, value: str, agg: str = "mean") -> tuple[np.ndarray, np.ndarray, list, list]:
    """(values, well ids, row labels, column labels) of one plate: a rows x cols matrix, NaN where
    no well; several sites of a well are aggregated (``agg``)."""
    need = [c for c in ("plate", "row", "col", value) if c not in df.columns]
    if need:
        raise BiovizError(f"plate view needs columns plate, row, col and {value!r}; missing {', '.join(need)}")
    d = df[df["plate"] == plate]
    r = _row_index(d["row"])
    c = d["col"].astype(int).to_numpy()
    c0 = 1 if (df["col"].astype(int) >= 1).all() else 0
    n_r = int(_row_index(df["row"]).max()) + 1
    n_c = int(df["col"].astype(int).max()) + 1 - c0
    g = pd.DataFrame({"r": r, "c": c - c0, "v": pd.to_numeric(d[value], errors="coerce").to_numpy(),
                      "w": d["well_id"].astype(str).to_numpy() if "well_id" in d else ""})
    a = g.groupby(["r", "c"]).agg(v=("v", agg), w=("w", "first")).reset_index()
    vals = np.full((n_r, n_c), np.nan)
    ids = np.full((n_r, n_c), "", dtype=object)
    vals[a.r, a.c] = a.v
    ids[a.r, a.c] = a.w
    return vals, ids, [row_label(i) for i in range(n_r)], [str(j + c0) for j in range(n_c)]


def plate_heatmap(df: pd.DataFrame, value: str, *, title: str, plates=None, max_plates: int = 12,
                  colorscale: str = "Viridis", width: int = 1280) -> go.Figure:
    """One heatmap panel per plate (at most ``max_plates``, 4 per row), one colour scale for all.

    ``df``: one row per well or site with plate, row, col, ``value`` (and well_id for clicks).
    A dataset without row/col: one-line BiovizError."""
    for c in ("row", "col"):
        if c not in df.columns or df[c].isna().all():
            raise BiovizError(f"plate view: this dataset has no {c!r} column, so wells cannot be placed on a plate")
    plates = list(pd.unique(df["plate"])) if plates is None else list(plates)
    plates = plates[:max_plates]
    ncol = min(4, max(1, len(plates)))
    nrow = int(np.ceil(len(plates) / ncol))
    v_all = pd.to_numeric(df[value], errors="coerce")
    zmin, zmax = float(np.nanmin(v_all)), float(np.nanmax(v_all))
    fig = make_subplots(rows=nrow, cols=ncol, subplot_titles=[str(p) for p in plates],
                        horizontal_spacing=0.03, vertical_spacing=0.12 / max(1, nrow - 1) if nrow > 1 else 0.1)
    for i, p in enumerate(plates):
        vals, ids, rl, cl = plate_grid(df, p, value)
        fig.add_trace(go.Heatmap(
            z=vals, x=cl, y=rl, customdata=ids, zmin=zmin, zmax=zmax, colorscale=colorscale,
            showscale=i == 0, colorbar=dict(title=dict(text=value, side="right"), len=0.8),
            hovertemplate="%{customdata} (row %{y}, col %{x})<br>" + value + " %{z:.3g}<extra></extra>",
            xgap=1, ygap=1,
        ), row=i // ncol + 1, col=i % ncol + 1)
    fig.update_yaxes(autorange="reversed", showgrid=False, tickfont=dict(size=9), scaleanchor=None)
    fig.update_xaxes(showgrid=False, tickfont=dict(size=9), side="bottom")
    fig.update_layout(title=dict(text=title, x=0.01, xanchor="left"), width=width,
                      height=min(720, 110 + 260 * nrow), margin=dict(l=10, r=10, t=70, b=20), plot_bgcolor="white")
    return fig
