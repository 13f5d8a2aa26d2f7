"""Three ways of judging known pairs, per embedder: all pairs, regression adjustment, matched null."""
from __future__ import annotations

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from ..bench.attribution import embedder_kind, models_first
from ..bench.recall import null_recall

# one mark per way of judging: the all-pairs null hollow, the two confounder-aware ones filled
MARKS = {"all": ("circle-open", "#555555"), "adjusted": ("square", "#ff7f0e"), "matched": ("diamond", "#1f77b4")}


def _which(null: str) -> str:
    return "adjusted" if null.startswith("adjusted for") else ("matched" if null.startswith("matched:") else "all")


def null_model_marks(table: pd.DataFrame, threshold: str, height_per: int = 34) -> go.Figure:
    """One row per embedder (models first), three marks: recall against all pairs, after the
    regression adjustment and under the matched null, each with its 95% CI; a grey line joins
    the all-pairs mark to the matched one (the dumbbell a reader follows); the dashed line is the
    recall of a map without information. ``table``: ``dashboard.nulls.null_model_table``."""
    names = models_first(table["embedder"])
    labels = [f"{n} (baseline)" if embedder_kind(n) != "model" else n for n in names]
    ypos = {n: k for k, n in enumerate(names)}
    shift = {"all": 0.0, "adjusted": -0.22, "matched": 0.22}  # three marks per row, side by side
    fig = go.Figure()
    wide = table.pivot_table(index="embedder", columns="null", values="recall", aggfunc="first")
    allc = next((c for c in wide.columns if _which(c) == "all"), None)
    matc = next((c for c in wide.columns if _which(c) == "matched"), None)
    if allc and matc:
        xs, ys = [], []
        for n in names:
            if n in wide.index and np.isfinite(wide.loc[n, allc]) and np.isfinite(wide.loc[n, matc]):
                xs += [wide.loc[n, allc], wide.loc[n, matc], None]
                ys += [ypos[n], ypos[n] + shift["matched"], None]
        fig.add_trace(go.Scatter(x=xs, y=ys, mode="lines", line=dict(color="#cccccc", width=3), showlegend=False,
                                 hoverinfo="skip"))
    for null in dict.fromkeys(table["null"]):
        d = table[table["null"] == null].set_index("embedder").reindex(names)
        sym, col = MARKS[_which(null)]
        fig.add_trace(go.Scatter(
            x=d["recall"], y=[ypos[n] + shift[_which(null)] for n in names], mode="markers", name=null,
            text=labels,
            marker=dict(symbol=sym, size=12, color=col, line=dict(width=2, color=col)),
            error_x=dict(type="data", symmetric=False, array=(d["ci_high"] - d["recall"]).to_numpy(),
                         arrayminus=(d["recall"] - d["ci_low"]).to_numpy(), thickness=1.2, width=3, color=col),
            customdata=np.c_[d.get("reason", pd.Series("", index=d.index)).fillna("").astype(str)],
            hovertemplate=f"<b>%{{text}}</b><br>{null}: recall %{{x:.3f}}<br>%{{customdata[0]}}<extra></extra>"))
    fig.add_vline(x=null_recall(threshold), line=dict(dash="dash", color="black", width=1),
                  annotation_text="chance", annotation_position="top")
    fig.update_layout(height=90 + height_per * len(names), margin=dict(l=10, r=10, t=30, b=10), plot_bgcolor="white",
                      xaxis_title=f"recall at {threshold}", legend=dict(orientation="h", y=-0.2),
                      yaxis=dict(autorange="reversed", tickvals=list(range(len(names))), ticktext=labels,
                                 showgrid=False))
    fig.update_xaxes(gridcolor="#eee", rangemode="tozero")
    return fig
