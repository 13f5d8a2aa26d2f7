"""Plots (scanpy-style ``pl``): plotly figures of a screen's benchmark results.

    fig = bv.pl.recall(screen)            # recall per source, raw and adjusted, baselines hatched
    fig.show()                            # or fig.write_html("recall.html")

Each takes the Screen first and keyword-only options, reads ``results/`` through
``bioviz.bench.results`` (run ``bv.tl.benchmark`` first) and returns a plotly Figure: the same
figure builders (``bioviz.plots``) the dashboard and the report use.
"""
from __future__ import annotations

__all__ = ["recall", "mechanisms", "cka", "plate"]


def _results(screen, table: str):
    from .bench.results import read_results, read_summary
    from .errors import BenchmarkError

    df = read_results(screen, tables=[table])[table]
    if df is None:
        raise BenchmarkError(f"{screen.name} has no benchmark results ({table}); run bv.tl.benchmark(screen) "
                             f"or: bioviz benchmark --dataset {screen.root}")
    return df, read_summary(screen)


def _threshold(threshold, summary) -> str:
    if threshold is None:
        return (summary.get("thresholds") or ["0.05_0.95"])[0]
    return str(threshold).replace("/", "_")


def recall(screen, *, threshold: str | None = None, adjusted: bool = True, embedders=None, height: int = 420):
    """Recall per relationship source and embedder with 95% CIs and the random-null line; one
    panel raw and (``adjusted``) one with the run's adjustment. ``threshold``: e.g. ``0.05_0.95``
    (default: the run's first)."""
    from .plots import recall_bars

    rec, summary = _results(screen, "recall")
    adjustments = [""] + ([a for a in rec["adjusted_for"].unique() if a] if adjusted else [])
    return recall_bars(rec, _threshold(threshold, summary), adjustments, embedders=embedders, height=height)


def mechanisms(screen, *, threshold: str | None = None, source: str | None = None, adjusted: str = "",
               height: int = 380):
    """Recall per planted mechanism (simulated screens): which embedder recovers which biology."""
    from .plots import mechanism_bars

    rec, summary = _results(screen, "recall")
    return mechanism_bars(rec, _threshold(threshold, summary), source=source, adjusted=adjusted, height=height)


def cka(screen, *, embedders=None):
    """Linear CKA between every pair of embeddings (1 = same geometry), models first."""
    from .bench.attribution import models_first
    from .plots import heatmap

    df, _ = _results(screen, "cka")
    m = df.pivot_table(index="embedder_a", columns="embedder_b", values="cka")
    names = models_first(embedders if embedders is not None else m.index)
    return heatmap(m.reindex(index=names, columns=names), title="linear CKA", zmin=0, zmax=1)


def plate(screen, *, color: str = "perturbation_type"):
    """The plates' wells coloured by a categorical metadata column (perturbation_type, batch, ...)."""
    from .errors import BiovizError
    from .plots import plate_map

    if color not in screen.obs.columns:
        raise BiovizError(f"no metadata column {color!r}; columns are {', '.join(map(str, screen.obs.columns))}")
    return plate_map(screen.obs, color=color)
