"""Figure builders. Models are drawn in saturated colours, baselines in greys with hatching, so a
reviewer tells them apart at a glance in every figure."""
from __future__ import annotations

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from ..bench.attribution import embedder_kind, models_first
from ..bench.recall import null_recall

MODEL_COLORS = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#17becf", "#e377c2")
BASELINE_COLORS = ("#7f7f7f", "#a67c52", "#b5b5b5", "#5c5c5c", "#c7a27c", "#8c8c6c", "#9e9e9e", "#6b5b4b")
CATEGORY_COLORS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#17becf",
                   "#bcbd22", "#393b79", "#637939", "#8c6d31", "#843c39", "#7b4173", "#3182bd", "#e6550d",
                   "#31a354", "#756bb1", "#636363")
CATEGORICAL_MAX = len(CATEGORY_COLORS)  # more categories than this: the rest are drawn grey as "other"
OTHER = "#d0d0d0"


def figure_config(fmt: str = "png", filename: str = "bioviz") -> dict:
    """The modebar camera button downloads the figure in ``fmt`` (png or svg), in the browser."""
    return {"displaylogo": False, "toImageButtonOptions": {"format": fmt, "filename": filename, "scale": 2}}


def embedder_colors(names) -> dict[str, str]:
    names = list(dict.fromkeys(names))
    models = [n for n in names if embedder_kind(n) == "model"]
    bases = [n for n in names if embedder_kind(n) != "model"]
    out = {n: MODEL_COLORS[i % len(MODEL_COLORS)] for i, n in enumerate(models)}
    out.update({n: BASELINE_COLORS[i % len(BASELINE_COLORS)] for i, n in enumerate(bases)})
    return out


def _hatch(base: bool) -> dict:
    # overlay: the hatch is drawn over the bar colour (the default replaces the fill with it)
    return dict(shape="/" if base else "", fillmode="overlay", fgcolor="white")


def _order(names) -> list[str]:
    return models_first(names)


def _legend_name(n: str) -> str:
    return f"{n} (baseline)" if embedder_kind(n) != "model" else n


# -- embeddings --------------------------------------------------------------------------------------
_HOVER_CACHE: dict = {}


def hover_text(df: pd.DataFrame, cols) -> np.ndarray:
    """One preformatted hover string per row. Cached per (table, columns): the colouring table of a
    222k-well map is a long-lived cached object, and formatting it is most of a recolour's cost."""
    key = (id(df), len(df), tuple(cols))
    hit = _HOVER_CACHE.get(key)
    if hit is not None and hit[0] is df:
        return hit[1]
    parts = [f"{c}: " + df[c].map(_fmt).astype(str).to_numpy(dtype=object) for c in cols]
    text = parts[0] if parts else np.full(len(df), "", dtype=object)
    for p in parts[1:]:
        text = text + "<br>" + p
    if len(_HOVER_CACHE) > 8:
        _HOVER_CACHE.clear()
    _HOVER_CACHE[key] = (df, text)
    return text


