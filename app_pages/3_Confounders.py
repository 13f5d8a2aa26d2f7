"""Confounders: what each embedding knows about cell density, stains and plate, and how alike they are."""
import streamlit as st

from bioviz.bench.attribution import models_first
from bioviz.dashboard import datasets as ds
from bioviz.dashboard import ui
from bioviz.plots import heatmap, leakage_bars

st.title("Confounders")
ui.intro("confounders")
screen = st.session_state.get("screen")
if screen is None:
    st.stop()
probes = ui.probes(screen)
cka = ui.cka(screen)
if probes is None and cka is None:
    st.warning("No probe or CKA results for this dataset yet: run `bioviz benchmark --dataset ...`.")
    st.stop()


if probes is not None:
    st.subheader("How well a linear probe reads each confounder from each embedding (R²)")
    m = ds.probe_r2(probes)
    if len(m):
        ui.plot(heatmap(m, zmin=0, zmax=1, colorscale="Reds", colorbar_title="R²"), "probe_r2", key="probe_heatmap")
        st.caption("High R² means the embedding encodes the confounder; a model with high cell-count R² can "
                   "score recall on density-driven pairs without learning morphology.")
        ui.table(m.reset_index().rename(columns={"index": "embedder"}), "probe_r2", key="probe_table")
    st.subheader("Plate leakage")
    leak = ds.plate_leakage(probes, screen.obs["plate"].nunique())
    if len(leak):
        ui.plot(leakage_bars(leak), "plate_leakage", key="leak_bars")
        st.caption("Accuracy of predicting the plate from the embedding, against always guessing the largest plate.")
        ui.table(leak, "plate_leakage", key="leak_table")
    else:
        st.info("No plate-prediction probe in probes.csv.")

if cka is not None:
    st.subheader("CKA similarity between models and baselines")
    names = models_first(cka.index)
    m = cka.reindex(index=names, columns=names)
    ui.plot(heatmap(m, zmin=0, zmax=1, colorscale="Blues", colorbar_title="CKA"), "cka", key="cka_heatmap")
    st.caption("Linear CKA of well embeddings: a model close to a baseline has learned little more than it.")
    ui.table(m.reset_index().rename(columns={"index": "embedder"}), "cka", key="cka_table")
