"""Confounders: what each embedding knows about cell density, stains and plate, and how alike they are."""
import streamlit as st

from bioviz.bench.attribution import models_first
from bioviz.bench.probes import ACCURACY, CHANCE, R2
from bioviz.dashboard import ui
from bioviz.plots import heatmap, leakage_bars

st.title("Confounders")
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
    r2 = probes[probes["metric"] == R2]
    if len(r2):
        m = r2.pivot_table(index="embedder", columns="confounder", values="value")
        m = m.reindex(models_first(m.index))
        first = [c for c in ("cell_count",) if c in m.columns]
        m = m[first + [c for c in m.columns if c not in first]]
        m.columns.name = None
        ui.plot(heatmap(m, zmin=0, zmax=1, colorscale="Reds", colorbar_title="R²"), "probe_r2", key="probe_heatmap")
        st.caption("High R² means the embedding encodes the confounder; a model with high cell-count R² can "
                   "score recall on density-driven pairs without learning morphology.")
        ui.table(m.reset_index().rename(columns={"index": "embedder"}), "probe_r2", key="probe_table")
    st.subheader("Plate leakage")
    acc = probes[(probes["confounder"] == "plate") & (probes["metric"] == ACCURACY)]
    if len(acc):
        leak = acc.groupby("embedder")["value"].mean().rename("accuracy").to_frame()
        ch = probes[(probes["confounder"] == "plate") & (probes["metric"] == CHANCE)]
        leak["chance"] = ch.groupby("embedder")["value"].mean() if len(ch) else \
            1.0 / max(screen.obs["plate"].nunique(), 1)
        leak = leak.reset_index()
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
