"""Recall of known relationships: models beside baselines, raw and adjusted, by planted mechanism."""
import streamlit as st

from bioviz.bench.adjust import default_adjustment
from bioviz.bench.attribution import models_first
from bioviz.dashboard import datasets as ds
from bioviz.dashboard import nulls, ui
from bioviz.plots import activity_bars, mechanism_bars, recall_bars
from bioviz.plots.forest import dumbbell_plot, dumbbell_title, forest_plot, forest_title
from bioviz.plots.nulls import null_model_marks

st.title("Recall of known relationships")
ui.intro("recall")
screen = st.session_state.get("screen")
if screen is None:
    st.stop()
rec = ui.recall(screen)
if rec is None:
    st.warning("No recall results for this dataset yet: run `bioviz benchmark --dataset ...` or use "
               "*Compute* on Home.")
    st.stop()
if rec.empty:  # a compound screen whose perturbations match no gene-relationship source
    st.info(ui.no_recall_reason(screen))
    ui.moa_section(ui.retrieval(screen), key="moa_table")
    st.stop()

ths = list(dict.fromkeys(rec["threshold"]))
adj_all = [a for a in dict.fromkeys(rec["adjusted_for"]) if a]
names = models_first(rec["embedder"])
c = st.columns([1, 2, 2])
th = c[0].selectbox("Threshold pair", ths, index=ths.index(ui.widget_default("threshold", ths)), key="rec_threshold",
                    help="a pair is recalled when its similarity is below the lower or above the upper "
                         "percentile of all pairs")
url_adj = ui.url_get("adjust")
default_adj = [a for a in (url_adj.split(",") if url_adj else []) if a in adj_all] or \
    [a for a in [default_adjustment(adj_all)] if a]
adjust = c[1].multiselect("Beside raw recall, adjusted for", adj_all, default=default_adj, key="rec_adjust",
                          help="recall after regressing these confounders out of the embedding")
chosen = c[2].multiselect("Embedders", names, default=names, key="rec_embedders",
                          help="the embedders shown in the figures and tables")
ui.url_set(threshold=th, adjust=adjust)
if not chosen:
    st.info("Pick at least one embedder.")
    st.stop()

view = st.radio("View", ["Forest plot", "Grouped bars"], horizontal=True, key="rec_view",
                help="forest plot: one row per embedder, best on top, one panel per source; grouped bars: "
                     "every embedder and adjustment side by side")
if view == "Forest plot":
    sel = rec[rec["embedder"].isin(chosen)]
    ui.plot(forest_plot(sel, th, title=forest_title(sel, th)), f"recall_forest_{th.replace('/', '-')}",
            key="recall_forest")
    st.caption("One row per embedder, sorted by mean recall. Coloured dots: models; grey dots: baselines (one shade "
               "per kind); open ring: the random null. Whiskers: 95% bootstrap CI. Dashed line: the recall a map "
               "without information reaches by chance.")
    for a in adjust:
        ui.plot(dumbbell_plot(sel, th, a, title=dumbbell_title(sel, th, a)), f"recall_adjusted_{a}",
                key=f"recall_dumbbell_{a}")
        st.caption(f"Open circle: raw recall; filled: adjusted for {a}. A long line to the left: that embedder's "
                   f"recall was {a}.")
else:
    ui.plot(recall_bars(rec, th, [""] + adjust, embedders=chosen), f"recall_{th.replace('/', '-')}",
            key="recall_bars")
    st.caption("Solid bars: models; hatched grey/brown bars: baselines. Whiskers: 95% bootstrap CI. Dashed line: "
               "the recall a map without information reaches by chance.")
shown = rec[(rec["threshold"] == th) & rec["embedder"].isin(chosen) & (rec["mechanism"] == "")
            & rec["adjusted_for"].isin([""] + adjust)]
gone = ds.nothing_left(shown)
for emb, what in gone.items():
    st.info(f"**{emb}**: nothing left after adjusting for {what} (the embedding is explained by it), "
            "so it has no adjusted recall.")
for emb, why in ds.not_applicable(shown).items():
    st.info(f"**{emb}**: {why}; recall is not computed on ties.")
probe = ds.adjusted_probe(shown)
if len(probe):
    st.caption("Beside each adjusted score, the adjusted embedding's probe R² for what was adjusted for (about 0 "
               "when the adjustment worked)" + (" and the share of its recalled pairs still planted by that mechanism"
                                                 if probe["still planted"].notna().any() else "") + ":")
    ui.table(probe, "adjusted_probe", key="adjusted_probe_table")
