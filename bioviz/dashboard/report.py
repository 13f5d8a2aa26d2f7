"""One self-contained HTML page with the dashboard's figures and tables, for a review meeting.

plotly.js is inlined once, images are base64 PNGs and each table carries a CSV data-URI link, so the
file opens offline and can be mailed as is.
"""
from __future__ import annotations

import base64
import html
import io
from pathlib import Path

import numpy as np
import pandas as pd

from .. import plots
from ..bench.adjust import default_adjustment
from ..bench.attribution import models_first
from ..bench.probes import R2
from ..errors import BiovizError, DatasetError
from . import datasets as ds


class _Doc:
    def __init__(self):
        self.parts: list[str] = []
        self.js_done = False

    def h(self, level: int, text: str):
        self.parts.append(f"<h{level}>{html.escape(text)}</h{level}>")

    def p(self, text: str, cls: str = ""):
        self.parts.append(f"<p class='{cls}'>{html.escape(text)}</p>")

    def fig(self, fig, name: str):
        fig.update_layout(template="plotly_white")
        self.parts.append(fig.to_html(full_html=False, include_plotlyjs=not self.js_done, div_id=f"fig-{name}",
                                      config=plots.figure_config("png", name)))
        self.js_done = True

    def table(self, df: pd.DataFrame, name: str, floatfmt: str = "{:.3f}"):
        csv = base64.b64encode(df.to_csv(index=False).encode()).decode()
        body = df.to_html(index=False, border=0, classes="tbl", float_format=lambda v: floatfmt.format(v),
                          na_rep="")
        self.parts.append(f"<div class='tblwrap'>{body}</div><a class='dl' download='{html.escape(name)}.csv' "
                          f"href='data:text/csv;base64,{csv}'>Download {html.escape(name)}.csv</a>")

    def img(self, rgb: np.ndarray, caption: str):
        from PIL import Image

        buf = io.BytesIO()
        Image.fromarray(rgb).save(buf, format="PNG")
        b64 = base64.b64encode(buf.getvalue()).decode()
        self.parts.append(f"<figure><img src='data:image/png;base64,{b64}'/><figcaption>{html.escape(caption)}"
                          f"</figcaption></figure>")


CSS = """
body{font-family:-apple-system,Segoe UI,Helvetica,Arial,sans-serif;max-width:1200px;margin:2em auto;color:#222}
h1{margin-bottom:0}.muted{color:#666}.warn{background:#fff4e5;border-left:4px solid #e8890c;padding:6px 10px}.tblwrap{overflow-x:auto}
table.tbl{border-collapse:collapse;font-size:13px;margin:.5em 0}
table.tbl th,table.tbl td{border-bottom:1px solid #ddd;padding:3px 8px;text-align:right}
table.tbl th{background:#f4f4f4}a.dl{font-size:12px}figure{display:inline-block;margin:4px}
figure img{image-rendering:pixelated;width:200px}figcaption{font-size:11px;color:#555}
"""


