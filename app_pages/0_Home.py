"""Home: the screen at a glance, the scorecard of models beside baselines, and what is computed."""
import pandas as pd
import streamlit as st

from bioviz.bench.adjust import default_adjustment
from bioviz.dashboard import datasets as ds
from bioviz.dashboard import ui
from bioviz.dashboard.findings import headline, layout_confounding, matched_null_findings, truth_findings
from bioviz.plots import plate_map

st.title("What has the model learned?")
ui.intro("home")
screen = st.session_state.get("screen")
if screen is None:
    st.stop()
s = screen.summary()
st.caption(f"Dataset **{s['name']}** · `{s['path']}`")

# -- the screen itself --------------------------------------------------------------------------
c = st.columns(5)
c[0].metric("Plates", s["plates"])
c[1].metric("Wells", f"{s['wells']:,}")
c[2].metric("Perturbations", sum(v for k, v in s["perturbations_by_type"].items() if k != "control"))
c[3].metric("Control wells", f"{s['control_sites']:,}", help=f"perturbation = {s['control_label']}")
c[4].metric("Channels", len(s["channels"]))
st.markdown("Channels: " + (ui.channel_legend(screen) if screen.has_images else "none (profiles only: features "
                                                                                 "per well, no images)"),
            unsafe_allow_html=True)

status = ds.dataset_status(screen)
tab_score, tab_screen, tab_status = st.tabs(["Scorecard", "Plates and example wells", "Computed / missing"])

with tab_screen:
    left, right = st.columns([3, 2])
    with left:
        st.subheader("Plate layout")
        ui.plot(plate_map(screen.obs), "plate_layout", key="plate_map")
    with right:
        st.subheader("Example wells")
        if screen.has_images:
            st.markdown("False colours: " + ui.channel_legend(screen), unsafe_allow_html=True)
        obs = screen.obs
        picks = obs[obs["is_control"]].head(2)
        perts = obs[~obs["is_control"]].drop_duplicates("perturbation").head(6)
        ui.gallery(screen, pd.concat([picks, perts]), ncols=4)

with tab_status:
    st.subheader("What is computed and what is missing")
    show = status  # status: computed, stale: recompute (stale or foreign cache) or missing
    ui.table(show[["item", "kind", "status", "written", "file"]], "status", key="status_table")
    missing = ds.missing_embedders(status)
    results_missing = not status[status["kind"] == "benchmark result"]["computed"].all()
    if not missing and not results_missing:
        st.success("Everything is computed.")
    else:
        label = (f"Compute {len(missing)} missing embedding(s) and the benchmarks" if missing
                 else "Compute the benchmarks")
        if st.button(label, type="primary", key="compute"):
            ui.compute(screen, missing)


def scorecard():
    rec = ui.recall(screen)
    if rec is None:
        st.info("No benchmark results yet: open *Computed / missing* and press Compute, or run "
                "`bioviz benchmark --dataset ...`.")
        return
    ret = ui.retrieval(screen)
    if rec.empty:  # e.g. a compound screen: no gene-relationship source matched its perturbations
        st.subheader("Scorecard: each model beside the baselines")
        st.caption(ui.no_recall_reason(screen))
        ui.moa_section(ret, key="moa_scorecard")
        for n in layout_confounding(rec, ret):
            st.warning(n)
        return
    ths = list(dict.fromkeys(rec["threshold"]))
    adj = [a for a in dict.fromkeys(rec["adjusted_for"]) if a]
    c1, c2 = st.columns(2)
    th = c1.selectbox("Threshold pair (percentiles)", ths, index=ths.index(ui.widget_default("threshold", ths)),
                      key="home_threshold",
                      help="a known pair counts as recalled when its similarity is below the lower or above the"
                           " upper percentile of random pairs")
    adjusted = None
    if adj:
        default = default_adjustment(adj)
        adjusted = c2.selectbox("Drop when adjusted for", adj,
                                index=adj.index(ui.widget_default("adjust", adj, default)), key="home_adjust",
                                help="the confounder regressed out of the embeddings for the 'drop' column "
                                     "(raw minus adjusted recall)")
    ui.url_set(threshold=th, adjust=adjusted or "")
    card = ds.scorecard(rec, ui.probes(screen), threshold=th, adjusted=adjusted)
    st.subheader("Scorecard: each model beside the baselines")
    st.caption(f"Recall of known relationships at the {th} percentile thresholds (random null "
               f"{ds.null_recall(th):.2f}); mean recall and the drop (raw minus adjusted recall) average the five "
               "public sources (planted, the simulator's truth, is shown on its own); "
               "cell-count R² is how well a linear probe reads the cell count from the embedding.")
    num = card.select_dtypes("number").columns
    # Recall columns as bars on a fixed 0..1 scale, so models and baselines compare by eye.
    config = {c: (st.column_config.ProgressColumn(c, format="%.3f", min_value=0.0, max_value=1.0)
                  if c.startswith("recall") or c == "mean recall"
                  else st.column_config.NumberColumn(c, format="%.3f")) for c in num}
    st.dataframe(card, hide_index=True, column_config=ui.with_help(card, config), key="scorecard")
    ui.download_csv(card, "scorecard")
    notes = headline(card)
    if screen.truth is not None:
        notes += truth_findings(ui.pairs(screen), threshold=th, recall=rec, model_only=ui.model_only(screen))
    notes += matched_null_findings(ui.all_nulls(screen, "recall"), threshold=th)
    for n in notes:
        st.markdown("- " + n)
    ui.moa_section(ret, key="moa_scorecard")
    for n in layout_confounding(rec, ret):
        st.warning(n)



with tab_score:
    scorecard()