def embedding_scatter(df: pd.DataFrame, color: str | None, *, categorical: bool | None = None,
                      hover_cols=(), highlight=None, max_hover: int = 20000, title: str = "",
                      point_size: float | None = None, height: int = 520) -> tuple[go.Figure, list[np.ndarray]]:
    """WebGL scatter of ``df.x, df.y`` coloured by ``df[color]``.

    Returns the figure and, per trace, the row positions of its points (for selection_to_rows).
    Beyond ``max_hover`` points the coloured traces carry no hover text (a 222k-point hover payload
    is megabytes of JSON); a transparent layer over a random ``max_hover`` sample carries it.
    ``highlight``: row positions drawn on top with a black outline (the linked selection).
    Traces are collected and handed to the Figure at once: ``add_trace`` deep-copies every array.
    """
    n = len(df)
    x = df["x"].to_numpy(np.float32)
    y = df["y"].to_numpy(np.float32)
    size = point_size or (7 if n < 2000 else 4 if n < 30000 else 2)
    big = n > max_hover
    # The fixed hover columns are formatted once per table (cached); the colour's value is appended
    # per figure, and only for the points that carry hover text.
    hover_cols = [c for c in hover_cols if c in df.columns]
    add_color = bool(color) and color in df.columns and color not in hover_cols
    text_all = None
    if hover_cols or add_color:
        text_all = hover_text(df, hover_cols)
        if add_color and not big:
            text_all = text_all + f"<br>{color}: " + df[color].map(_fmt).astype(str).to_numpy(dtype=object)
    traces: list = []
    curves: list[np.ndarray] = []

    def hover_args(rows):
        if big:
            return dict(hoverinfo="skip")
        if text_all is None:
            return {}
        return dict(text=text_all[rows], hovertemplate="%{text}<extra></extra>")

    values = df[color] if color and color in df.columns else None
    if values is not None and categorical is None:
        categorical = not pd.api.types.is_numeric_dtype(values) or pd.api.types.is_bool_dtype(values) \
            or values.nunique() <= 12
    if values is None:
        rows = np.arange(n)
        traces.append(go.Scattergl(x=x, y=y, mode="markers", marker=dict(size=size, color="#1f77b4"),
                                   name="wells", showlegend=False, **hover_args(rows)))
        curves.append(rows)
    elif categorical:
        codes, uniques = pd.factorize(values.astype(str), sort=False)
        counts = np.bincount(codes[codes >= 0], minlength=len(uniques))
        top = np.argsort(-counts, kind="stable")[:CATEGORICAL_MAX]
        order = sorted(top, key=lambda k: _natural(str(uniques[k])))
        in_top = np.zeros(len(uniques) + 1, bool)
        in_top[top] = True
        rest = ~in_top[codes]
        if rest.any():
            rows = np.flatnonzero(rest)
            traces.append(go.Scattergl(x=x[rows], y=y[rows], mode="markers",
                                       name=f"other ({len(uniques) - len(top)})",
                                       marker=dict(size=size, color=OTHER), **hover_args(rows)))
            curves.append(rows)
        by_code = np.argsort(codes, kind="stable")
        bounds = np.searchsorted(codes[by_code], np.arange(len(uniques) + 1))
        for i, k in enumerate(order):
            rows = np.sort(by_code[bounds[k]:bounds[k + 1]])
            traces.append(go.Scattergl(x=x[rows], y=y[rows], mode="markers", name=str(uniques[k]),
                                       marker=dict(size=size, color=CATEGORY_COLORS[i % len(CATEGORY_COLORS)]),
                                       **hover_args(rows)))
            curves.append(rows)
    else:
        v = pd.to_numeric(values, errors="coerce").to_numpy(np.float32)
        rows = np.arange(n)
        lo, hi = np.nanpercentile(v, [1, 99]) if np.isfinite(v).any() else (0, 1)
        traces.append(go.Scattergl(x=x, y=y, mode="markers", name=color, showlegend=False,
                                   marker=dict(size=size, color=v, colorscale="Viridis", cmin=float(lo),
                                               cmax=float(hi) if hi > lo else float(lo) + 1,
                                               colorbar=dict(title=dict(text=color, side="right"), thickness=12)),
                                   **hover_args(rows)))
        curves.append(rows)
    if big and text_all is not None:
        rows = np.sort(np.random.default_rng(0).choice(n, max_hover, replace=False))
        text = text_all[rows]
        if add_color:
            text = text + f"<br>{color}: " + df[color].iloc[rows].map(_fmt).astype(str).to_numpy(dtype=object)
        traces.append(go.Scattergl(x=x[rows], y=y[rows], mode="markers", name="hover sample",
                                   showlegend=False, marker=dict(size=size + 2, opacity=0),
                                   text=text, hovertemplate="%{text}<extra></extra>"))
        curves.append(rows)
    if highlight is not None and len(highlight):
        rows = np.asarray(highlight, dtype=int)
        traces.append(go.Scattergl(x=x[rows], y=y[rows], mode="markers", name=f"selected ({len(rows)})",
                                   marker=dict(size=size + 4, color="rgba(0,0,0,0)",
                                               line=dict(color="black", width=1.5)), hoverinfo="skip"))
        curves.append(rows)
    fig = go.Figure(data=traces, layout=dict(
        title=dict(text=title, x=0.01), height=height, margin=dict(l=10, r=10, t=40, b=10),
        dragmode="lasso", legend=dict(itemsizing="constant", font=dict(size=11)),
        xaxis=dict(title=dict(text="UMAP 1"), showticklabels=False, zeroline=False),
        yaxis=dict(title=dict(text="UMAP 2"), showticklabels=False, zeroline=False),
        plot_bgcolor="white", uirevision=title))
    return fig, curves