def _matched_nulls(doc, screen, th) -> None:
    """The Recall page's three nulls side by side, Home's sentences on them, and the
    Relationships drill-down's matched vs all-pairs percentile of each known pair."""
    from ..bench import results
    from ..plots.nulls import null_model_marks
    from . import nulls
    from .findings import matched_null_findings

    res = results.read_results(screen, tables=["recall", "pairs"], null_model=None)
    rec = ds.normalize_recall(res["recall"])
    models = nulls.matched_models(rec)
    if not models:
        return
    doc.h(2, "All pairs, regression adjustment and matched null")
    doc.p("Each known pair judged three ways: against all pairs (efaar's null), after regressing the confounder "
          "out, and only against pairs whose members share its confounder levels (docs/matched-null.md).")
    for note in matched_null_findings(rec, threshold=th):
        doc.p(note.replace("**", ""))
    src = "planted" if "planted" in set(rec["source"]) else sorted(rec["source"].unique())[0]
    for m in models:
        t = nulls.null_model_table(rec, threshold=th, source=src, matched=m)
        doc.h(3, f"{m} ({src})")
        doc.fig(null_model_marks(t, th), f"recall_nulls_{m.replace(':', '_').replace('+', '_')}")
        doc.table(t, f"recall_nulls_{m.replace(':', '_').replace('+', '_')}")
    if res["pairs"] is not None:
        p = ds.normalize_pairs(res["pairs"])
        p = p[p["source"] == src]
        wide = p.pivot_table(index=["entity1", "entity2", "embedder"], columns="null_model", values="percentile",
                             aggfunc="first")
        if len(models) and models[0] in wide.columns and "all" in wide.columns:
            wide = wide.rename(columns={"all": "all-pairs percentile"}).reset_index()
            wide.columns.name = None
            cell = p[p["null_model"] == models[0]][["entity1", "entity2", "embedder", "null_cell"]]
            wide = wide.merge(cell, on=["entity1", "entity2", "embedder"], how="left")
            wide["shift"] = (wide[models[0]] - wide["all-pairs percentile"]).abs()
            doc.h(3, f"Known pairs whose percentile moves most under {models[0]} ({src})")
            doc.table(wide.sort_values("shift", ascending=False).head(200).drop(columns="shift"),
                      f"pair_percentiles_{models[0].replace(':', '_').replace('+', '_')}")


def build_report(root, *, umap: bool = True) -> str:
    """The HTML text of the report for the dataset folder ``root`` (results must exist)."""
    from ..screen import read_screen

    from ..bench import results

    screen = read_screen(root, check_images=False)
    res = results.read_results(screen)
    if res["recall"] is None:
        raise DatasetError(f"{results.result_path(screen, 'recall')} does not exist: run "
                           f"`bioviz benchmark --dataset {root}` first")
    doc = _Doc()
    s = screen.summary()
    doc.h(1, f"bioviz report: {s['name']}")
    doc.p(f"{s['sites']:,} wells on {s['plates']} plates; "
          + ", ".join(f"{v} {k}" for k, v in s["perturbations_by_type"].items())
          + (f"; channels {', '.join(s['channels'])}" if s["channels"] else "; no images (profiles only)")
          + f"; dataset folder {s['path']}", "muted")
    _story(doc, screen, res)

    rec = ds.normalize_recall(res["recall"])
    probes = res["probes"]
    from .findings import layout_confounding

    doc.h(2, "Scorecard")
    if rec.empty:
        doc.p("No known-relationship recall: no relationship source matched a pair of this screen's perturbations "
              "(gene tables on a compound screen); `bioviz benchmark --relationships moa` scores pairs sharing an MOA.")
    else:
        th = list(dict.fromkeys(rec["threshold"]))[0]
        card = ds.scorecard(rec, probes, threshold=th)
        doc.p(f"Recall at the {th} thresholds (random null {ds.null_recall(th):.2f}); drop = raw minus "
              f"adjusted recall ({card.attrs.get('adjusted') or 'no adjustment computed'}).")
        doc.table(card, "scorecard")
    for note in layout_confounding(res["recall"], res.get("retrieval")):
        doc.parts.append(f"<p class='warn'>{_md(note)}</p>")
    if res.get("retrieval") is not None and len(res["retrieval"]):
        doc.h(2, "MOA / target retrieval")
        doc.p("On the normalised wells (the maps' recipe): nn_accuracy = share of wells whose nearest well of a "
              "different compound shares the MOA (or a target), chance beside it; mAP = retrieving other compounds "
              "of the same MOA (copairs). Treatment level: wells of one compound at one concentration averaged. "
              "95% bootstrap CIs.")
        doc.table(ds.retrieval_cis(res["retrieval"]), "moa_retrieval")

    if not rec.empty:
        _recall_sections(doc, screen, rec)
    _rest(doc, screen, res, probes, umap)
    body = "\n".join(doc.parts)
    return (f"<!doctype html><html><head><meta charset='utf-8'><title>bioviz report: {html.escape(s['name'])}</title>"
            f"<style>{CSS}</style></head><body>{body}</body></html>")


