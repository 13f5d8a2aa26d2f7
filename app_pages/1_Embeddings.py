"""Embeddings: two UMAPs side by side with linked lasso selection, any colouring, a well gallery."""
import streamlit as st

from bioviz.dashboard import datasets as ds
from bioviz.dashboard import ui
from bioviz.dashboard.selection import resolve_linked, rows_to_wells, selected_table, selection_to_rows, wells_to_rows
from bioviz.errors import BiovizError
from bioviz.plots import embedding_scatter

st.title("Embeddings")
screen = st.session_state.get("screen")
if screen is None:
    st.stop()

embedders = ui.embedders(screen)
if not embedders:
    st.warning("No embedding is computed for this dataset yet: use *Compute* on Home or run "
               "`bioviz embed --dataset ...`.")
    st.stop()

c = st.columns([1, 1, 1, 1])
level = c[0].radio("Points are", ["well", "perturbation"], horizontal=True,
                   index=["well", "perturbation"].index(ui.widget_default("level", ["well", "perturbation"])),
                   key="emb_level", help="wells, or one point per perturbation: the map the benchmark scores "
                   "(its recipe, e.g. PCA-CenterScale then the mean of the wells)")
model_first = embedders[0]
base_first = next((e for e in embedders if ds.embedder_kind(e) == "baseline" and e != model_first),
                  embedders[-1])
emb_a = c[1].selectbox("Left map", embedders, index=embedders.index(ui.widget_default("emb_a", embedders, model_first)),
                       key="emb_a")
emb_b = c[2].selectbox("Right map", embedders, index=embedders.index(ui.widget_default("emb_b", embedders, base_first)),
                       key="emb_b")

frame_base = ui.well_frame(screen) if level == "well" else ui.perturbation_frame(screen)
color_options, default_color = ui.color_options(frame_base)
color = c[3].selectbox("Colour by", color_options,
                       index=color_options.index(ui.widget_default("color", color_options, default_color)),
                       key="emb_color")
with st.expander("Map settings"):
    s1, s2 = st.columns(2)
    n_neighbors = s1.slider("UMAP neighbours", 5, 100, 15, key="umap_nn")
    min_dist = s2.slider("UMAP min_dist", 0.0, 0.99, 0.1, step=0.05, key="umap_md")
ui.url_set(level=level, emb_a=emb_a, emb_b=emb_b, color=color)

# the colour's own value is added to the hover by the figure builder
hover = ["well_id", "perturbation", "plate", "cell_count"] if level == "well" else \
    ["perturbation", "perturbation_type", "n_wells", "cell_count"]
hover = list(dict.fromkeys(h for h in hover if h in frame_base.columns))

frames = {}
for key, emb in (("a", emb_a), ("b", emb_b)):
    try:
        with st.spinner(f"UMAP of {emb} (computed once, then cached on disk)..."):
            frames[key] = ui.map_frame(screen, emb, level, n_neighbors, min_dist)
    except BiovizError as exc:
        st.error(f"{emb}: {exc}")
        st.stop()

id_col = "well_id" if level == "well" else "perturbation"
if st.session_state.get("_sel_level") != level:  # ids of wells and of perturbations do not mix
    st.session_state.update(_sel_ids=(), _sel_prev={}, _sel_active=None, _sel_level=level)
selected = tuple(st.session_state.get("_sel_ids", ()))
cols = st.columns(2)
current = {}
for (key, emb), col in zip((("a", emb_a), ("b", emb_b)), cols):
    frame = frames[key]
    hl = wells_to_rows(frame, selected, id_col)
    fig, curves = embedding_scatter(frame, color, hover_cols=hover, highlight=hl,
                                    title=f"{emb} ({ds.embedder_kind(emb)})"
                                    + (" - UMAP of the perturbation map the benchmark scores" if level == "perturbation"
                                       else " - UMAP of the wells"))
    with col:
        event = ui.plot(fig, f"umap_{emb}_{color}", key=f"umap_{key}_{level}", on_select="rerun",
                        selection_mode=("lasso", "box"))
    rows = selection_to_rows(event.selection if event else None, curves)
    current[key] = tuple(sorted(rows_to_wells(frame, rows, id_col)))

prev = st.session_state.get("_sel_prev", {})
active, ids = resolve_linked(prev, current, st.session_state.get("_sel_active"), selected)
st.session_state["_sel_prev"] = current
st.session_state["_sel_active"] = active
if tuple(ids) != selected:
    st.session_state["_sel_ids"] = ids
    st.rerun()  # redraw both maps with the selection outlined

st.subheader("Selection")
if not ids:
    st.info("Draw a lasso or a box on either map: the same points are outlined on the other map, and "
            "their images and table appear here.")
    st.stop()
if level == "well":
    wells = list(ids)
else:
    wells = screen.obs.loc[screen.obs["perturbation"].isin(set(ids)), "well_id"].tolist()
conf = ui.confounders(screen)
sel = selected_table(screen.obs, conf, wells)
m1, m2 = st.columns([4, 1])
m1.markdown(f"**{len(ids)} {level}s selected** on the {'left' if active == 'a' else 'right'} map "
            f"({len(sel)} wells), outlined in black on both maps.")
if m2.button("Clear selection", key="sel_clear"):
    st.session_state.update(_sel_ids=(), _sel_active=None)
    st.rerun()
t1, t2 = st.tabs(["Images", "Table"])
with t2:
    ui.table(sel, f"selected_wells_{screen.name}", key="sel_table")
with t1:
    on = st.multiselect("Channels", screen.channels, default=screen.channels, key="sel_channels")
    st.markdown(ui.channel_legend(screen), unsafe_allow_html=True)
    n_show = 12
    ui.gallery(screen, sel.merge(screen.obs[["well_id"]], on="well_id").head(n_show), on, ncols=6)
    if len(sel) > n_show:
        st.caption(f"First {n_show} of {len(sel)} wells; all are in the table and its CSV.")