def _fmt(v):
    if isinstance(v, (float, np.floating)):
        return f"{v:.3g}"
    return str(v)


def _natural(s: str):
    try:
        return (0, float(s), "")
    except ValueError:
        return (1, 0.0, s)


# -- recall ---------------------------------------------------------------------------------------------
def recall_bars(recall: pd.DataFrame, threshold: str, adjustments=("",), embedders=None,
                height: int = 420) -> go.Figure:
    """Bars per source, one per embedder (models first, baselines hatched), 95% CI whiskers, the
    random-null recall as a dashed line; one panel per adjustment ('' = raw)."""
    r = recall[(recall["threshold"] == threshold) & (recall["mechanism"] == "")]
    if embedders is not None:
        r = r[r["embedder"].isin(embedders)]
    adjustments = list(adjustments) or [""]
    titles = ["raw" if a == "" else f"adjusted for {a.replace('+', ', ')}" for a in adjustments]
    fig = make_subplots(rows=1, cols=len(adjustments), shared_yaxes=True, subplot_titles=titles,
                        horizontal_spacing=0.04)
    names = _order(r["embedder"])
    colors = embedder_colors(names)
    sources = sorted(r["source"].unique(), key=lambda s: (s != "planted", s))  # ground truth first
    for k, adj in enumerate(adjustments, start=1):
        ra = r[r["adjusted_for"] == adj]
        for name in names:
            d = ra[ra["embedder"] == name].set_index("source").reindex(sources)
            base = embedder_kind(name) != "model"
            fig.add_trace(go.Bar(
                x=sources, y=d["recall"], name=_legend_name(name), legendgroup=name, showlegend=k == 1,
                marker=dict(color=colors[name], pattern=_hatch(base)),
                error_y=dict(type="data", symmetric=False, array=(d["ci_high"] - d["recall"]).to_numpy(),
                             arrayminus=(d["recall"] - d["ci_low"]).to_numpy(), thickness=1.2, width=3),
                hovertemplate=f"<b>{name}</b><br>%{{x}}: recall %{{y:.3f}}<extra></extra>"), row=1, col=k)
        extra = dict(annotation_text="random null", annotation_position="top left") if k == 1 else {}
        fig.add_hline(y=null_recall(threshold), line=dict(dash="dash", color="black", width=1), row=1, col=k,
                      **extra)
    fig.update_layout(barmode="group", height=height, margin=dict(l=10, r=10, t=50, b=10),
                      yaxis_title=f"recall at {threshold}", plot_bgcolor="white",
                      legend=dict(orientation="h", y=-0.15), bargap=0.2)
    fig.update_yaxes(gridcolor="#eee", rangemode="tozero")
    return fig


def mechanism_bars(recall: pd.DataFrame, threshold: str, source: str | None = None,
                   adjusted: str = "", height: int = 380) -> go.Figure:
    """Recall per planted mechanism: which embedder recovers which kind of biology."""
    r = recall[(recall["threshold"] == threshold) & (recall["mechanism"] != "") & (recall["adjusted_for"] == adjusted)]
    if source is not None:
        r = r[r["source"] == source]
    mechs = sorted(r["mechanism"].unique())
    names = _order(r["embedder"])
    colors = embedder_colors(names)
    fig = go.Figure()
    for name in names:
        d = r[r["embedder"] == name].groupby("mechanism")[["recall", "ci_low", "ci_high"]].mean().reindex(mechs)
        base = embedder_kind(name) != "model"
        fig.add_trace(go.Bar(x=mechs, y=d["recall"], name=_legend_name(name),
                             marker=dict(color=colors[name], pattern=_hatch(base)),
                             error_y=dict(type="data", symmetric=False, array=(d["ci_high"] - d["recall"]).to_numpy(),
                                          arrayminus=(d["recall"] - d["ci_low"]).to_numpy(), thickness=1.2, width=3)))
    fig.add_hline(y=null_recall(threshold), line=dict(dash="dash", color="black", width=1),
                  annotation_text="random null", annotation_position="top left")
    fig.update_layout(barmode="group", height=height, xaxis_title="planted mechanism",
                      yaxis_title=f"recall at {threshold}", margin=dict(l=10, r=10, t=30, b=10),
                      plot_bgcolor="white", legend=dict(orientation="h", y=-0.2))
    fig.update_yaxes(gridcolor="#eee", rangemode="tozero")
    return fig