def _story(doc, screen, res) -> None:
    """The meeting's story first (issue 12): the findings in words, the forest plot, the raw ->
    adjusted dumbbell, the confounder heatmap and two model-only pairs with their images; the
    detailed sections follow under "Details"."""
    from ..plots.forest import dumbbell_plot, dumbbell_title, forest_plot, forest_title
    from .findings import headline, truth_findings
    from .guide import model_only_examples
    from .pairs import example_wells

    rec = ds.normalize_recall(res["recall"])
    rec = rec[rec["null_model"] == "all"] if "null_model" in rec.columns else rec
    if rec.empty:
        return
    th = list(dict.fromkeys(rec["threshold"]))[0]
    card = ds.scorecard(rec, res["probes"], threshold=th)
    pairs = ds.normalize_pairs(res["pairs"]) if res["pairs"] is not None else None
    doc.h(2, "Findings")
    notes = headline(card) + (truth_findings(pairs, threshold=th) if pairs is not None and screen.truth is not None
                              else [])
    doc.parts.append("<ul class='findings'>" + "".join(f"<li>{_md(n).replace('*', '')}</li>" for n in notes) + "</ul>")
    doc.fig(forest_plot(rec, th, title=forest_title(rec, th)), "story_forest")
    adj = default_adjustment([a for a in dict.fromkeys(rec["adjusted_for"]) if a])
    if adj:
        doc.fig(dumbbell_plot(rec, th, adj, title=dumbbell_title(rec, th, adj)), "story_dumbbell")
    probes = res["probes"]
    if probes is not None and (probes["metric"] == R2).any():
        m = ds.probe_r2(probes)
        cc = m["cell_count"].dropna() if "cell_count" in m.columns else None
        title = (f"What a linear probe reads from each embedding: cell count R² from {cc.min():.2f} to {cc.max():.2f}"
                 if cc is not None and len(cc) else "What a linear probe reads from each embedding (R²)")
        doc.fig(plots.heatmap(m, title, 0, 1, "Reds"), "story_confounders")
    model = next((e for e in card["embedder"] if ds.embedder_kind(e) == "model"), None)
    if pairs is None or model is None:
        doc.h(2, "Details")
        return
    src = "CORUM" if "CORUM" in set(pairs["source"]) else sorted(pairs["source"].unique())[0]
    ex = model_only_examples(pairs[pairs["source"] == src], th, model).head(2)
    if ex.empty:
        doc.p(f"{model} recalls no {src} pair that no baseline recalls at {th}.")
        doc.h(2, "Details")
        return
    doc.h(2, f"Two pairs only the model finds ({model}, {src})")
    for _, r in ex.iterrows():
        a, b = r["entity1"], r["entity2"]
        mech = f"; planted mechanism {r['mechanism']}" if str(r.get("mechanism", "") or "") else ""
        doc.h(3, f"{a} – {b}: percentile {r['percentile']:.1f} in {model}'s map, recalled by no baseline{mech}")
        if not screen.has_images:
            doc.p("No images: a profiles-only dataset.", "muted")
            continue
        from .composite import composite

        for label, wells in example_wells(screen.obs, a, b, screen.control_label, n=2).items():
            for _, w in wells.iterrows():
                try:
                    doc.img(composite(screen.load_site(w["well_id"]), screen.colors, screen.channels),
                            f"{label} · {w['well_id']}")
                except Exception as exc:  # one unreadable image must not sink the report
                    doc.p(f"{w['well_id']}: {exc}", "muted")
    doc.h(2, "Details")


def _md(text: str) -> str:
    """The findings' **bold** as HTML (the rest escaped)."""
    import re

    return re.sub(r"\*\*(.+?)\*\*", r"<b>\1</b>", html.escape(text))


