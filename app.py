"""bioviz dashboard: `bioviz app` or `make run`. This file is the router and the Home page.

The pages live in app_pages/, not pages/: a pages/ folder would switch Streamlit to its older
file-based navigation for direct links (/Embeddings?...), which runs a page without this router.

The sidebar (dataset, figure format) is drawn here once for every page; pages in pages/ only
compose widgets and figures from bioviz.dashboard and bioviz.plots.
"""
from __future__ import annotations

import streamlit as st

from bioviz.dashboard import datasets as ds
from bioviz.dashboard import ui
from bioviz.errors import BiovizError

st.set_page_config(page_title="bioviz", page_icon=":material/biotech:", layout="wide")


def home():
    screen = st.session_state.get("screen")
    st.title("What has the model learned?")
    if screen is None:
        return
    s = screen.summary()
    st.caption(f"Dataset **{s['name']}** · `{s['path']}`")

    # -- the screen itself ------------------------------------------------------------------
    c = st.columns(5)
    c[0].metric("Plates", s["plates"])
    c[1].metric("Wells", f"{s['wells']:,}")
    c[2].metric("Perturbations", sum(v for k, v in s["perturbations_by_type"].items() if k != "control"))
    c[3].metric("Control wells", f"{s['control_sites']:,}", help=f"perturbation = {s['control_label']}")
    c[4].metric("Channels", len(s["channels"]))
    st.markdown("Channels: " + ui.channel_legend(screen), unsafe_allow_html=True)

    status = ds.dataset_status(screen.root)
    tab_score, tab_screen, tab_status = st.tabs(["Scorecard", "Plates and example wells", "Computed / missing"])
    with tab_screen:
        from bioviz.plots import plate_map

        left, right = st.columns([3, 2])
        with left:
            st.subheader("Plate layout")
            ui.plot(plate_map(screen.obs), "plate_layout", key="plate_map")
        with right:
            st.subheader("Example wells (Cell Painting false colours)")
            obs = screen.obs
            picks = obs[obs["is_control"]].head(2)
            genes = obs[~obs["is_control"]].drop_duplicates("perturbation").head(6)
            import pandas as pd

            ui.gallery(screen, pd.concat([picks, genes]), ncols=4)
    with tab_status:
        _status(screen, status)
    with tab_score:
        _scorecard(screen, status)


def _status(screen, status):
    st.subheader("What is computed and what is missing")
    show = status.assign(status=status["computed"].map({True: "✅ computed", False: "— missing"}))
    ui.table(show[["item", "kind", "status", "written", "file"]], "status", key="status_table")
    missing = ds.missing_embedders(status)
    results_missing = not status[status["kind"] == "benchmark result"]["computed"].all()
    if not missing and not results_missing:
        st.success("Everything is computed.")
        return
    label = (f"Compute {len(missing)} missing embedding(s) and the benchmarks" if missing
             else "Compute the benchmarks")
    if st.button(label, type="primary", key="compute"):
        _compute(screen, missing)


def _compute(screen, missing):
    bar = st.progress(0.0, text="starting")

    def progress(done, total, message):  # bioviz.embed's callback; embedding fills 0-70% of the bar
        bar.progress(0.7 * done / max(total, 1), text=message or "embedding")

    try:
        if missing:
            from bioviz.embed import embed

            # embed() reuses every up-to-date cache, so asking for all of them recomputes only what
            # is missing or stale.
            embed(screen, ds.registered_embedders(), progress=progress)
        bar.progress(0.75, text="benchmarking")
        from bioviz.bench import run_benchmark

        # None: every embedding with an up-to-date cache, as `bioviz benchmark` does
        run_benchmark(screen, None, adjust=["density"], progress=lambda msg: bar.progress(0.85, text=msg))
        bar.progress(1.0, text="done")
        st.cache_resource.clear()
        st.success("Computed. The scorecard below is up to date.")
    except BiovizError as exc:
        st.error(f"Could not compute: {exc}")


