"""Forest plots and dumbbells: recall per embedder, readable on a 1,280 x 720 slide.

One row per embedder, sorted by score (best on top, the same order in every panel so a row reads
across); one small panel per relationship source; a point with its bootstrap CI whiskers; the
null's recall as a dashed vertical line.  Models are saturated colours, baselines greys (one shade
per kind of baseline), the random null a light dashed style.  The title is an argument: the caller
states the finding ("cell_count's recall comes from density"), not the variable.

The ``*_data`` functions return exactly what is drawn (rows, order, colours, CI ends), so tests
check a figure's content without parsing plotly JSON.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from ..bench.attribution import embedder_kind, recorded_kinds
from ..bench.recall import null_recall

MODEL_COLORS = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#17becf", "#e377c2")
# one grey per kind of baseline: dark for what a screen gives for free, light for the null
KIND_COLORS = {
    "density": "#4d4d4d",
    "pixel": "#6e6e6e",
    "confounder": "#5f5a52",
    "untrained network": "#8c8c8c",
    "handcrafted": "#7a6f63",
    "plate layout": "#a3a3a3",
    "null": "#c8c8c8",
}
KIND_ORDER = ("model", "density", "pixel", "confounder", "handcrafted", "untrained network", "plate layout", "null")
NULL_LINE = "#9e9e9e"
SLIDE = (1280, 720)


def baseline_kind(name: str, recorded: str | None = None) -> str:
    """What an embedder is, for colour: ``model``, ``null``, ``handcrafted`` or the kind of baseline.

    ``recorded``: the kind the benchmark recorded for it (summary.json ``kinds``; a precomputed
    table's ``kind`` option), which wins over the name: CellProfiler profiles imported as
    ``precomputed`` with kind handcrafted are drawn as handcrafted, not as a model."""
    n = str(name)
    k = recorded if recorded in ("model", "handcrafted", "baseline", "null") else embedder_kind(n)
    if k in ("model", "null", "handcrafted"):
        return k
    if n == "cell_count" or n.startswith("confounder:cell_count"):
        return "density"
    if n.startswith("confounder:"):
        return "confounder"
    if n.startswith("untrained_"):
        return "untrained network"
    if n == "pixel_stats":
        return "pixel"
    if n == "plate_layout":
        return "plate layout"
    return "handcrafted"  # structure and other registered baselines: engineered, intensity-free


def kind_colors(names, recorded: dict | None = None) -> dict[str, str]:
    """Colour per embedder: models cycle through saturated colours, baselines take their kind's grey."""
    out, i = {}, 0
    for n in dict.fromkeys(names):
        k = baseline_kind(n, (recorded or {}).get(n))
        if k == "model":
            out[n] = MODEL_COLORS[i % len(MODEL_COLORS)]
            i += 1
        else:
            out[n] = KIND_COLORS[k]
    return out


def _select(recall: pd.DataFrame, threshold: str, adjusted_for: str, mechanism: str, sources) -> pd.DataFrame:
    df = recall
    if "null_model" in df:
        df = df[df["null_model"].fillna("all").astype(str).isin(["all", ""])]
    df = df[(df["threshold"].astype(str) == str(threshold))
            & (df["adjusted_for"].fillna("").astype(str) == adjusted_for)
            & (df["mechanism"].fillna("").astype(str) == mechanism)]
    if sources is not None:
        df = df[df["source"].isin(list(sources))]
    return df


def _source_order(sources) -> list[str]:
    s = list(dict.fromkeys(sources))
    # the planted truth first on a simulated screen: it is the answer key
    return sorted(s, key=lambda x: (x != "planted", x))


def forest_data(recall: pd.DataFrame, threshold: str, *, adjusted_for: str = "", mechanism: str = "",
                sources=None) -> pd.DataFrame:
    """The rows a forest plot draws: source, embedder, recall, ci_low, ci_high, kind, color, dash,
    row (0 = top), plus the null's recall.  Embedders are sorted by their mean recall over the
    shown sources, best first (ties by name); the order is shared by every panel."""
    df = _select(recall, threshold, adjusted_for, mechanism, sources)
    df = df.dropna(subset=["recall"])
    if df.empty:
        return pd.DataFrame(columns=["source", "embedder", "recall", "ci_low", "ci_high", "kind", "color", "dash",
                                     "row", "null"])
    mean = df.groupby("embedder")["recall"].mean()
    order = sorted(mean.index, key=lambda n: (-mean[n], n))
    rec = recorded_kinds(recall)
    colors = kind_colors(order, rec)
    out = df[["source", "embedder", "recall", "ci_low", "ci_high"]].copy()
    out["kind"] = out["embedder"].map(lambda n: baseline_kind(n, rec.get(n)))
    out["color"] = out["embedder"].map(colors)
    out["dash"] = out["kind"] == "null"
    out["row"] = out["embedder"].map({n: i for i, n in enumerate(order)})
    out["null"] = null_recall(threshold)
    src_rank = {s: i for i, s in enumerate(_source_order(out["source"]))}
    return out.sort_values(["source", "row"], key=lambda c: c.map(src_rank) if c.name == "source" else c
                           ).reset_index(drop=True)


def _legend_traces(kinds, fig, legend_models: list[str], colors: dict) -> None:
    for n in legend_models:
        fig.add_trace(go.Scatter(x=[None], y=[None], mode="markers", marker=dict(color=colors[n], size=9),
                                 name=n, legendgroup=n, showlegend=True), row=1, col=1)
    for k in KIND_ORDER[1:]:
        if k in kinds:
            # handcrafted features (morphology, CellProfiler profiles) are their own kind since issue 9,
            # not a baseline
            label = {"null": "null (random)", "handcrafted": "handcrafted features"}.get(k, f"baseline: {k}")
            sym = "circle-open" if k == "null" else "circle"
            fig.add_trace(go.Scatter(x=[None], y=[None], mode="markers", name=label, showlegend=True,
                                     marker=dict(color=KIND_COLORS[k], size=9, symbol=sym,
                                                 line=dict(width=2 if k == "null" else 0))),
                          row=1, col=1)
    fig.add_trace(go.Scatter(x=[None], y=[None], mode="lines", name="chance (null line)", showlegend=True,
                             line=dict(color=NULL_LINE, dash="dash", width=1.5)), row=1, col=1)


def _nice_step(raw: float) -> float:
    """1, 2 or 5 times a power of ten, at least ``raw``."""
    if not np.isfinite(raw) or raw <= 0:
        return 0.1
    p = 10 ** np.floor(np.log10(raw))
    return float(next(m * p for m in (1, 2, 5, 10) if m * p >= raw))


def wrap_title(title: str, width: int = 75) -> str:
    """Plotly does not wrap titles, and a page column is narrower than a slide: break a long title
    once, at the last ': ' / '; ' / ' (' before ``width`` characters (else at a space)."""
    if len(title) <= width or "<br>" in title:
        return title
    for sep in (": ", "; ", " ("):
        i = title.rfind(sep, 0, width)
        if i > 20:
            cut = i + (len(sep) if sep != " (" else 0)
            return title[:cut].rstrip() + "<br>" + title[cut:].lstrip()
    i = title.rfind(" ", 0, width)
    return title if i < 0 else title[:i] + "<br>" + title[i + 1:]


def _panels(n_sources: int, titles, title: str, n_rows: int, x_title: str, x_max: float = 1.0):
    fig = make_subplots(rows=1, cols=max(1, n_sources), shared_yaxes=True, subplot_titles=list(titles),
                        horizontal_spacing=0.012 if n_sources > 4 else 0.03)
    w, h = SLIDE
    fig.update_layout(
        title=dict(text=wrap_title(title), x=0.01, xanchor="left", y=0.98, yanchor="top", font=dict(size=17)),
        width=w, height=min(h, max(380, 185 + 30 * n_rows)),
        margin=dict(l=10, r=10, t=115 if "<br>" in wrap_title(title) else 85, b=56), plot_bgcolor="white",
        legend=dict(x=1.01, xanchor="left", y=1, yanchor="top", font=dict(size=11), bgcolor="rgba(255,255,255,0.9)"),
        font=dict(size=12),
    )
    # one x range for every panel: a row compares across sources, and narrow panels with their own
    # ranges put one panel's last tick label against the next one's first
    step = _nice_step(x_max / (3 if n_sources > 4 else 5))
    # ticks from one step up and short of the edge: no 0% label against the previous panel's last
    ticks = [t for t in np.arange(1, 20) * step if t < 0.93 * x_max]
    fig.update_xaxes(showgrid=True, gridcolor="#eeeeee", zeroline=False, tickformat=".0%", range=[0, x_max],
                     tickmode="array", tickvals=ticks, title_text=x_title if n_sources == 1 else None)
    if n_sources > 1:
        # below the tick labels by a fixed number of pixels: a paper fraction (was y=-0.11) put the
        # title on the ticks of short figures (245 px of plot area: 27 px down, ticks reach ~20)
        fig.add_annotation(text=x_title, x=0.5, y=0, yanchor="top", yshift=-26, xref="paper", yref="paper",
                           showarrow=False)
    fig.update_yaxes(autorange="reversed", showgrid=False, automargin=True)
    return fig


def forest_plot(recall: pd.DataFrame, threshold: str, *, title: str, adjusted_for: str = "", mechanism: str = "",
                sources=None) -> go.Figure:
    """Forest plot of recall (small multiples: one panel per source).  ``title`` states the finding."""
    data = forest_data(recall, threshold, adjusted_for=adjusted_for, mechanism=mechanism, sources=sources)
    if data.empty:
        fig = go.Figure()
        fig.update_layout(title=title, width=SLIDE[0], height=300,
                          annotations=[dict(text="nothing to show for this selection", showarrow=False)])
        return fig
    srcs = _source_order(data["source"])
    order = data.drop_duplicates("embedder").sort_values("row")["embedder"].tolist()
    x_max = float(np.nanmax(data[["ci_high", "recall", "null"]].to_numpy())) * 1.08
    fig = _panels(len(srcs), srcs, title, len(order), f"recall at {threshold.replace('_', '/')} (95% CI)", x_max)
    for j, s in enumerate(srcs, start=1):
        d = data[data["source"] == s]
        for _, r in d.iterrows():
            null = r["kind"] == "null"
            fig.add_trace(go.Scatter(
                x=[r["recall"]], y=[r["embedder"]], mode="markers", showlegend=False, legendgroup=r["embedder"],
                # open symbols are drawn in marker.color: the null is a light ring, the rest filled
                marker=dict(color=r["color"], size=9 if r["kind"] == "model" else 8,
                            symbol="circle-open" if null else "circle", line=dict(width=2 if null else 0)),
                error_x=dict(type="data", symmetric=False, array=[r["ci_high"] - r["recall"]],
                             arrayminus=[r["recall"] - r["ci_low"]], color=r["color"], thickness=1.5, width=3),
                hovertemplate=f"{r['embedder']} · {s}<br>recall %{{x:.1%}} "
                              f"[{r['ci_low']:.1%}, {r['ci_high']:.1%}]<extra></extra>",
            ), row=1, col=j)
        fig.add_vline(x=float(data["null"].iloc[0]), line=dict(color=NULL_LINE, dash="dash", width=1.5), row=1, col=j)
    colors = dict(zip(data["embedder"], data["color"]))
    models = set(data.loc[data["kind"] == "model", "embedder"])
    _legend_traces(set(data["kind"]), fig, [n for n in order if n in models], colors)
    fig.update_yaxes(categoryorder="array", categoryarray=order)
    return fig


def dumbbell_data(recall: pd.DataFrame, threshold: str, adjusted_for: str, *, sources=None) -> pd.DataFrame:
    """Raw -> adjusted recall per embedder and source: source, embedder, raw, adjusted, change, kind,
    color, row (sorted by mean adjusted recall, best first)."""
    raw = _select(recall, threshold, "", "", sources)[["source", "embedder", "recall"]]
    adj = _select(recall, threshold, adjusted_for, "", sources)[["source", "embedder", "recall"]]
    d = raw.merge(adj, on=["source", "embedder"], suffixes=("_raw", "_adj")).dropna()
    d = d.rename(columns={"recall_raw": "raw", "recall_adj": "adjusted"})
    if d.empty:
        return pd.DataFrame(columns=["source", "embedder", "raw", "adjusted", "change", "kind", "color", "row"])
    mean = d.groupby("embedder")["adjusted"].mean()
    order = sorted(mean.index, key=lambda n: (-mean[n], n))
    rec = recorded_kinds(recall)
    colors = kind_colors(order, rec)
    d["change"] = d["adjusted"] - d["raw"]
    d["kind"] = d["embedder"].map(lambda n: baseline_kind(n, rec.get(n)))
    d["color"] = d["embedder"].map(colors)
    d["row"] = d["embedder"].map({n: i for i, n in enumerate(order)})
    src_rank = {s: i for i, s in enumerate(_source_order(d["source"]))}
    return d.sort_values(["source", "row"], key=lambda c: c.map(src_rank) if c.name == "source" else c
                         ).reset_index(drop=True)


def dumbbell_plot(recall: pd.DataFrame, threshold: str, adjusted_for: str, *, title: str, sources=None) -> go.Figure:
    """Raw (open circle) -> adjusted (filled) recall per embedder, one panel per source."""
    data = dumbbell_data(recall, threshold, adjusted_for, sources=sources)
    if data.empty:
        fig = go.Figure()
        fig.update_layout(title=title, width=SLIDE[0], height=300,
                          annotations=[dict(text=f"no recall adjusted for {adjusted_for or '(none)'}", showarrow=False)])
        return fig
    srcs = _source_order(data["source"])
    order = data.drop_duplicates("embedder").sort_values("row")["embedder"].tolist()
    x_max = max(float(np.nanmax(data[["raw", "adjusted"]].to_numpy())), null_recall(threshold)) * 1.08
    fig = _panels(len(srcs), srcs, title, len(order),
                  f"recall at {threshold.replace('_', '/')}: raw → adjusted for {adjusted_for}", x_max)
    for j, s in enumerate(srcs, start=1):
        d = data[data["source"] == s]
        for _, r in d.iterrows():
            fig.add_trace(go.Scatter(
                x=[r["raw"], r["adjusted"]], y=[r["embedder"], r["embedder"]], mode="lines+markers",
                showlegend=False, line=dict(color=r["color"], width=2),
                marker=dict(color=r["color"], size=[9, 10], symbol=["circle-open", "circle"], line=dict(width=2)),
                hovertemplate=f"{r['embedder']} · {s}<br>raw {r['raw']:.1%} → adjusted {r['adjusted']:.1%}"
                              "<extra></extra>",
            ), row=1, col=j)
        fig.add_vline(x=null_recall(threshold), line=dict(color=NULL_LINE, dash="dash", width=1.5), row=1, col=j)
    fig.add_trace(go.Scatter(x=[None], y=[None], mode="markers", name="raw", showlegend=True,
                             marker=dict(color="#444", size=9, symbol="circle-open", line=dict(width=2))),
                  row=1, col=1)
    fig.add_trace(go.Scatter(x=[None], y=[None], mode="markers", name=f"adjusted for {adjusted_for}", showlegend=True,
                             marker=dict(color="#444", size=10)), row=1, col=1)
    models = set(data.loc[data["kind"] == "model", "embedder"])
    _legend_traces(set(data["kind"]), fig, [n for n in order if n in models], dict(zip(data["embedder"], data["color"])))
    fig.update_yaxes(categoryorder="array", categoryarray=order)
    return fig


def label_overlaps(fig: go.Figure, px_per_char: float = 7.0, row_px: float | None = None) -> list[str]:
    """Rough check that category labels fit: y labels closer than a line, or longer than the margin
    allows.  Returns problems as words (empty = fine); the browser screenshot is the real check."""
    problems = []
    cats = list(fig.layout.yaxis.categoryarray or [])
    h = fig.layout.height or SLIDE[1]
    top, bottom = (fig.layout.margin.t or 80), (fig.layout.margin.b or 50)
    if cats:
        per = (h - top - bottom) / len(cats)
        if per < 14:
            problems.append(f"{len(cats)} rows in {h - top - bottom}px: {per:.0f}px per label")
    return problems


def forest_title(recall: pd.DataFrame, threshold: str, *, adjusted_for: str = "", mechanism: str = "",
                 sources=None) -> str:
    """The finding a forest plot shows, in words: the best model against the best baseline."""
    d = forest_data(recall, threshold, adjusted_for=adjusted_for, mechanism=mechanism, sources=sources)
    if d.empty:
        return "No recall for this selection"
    # Mean over the public (or user-given) sources only: `planted` is the demo's truth, the union of
    # pairs the other sources already count, so averaging it in would count those pairs twice (issue 9).
    public = d[d["source"] != "planted"]
    if not public.empty:
        d = public
    mean = d.groupby("embedder")["recall"].mean()
    kinds = d.drop_duplicates("embedder").set_index("embedder")["kind"]
    models = mean[kinds[mean.index] == "model"].sort_values(ascending=False)
    # baselines as Home's scorecard counts them: handcrafted features (morphology, CellProfiler
    # profiles) are a kind of their own since issue 9, named separately when they beat the model
    bases = mean[~kinds[mean.index].isin(["model", "null", "handcrafted"])].sort_values(ascending=False)
    crafted = mean[kinds[mean.index] == "handcrafted"].sort_values(ascending=False)
    if len(models) and len(bases):
        m, b = models.index[0], bases.index[0]
        verb = "beats" if models.iloc[0] > bases.iloc[0] else "does not beat"
        t = (f"{m} {verb} the best baseline ({b}): mean recall {models.iloc[0]:.0%} vs {bases.iloc[0]:.0%} "
             f"over {d['source'].nunique()} sources")
        if len(crafted) and crafted.iloc[0] > models.iloc[0]:
            t += f"; handcrafted {crafted.index[0]} {crafted.iloc[0]:.0%}"
        return t
    top = mean.sort_values(ascending=False)
    return f"{top.index[0]} recalls most: mean {top.iloc[0]:.0%} over {d['source'].nunique()} sources"


def dumbbell_title(recall: pd.DataFrame, threshold: str, adjusted_for: str, *, sources=None) -> str:
    """The finding a dumbbell shows: which embedder loses most recall when adjusted."""
    d = dumbbell_data(recall, threshold, adjusted_for, sources=sources)
    if d.empty:
        return f"No recall adjusted for {adjusted_for}"
    ch = d.groupby("embedder")["change"].mean().sort_values()
    who = ch.index[0]
    if ch.iloc[0] < -0.02:
        return (f"{who}'s recall comes from {adjusted_for}: adjusting for it costs {-ch.iloc[0]:.0%} "
                f"mean recall")
    return f"Adjusting for {adjusted_for} changes no embedder's mean recall by more than 2 points"