def _recall_sections(doc, screen, rec) -> None:
    th = list(dict.fromkeys(rec["threshold"]))[0]
    doc.h(2, "Recall of known relationships")
    adj = [a for a in dict.fromkeys(rec["adjusted_for"]) if a]
    density = [a for a in [default_adjustment(adj)] if a]
    doc.fig(plots.recall_bars(rec, th, [""] + density), "recall")
    mech = rec[rec["mechanism"] != ""]
    if len(mech):
        doc.h(3, "By planted mechanism")
        src = sorted(mech["source"].unique())[0]
        doc.fig(plots.mechanism_bars(mech, th, src), "recall_by_mechanism")
    doc.table(rec[(rec["threshold"] == th)].drop(columns=["kind"]), "recall")
    _matched_nulls(doc, screen, th)


def _rest(doc, screen, res, probes, umap) -> None:
    if probes is not None:
        doc.h(2, "Confounders")
        r2 = probes[probes["metric"] == R2]
        if len(r2):
            m = r2.pivot_table(index="embedder", columns="confounder", values="value")
            m.columns.name = None
            doc.fig(plots.heatmap(m, "Linear probe R² (embedder x confounder)", 0, 1, "Reds"), "probe_r2")
        leak = ds.plate_leakage(probes, screen.obs["plate"].nunique())
        if len(leak):
            doc.fig(plots.leakage_bars(leak), "plate_leakage")
        doc.table(probes, "probes")
    if res["cka"] is not None:
        m = ds.normalize_cka(res["cka"])
        doc.fig(plots.heatmap(m, "CKA between embedders", 0, 1, "Blues"), "cka")

    if res["pairs"] is not None:
        from .pairs import model_only_pairs

        pairs = ds.normalize_pairs(res["pairs"])
        rcols = ds.recalled_columns(pairs)
        if rcols:
            doc.h(2, "Pairs a model recalls and no baseline does")
            for src in sorted(pairs["source"].unique()):
                t = model_only_pairs(pairs, src, rcols[0])
                if len(t):
                    doc.h(3, src)
                    doc.table(t.head(200), f"model_only_pairs_{src}")

    if umap:
        from ..embed import computed_embedders, load_confounders
        from .umap_cache import umap_layout

        embs = models_first(computed_embedders(screen))
        if embs:
            doc.h(2, "Embeddings (UMAP of wells)")
            frame = screen.obs[[c for c in screen.obs.columns if not c.startswith("image_")]]
            try:
                conf = load_confounders(screen, missing_ok=True)
            except BiovizError:  # stale: the report colours by plate instead of stale numbers
                conf = None
            if conf is not None:
                frame = frame.merge(conf[[c for c in conf.columns if c not in frame.columns or c == "well_id"]],
                                    on="well_id", how="left")
            color = "cell_count" if "cell_count" in frame.columns else "plate"
            for emb in embs[:1] + [e for e in embs if ds.embedder_kind(e) == "baseline"][:1]:
                lay = umap_layout(screen, emb, level="well")
                f = frame.set_index("well_id").loc[lay["id"]].reset_index().assign(x=lay["x"].to_numpy(),
                                                                                   y=lay["y"].to_numpy())
                fig, _ = plots.embedding_scatter(f, color, hover_cols=["well_id", "perturbation", color],
                                                 title=f"{emb} coloured by {color}", height=450)
                doc.fig(fig, f"umap_{emb}")

    if screen.channels:
        from .composite import composite

        doc.h(2, "Example wells")
        obs = screen.obs
        picks = pd.concat([obs[obs["is_control"]].head(2), obs[~obs["is_control"]].drop_duplicates("perturbation").head(6)])
        for _, w in picks.iterrows():
            try:
                doc.img(composite(screen.load_site(w["well_id"]), screen.colors, screen.channels),
                        f"{w['well_id']} · {w['perturbation']}")
            except Exception as exc:  # one unreadable image must not sink the report
                doc.p(f"{w['well_id']}: {exc}", "muted")


def write_report(root, out, **kwargs) -> Path:
    from .. import atomic

    text = build_report(root, **kwargs)
    atomic.write_text(out, text)
    return Path(out)