with st.expander("Table"):
    ui.table(shown.drop(columns=["mechanism"]), f"recall_{screen.name}", key="recall_table")

# all pairs vs regression vs confounder-matched null (bench.matched_null; docs/matched-null.md)
rec_nulls = ui.all_nulls(screen, "recall")
matched_opts = nulls.matched_models(rec_nulls)
if matched_opts:
    st.subheader("All pairs, regression adjustment and matched null, side by side")
    n1, n2, n3 = st.columns(3)
    msrcs = sorted(rec_nulls["source"].unique(), key=lambda s: (s != "planted", s))
    nsrc = n1.selectbox("Source", msrcs, key="rec_null_source",
                        help="the relationship source whose known pairs are scored")
    mnull = n2.selectbox("Matched null", matched_opts, key="rec_null_model",
                         help="the matched null: known pairs judged only against"
                              " pairs whose members share their confounder levels")
    mechs = [""] + sorted(m for m in rec_nulls["mechanism"].unique() if m)
    nmech = n3.selectbox("Pairs", mechs, format_func=lambda m: "all pairs of the source" if m == "" else
                         f"planted {m} pairs", key="rec_null_mech",
                                               help="all pairs of the source, or only the pairs planted through"
                                                    " one mechanism (simulated screens)")
    ntab = nulls.null_model_table(rec_nulls, threshold=th, source=nsrc, matched=mnull, mechanism=nmech)
    ntab = ntab[ntab["embedder"].isin(chosen)]
    ui.plot(null_model_marks(ntab, th), f"recall_nulls_{th.replace('/', '-')}", key="null_marks")
    st.caption("Hollow circle: recall against all pairs (efaar's null). Square: after regressing the confounder "
               "out of the embedding. Diamond: each known pair judged only against pairs whose members share its "
               "confounder levels (no model of the confounder's effect). Whiskers: 95% intervals; dashed line: "
               "chance. A baseline whose diamond sits on chance scored through that confounder.")
    for note in nulls.findings(rec_nulls[rec_nulls["null_model"].isin(["all", mnull])], threshold=th, source=nsrc,
                               mechanism=nmech):
        st.markdown("- " + note)
    with st.expander("Table (three nulls)"):
        ui.table(ntab, f"recall_nulls_{screen.name}", key="null_table")

mech = rec[(rec["mechanism"] != "") & (rec["threshold"] == th) & rec["embedder"].isin(chosen)]
if len(mech):
    st.subheader("Recall by planted mechanism")
    m1, m2 = st.columns(2)
    srcs = sorted(mech["source"].unique())
    src = m1.selectbox("Source", srcs, key="rec_mech_source",
                       help="the relationship source whose planted pairs are split by mechanism")
    madj = [a for a in [""] + adjust if a in set(mech["adjusted_for"])]
    madj_choice = m2.selectbox("Adjustment", madj, format_func=lambda a: "raw" if a == "" else f"adjusted for {a}",
                               key="rec_mech_adjust",
                               help="raw recall, or recall after regressing the confounder out")
    ui.plot(mechanism_bars(mech, th, src, madj_choice), "recall_by_mechanism", key="mech_bars")
    st.caption("The simulated screen plants each complex's effect through one mechanism: a baseline that "
               "recalls only the density complexes scores through cell count, not biology.")
    ui.table(mech[(mech["source"] == src) & (mech["adjusted_for"] == madj_choice)], "recall_by_mechanism",
             key="mech_table")

act = ui.activity(screen)
if act is not None and "embedder" in act.columns and len(act):
    st.subheader("Phenotypic activity and consistency (mAP)")
    summ = ds.summarize_activity(act)
    summ = summ[summ["embedder"].isin(chosen)]
    ui.plot(activity_bars(summ), "activity", key="activity_bars")
    st.caption("Share of perturbations whose replicates are retrieved against controls (activity) or against "
               "each other (consistency) at corrected p < 0.05, and the mean average precision.")
    ui.table(summ, "activity_summary", key="activity_table")
ret = ui.retrieval(screen)
if ret is not None and len(ret):
    ui.moa_section(ret, key="moa_table", chosen=chosen)
    wide = ds.retrieval_wide(ret)
    ui.plot(activity_bars(wide[wide["embedder"].isin(chosen)]), "moa_retrieval", key="moa_bars")
cmp_ = ui.comparisons(screen)
if cmp_ is not None and len(cmp_):
    with st.expander("Each embedder against each baseline (paired bootstrap)"):
        ui.table(ds.comparisons_at(cmp_, th, [""] + adjust), "comparisons", key="cmp_table")
