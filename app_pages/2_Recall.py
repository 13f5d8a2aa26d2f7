"""Recall of known relationships: models beside baselines, raw and adjusted, by planted mechanism."""
import streamlit as st

from bioviz.bench.adjust import default_adjustment
from bioviz.bench.attribution import models_first
from bioviz.dashboard import datasets as ds
from bioviz.dashboard import ui
from bioviz.plots import activity_bars, mechanism_bars, recall_bars

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
chosen = c[2].multiselect("Embedders", names, default=names, key="rec_embedders")
ui.url_set(threshold=th, adjust=adjust)
if not chosen:
    st.info("Pick at least one embedder.")
    st.stop()

ui.plot(recall_bars(rec, th, [""] + adjust, embedders=chosen), f"recall_{th.replace('/', '-')}", key="recall_bars")
st.caption("Solid bars: models; hatched grey/brown bars: baselines. Whiskers: 95% bootstrap CI. Dashed line: "
           "the recall a map without information reaches by chance.")
shown = rec[(rec["threshold"] == th) & rec["embedder"].isin(chosen) & (rec["mechanism"] == "")
            & rec["adjusted_for"].isin([""] + adjust)]
gone = ds.nothing_left(shown)
for emb, what in gone.items():
    st.info(f"**{emb}**: nothing left after adjusting for {what} (the embedding is explained by it), "
            "so it has no adjusted recall.")
probe = ds.adjusted_probe(shown)
if len(probe):
    st.caption("Beside each adjusted score, the adjusted embedding's probe R² for what was adjusted for (about 0 "
               "when the adjustment worked)" + (" and the share of its recalled pairs still planted by that mechanism"
                                                 if probe["still planted"].notna().any() else "") + ":")
    ui.table(probe, "adjusted_probe", key="adjusted_probe_table")
with st.expander("Table"):
    ui.table(shown.drop(columns=["mechanism"]), f"recall_{screen.name}", key="recall_table")

mech = rec[(rec["mechanism"] != "") & (rec["threshold"] == th) & rec["embedder"].isin(chosen)]
if len(mech):
    st.subheader("Recall by planted mechanism")
    m1, m2 = st.columns(2)
    srcs = sorted(mech["source"].unique())
    src = m1.selectbox("Source", srcs, key="rec_mech_source")
    madj = [a for a in [""] + adjust if a in set(mech["adjusted_for"])]
    madj_choice = m2.selectbox("Adjustment", madj, format_func=lambda a: "raw" if a == "" else f"adjusted for {a}",
                               key="rec_mech_adjust")
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
    st.subheader("MOA / target retrieval")
    wide = ds.retrieval_wide(ret)
    ui.plot(activity_bars(wide[wide["embedder"].isin(chosen)]), "moa_retrieval", key="moa_bars")
    ui.table(wide, "moa_retrieval", key="moa_table")
cmp_ = ui.comparisons(screen)
if cmp_ is not None and len(cmp_):
    with st.expander("Each embedder against each baseline (paired bootstrap)"):
        ui.table(ds.comparisons_at(cmp_, th, [""] + adjust), "comparisons", key="cmp_table")