def activity_bars(activity: pd.DataFrame, height: int = 320) -> go.Figure:
    """Any numeric column of activity.csv per embedder (fraction active, mAP, ...)."""
    num = [c for c in activity.columns if c != "embedder" and pd.api.types.is_numeric_dtype(activity[c])]
    names = _order(activity["embedder"])
    colors = embedder_colors(names)
    # "fraction significant: activity" beside "...: consistency" overlap at 1,280 px: two lines each
    fig = make_subplots(rows=1, cols=max(1, len(num)), subplot_titles=[c.replace(": ", ":<br>") for c in num])
    for k, col in enumerate(num, start=1):
        d = activity.groupby("embedder")[col].mean().reindex(names)
        fig.add_trace(go.Bar(x=names, y=d.to_numpy(), marker_color=[colors[n] for n in names], showlegend=False,
                             marker_pattern=dict(shape=["/" if embedder_kind(n) != "model" else "" for n in names],
                                   fillmode="overlay", fgcolor="white")),
                      row=1, col=k)
    fig.update_yaxes(rangemode="tozero")  # all-zero fractions drew a -1..1 axis that reads as empty
    fig.update_layout(height=height, margin=dict(l=10, r=10, t=60, b=10), plot_bgcolor="white")
    return fig


# -- confounders ----------------------------------------------------------------------------------------
def heatmap(matrix: pd.DataFrame, title: str = "", zmin=None, zmax=None, colorscale="Blues",
            fmt: str = ".2f", height: int | None = None, colorbar_title: str = "") -> go.Figure:
    z = matrix.to_numpy(dtype=float)
    text = np.vectorize(lambda v: "" if np.isnan(v) else format(v, fmt))(z) if z.size else z
    fig = go.Figure(go.Heatmap(z=z, x=[str(c) for c in matrix.columns], y=[str(i) for i in matrix.index],
                               zmin=zmin, zmax=zmax, colorscale=colorscale, text=text, texttemplate="%{text}",
                               colorbar=dict(title=dict(text=colorbar_title)), hoverongaps=False,
                               hovertemplate="%{y} / %{x}: %{z:.3f}<extra></extra>"))
    fig.update_layout(title=dict(text=title, x=0.01), height=height or max(280, 60 + 38 * len(matrix)),
                      margin=dict(l=10, r=10, t=40 if title else 10, b=10), yaxis=dict(autorange="reversed"))
    return fig


def leakage_bars(leak: pd.DataFrame, height: int = 320) -> go.Figure:
    """Plate prediction accuracy per embedder against the chance level: the embedding knows the plate."""
    names = _order(leak["embedder"])
    colors = embedder_colors(names)
    d = leak.set_index("embedder").reindex(names)
    fig = go.Figure(go.Bar(x=names, y=d["accuracy"], marker_color=[colors[n] for n in names],
                           marker_pattern=dict(shape=["/" if embedder_kind(n) != "model" else "" for n in names],
                                   fillmode="overlay", fgcolor="white"),
                           name="plate accuracy", hovertemplate="%{x}: %{y:.3f}<extra></extra>"))
    if "chance" in d and d["chance"].notna().any():
        fig.add_trace(go.Scatter(x=names, y=d["chance"], mode="lines+markers", name="chance",
                                 line=dict(dash="dash", color="black")))
    fig.update_layout(height=height, yaxis_title="plate predicted from embedding (accuracy)",
                      yaxis_range=[0, 1.05], margin=dict(l=10, r=10, t=20, b=10), plot_bgcolor="white",
                      legend=dict(orientation="h", y=1.1))
    return fig