def _scorecard(screen, status):
    rec = ui.recall(screen)
    if rec is None:
        st.info("No benchmark results yet: open *Computed / missing* and press Compute, or run "
                "`bioviz benchmark --dataset ...`.")
        return
    probes = ui.probes(screen)
    ths = list(dict.fromkeys(rec["threshold"]))
    adj = [a for a in dict.fromkeys(rec["adjusted_for"]) if a]
    c1, c2 = st.columns(2)
    th = c1.selectbox("Threshold pair (percentiles)", ths, index=ths.index(ui.widget_default("threshold", ths)),
                      key="home_threshold")
    adjusted = None
    if adj:
        default = next((a for a in adj if "cell_count" in a or "density" in a), adj[0])
        adjusted = c2.selectbox("Drop when adjusted for", adj, index=adj.index(ui.widget_default("adjust", adj, default)),
                                key="home_adjust")
    ui.url_set(threshold=th, adjust=adjusted or "")
    card = ds.scorecard(rec, probes, threshold=th, adjusted=adjusted)
    st.subheader("Scorecard: each model beside the baselines")
    st.caption(f"Recall of known relationships at the {th} percentile thresholds (random null "
               f"{ds.null_recall(th):.2f}); the drop is raw minus adjusted recall, averaged over sources; "
               "cell-count R² is how well a linear probe reads the cell count from the embedding.")
    num = card.select_dtypes("number").columns
    # Recall columns as bars on a fixed 0..1 scale, so models and baselines compare by eye.
    config = {c: (st.column_config.ProgressColumn(c, format="%.3f", min_value=0.0, max_value=1.0)
                  if c.startswith("recall") or c == "mean recall"
                  else st.column_config.NumberColumn(c, format="%.3f")) for c in num}
    st.dataframe(card, hide_index=True, column_config=config, key="scorecard")
    ui.download_csv(card, "scorecard")
    _headline(card, screen, th)


def _headline(card, screen=None, threshold="0.05_0.95"):
    """One sentence per kind of finding, so a reviewer sees the story without reading numbers."""
    drop_col = next((c for c in card.columns if c.startswith("drop")), None)
    base = card[card["kind"] == "baseline"]
    models = card[card["kind"] == "model"]
    notes = []
    if drop_col and len(base):
        worst = base.sort_values(drop_col, ascending=False).iloc[0]
        if worst[drop_col] > 0.05:
            notes.append(f"Baseline **{worst['embedder']}** loses {worst[drop_col]:.2f} recall when adjusted "
                         f"({drop_col[5:]}): its score comes from that confounder.")
    if len(models) and len(base):
        best = models.iloc[0]
        top_base = base.sort_values("mean recall", ascending=False).iloc[0]
        notes.append(f"Best model **{best['embedder']}**: mean recall {best['mean recall']:.2f} vs "
                     f"{top_base['mean recall']:.2f} for the best baseline ({top_base['embedder']}).")
    if screen is not None and screen.truth is not None:
        from bioviz.dashboard.findings import truth_findings

        notes += truth_findings(ui.pairs(screen), threshold=threshold)
    for n in notes:
        st.markdown("- " + n)


pages = [
    st.Page(home, title="Home", icon=":material/home:", default=True),
    st.Page("app_pages/1_Embeddings.py", title="Embeddings", url_path="embeddings", icon=":material/scatter_plot:"),
    st.Page("app_pages/2_Recall.py", title="Recall", url_path="recall", icon=":material/bar_chart:"),
    st.Page("app_pages/3_Confounders.py", title="Confounders", url_path="confounders", icon=":material/balance:"),
    st.Page("app_pages/4_Relationships.py", title="Relationships", url_path="relationships", icon=":material/link:"),
]
nav = st.navigation(pages)
st.sidebar.title("bioviz")
try:
    st.session_state["screen"] = ui.sidebar_dataset()
except BiovizError as exc:  # anything the user can fix gets one line, never a traceback
    st.session_state["screen"] = None
    st.error(str(exc))
ui.figure_format()
nav.run()