def null_distributions(items: list[dict], height_per: int = 140) -> go.Figure:
    """One small histogram per embedder: the null similarities and the pair's value as a red line.
    ``items``: dicts with embedder, null (array), value (float or None), percentile, and optionally
    kind (the recorded kind; else read from the name)."""
    n = max(1, len(items))
    titles = [f"{it['embedder']}: cosine {it['value']:.3f}, percentile {it['percentile']:.1f}"
              if it.get("value") is not None else f"{it['embedder']}: pair not in this map" for it in items]
    fig = make_subplots(rows=n, cols=1, subplot_titles=titles, vertical_spacing=min(0.5 / n, 0.12))
    for k, it in enumerate(items, start=1):
        base = (it.get("kind") or embedder_kind(it["embedder"])) != "model"
        # binned here, not in the browser: 20,000 raw cosines per map were most of the figure's JSON
        null = np.asarray(it["null"], dtype=float)
        null = null[np.isfinite(null)]
        counts, edges = np.histogram(null, bins=60) if len(null) else (np.zeros(0), np.zeros(1))
        fig.add_trace(go.Bar(x=(edges[:-1] + edges[1:]) / 2, y=counts, width=np.diff(edges), showlegend=False,
                             marker_color="#b5b5b5" if base else "#9ecae1", marker_line_width=0,
                             customdata=np.c_[edges[:-1], edges[1:]],
                             hovertemplate="cosine %{customdata[0]:.2f} to %{customdata[1]:.2f}<br>%{y} pairs"
                                           "<extra></extra>"), row=k, col=1)
        if it.get("value") is not None:
            fig.add_vline(x=it["value"], line=dict(color="#d62728", width=2.5), row=k, col=1)
    fig.update_layout(height=60 + height_per * n, margin=dict(l=10, r=10, t=40, b=10), bargap=0.02,
                      plot_bgcolor="white")
    fig.update_annotations(font_size=12)
    fig.update_xaxes(range=[-1, 1])
    return fig


# -- the screen ---------------------------------------------------------------------------------------
def plate_map(obs: pd.DataFrame, color: str = "perturbation_type", max_plates: int = 6) -> go.Figure:
    """Wells on each plate (rows A.. down, columns 1.. across), coloured by ``color``."""
    plates = sorted(obs["plate"].unique())[:max_plates]
    d = obs[obs["plate"].isin(plates)].drop_duplicates(["plate", "well"])
    ncols = min(3, len(plates))
    nrows = -(-len(plates) // ncols)
    fig = make_subplots(rows=nrows, cols=ncols, subplot_titles=[f"plate {p}" for p in plates],
                        horizontal_spacing=0.04, vertical_spacing=0.12)
    cats = sorted(d[color].astype(str).unique())
    palette = {"control": "#7f7f7f", "gene": "#1f77b4", "compound": "#ff7f0e", "other": "#2ca02c"}
    for ci, cat in enumerate(cats):
        for k, p in enumerate(plates):
            s = d[(d["plate"] == p) & (d[color].astype(str) == cat)]
            fig.add_trace(go.Scatter(
                x=s["col"], y=s["row"], mode="markers", name=cat, legendgroup=cat, showlegend=k == 0,
                marker=dict(size=9, symbol="square", color=palette.get(cat, CATEGORY_COLORS[ci % len(CATEGORY_COLORS)])),
                customdata=np.c_[s["well"], s["perturbation"]],
                hovertemplate="%{customdata[0]}: %{customdata[1]}<extra></extra>"), row=k // ncols + 1, col=k % ncols + 1)
    nrow = int(d["row"].max()) + 1 if len(d) else 1
    fig.update_yaxes(autorange="reversed", tickvals=list(range(nrow)), ticktext=[chr(65 + i) for i in range(nrow)],
                     showgrid=False)
    fig.update_xaxes(showgrid=False, dtick=2)
    fig.update_layout(height=220 * nrows + 90, margin=dict(l=10, r=10, t=40, b=10), plot_bgcolor="#fafafa",
                      legend=dict(orientation="h", y=-0.12, x=0))
    return fig
