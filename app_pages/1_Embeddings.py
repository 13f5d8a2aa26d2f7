"""Embeddings: two UMAPs side by side with linked lasso selection, any colouring, a well gallery."""
import numpy as np
import streamlit as st

from bioviz.bench import umap_cache
from bioviz.dashboard import datasets as ds
from bioviz.dashboard import ui
from bioviz.dashboard.selection import resolve_linked, rows_to_wells, selected_table, selection_to_rows, wells_to_rows
from bioviz.errors import BiovizError
from bioviz.plots import embedding_scatter
from bioviz.plots.density import DENSITY_ABOVE, embedding_density, selected_bin_rows


def ui_progress_file(bar, label):
    """A file for UMAP's tqdm epoch bar that moves a Streamlit progress bar instead."""
    import re

    class _File:
        def write(self, s):
            m = re.search(r"(\d+)/(\d+)", s)
            if m and int(m.group(2)):
                bar.progress(min(1.0, int(m.group(1)) / int(m.group(2))),
                             text=f"{label}: epoch {m.group(1)} of {m.group(2)}")

        def flush(self):
            pass

    return _File()

st.title("Embeddings")
ui.intro("embeddings")
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
                   "(its recipe, e.g. PCA-CenterScale then the mean of the wells; the controls, which "
                   "centre it, are not points)")
model_first = embedders[0]
base_first = next((e for e in embedders if ds.embedder_kind(e) == "baseline" and e != model_first),
                  embedders[-1])
emb_a = c[1].selectbox("Left map", embedders, index=embedders.index(ui.widget_default("emb_a", embedders, model_first)),
                       key="emb_a",
                       help="the embedding drawn on the left map")
emb_b = c[2].selectbox("Right map", embedders, index=embedders.index(ui.widget_default("emb_b", embedders, base_first)),
                       key="emb_b",
                       help="the embedding drawn on the right map, for comparison")

frame_base = ui.well_frame(screen) if level == "well" else ui.perturbation_frame(screen)
color_options, default_color = ui.color_options(frame_base)
color = c[3].selectbox("Colour by", color_options,
                       index=color_options.index(ui.widget_default("color", color_options, default_color)),
                       key="emb_color")
with st.expander("Map settings"):
    s1, s2 = st.columns(2)
    n_neighbors = s1.slider("UMAP neighbours", 5, 100, 15, key="umap_nn",
                            help="UMAP's n_neighbors: larger values keep more of"
                                 " the global structure")
    min_dist = s2.slider("UMAP min_dist", 0.0, 0.99, 0.1, step=0.05, key="umap_md",
                         help="UMAP's min_dist: how tightly points may"
                              " pack together")
ui.url_set(level=level, emb_a=emb_a, emb_b=emb_b, color=color)

# the colour's own value is added to the hover by the figure builder
hover = ["well_id", "perturbation", "plate", "cell_count"] if level == "well" else \
    ["perturbation", "perturbation_type", "n_wells", "cell_count"]
hover = list(dict.fromkeys(h for h in hover if h in frame_base.columns))

# A UMAP is never started by a page visit beyond a few seconds' worth of points: larger layouts
# come from `bioviz umap` (minutes at 222k wells, docs/scale.md) or the Compute button below.
AUTO_UMAP_MAX = 20_000
n_points = len(frame_base)
missing = []
for emb in dict.fromkeys((emb_a, emb_b)):
    try:
        if not umap_cache.layout_path(screen, emb, level, n_neighbors, min_dist).is_file():
            missing.append(emb)
    except BiovizError as exc:
        st.error(f"{emb}: {exc}")
        st.stop()
if missing and n_points > AUTO_UMAP_MAX:
    extra = "" if (n_neighbors, min_dist) == (15, 0.1) else f" --n-neighbors {n_neighbors} --min-dist {min_dist}"
    cmd = umap_cache.umap_command(",".join(missing), level, ds.dataset_label(screen.root)) + extra
    st.info(f"The {level} UMAP of {', '.join(missing)} ({n_points:,} points) is not computed yet. It takes "
            f"minutes at this size; run\n\n`{cmd}`\n\nor compute it here (this page waits for it).")
    if st.button(f"Compute {len(missing)} UMAP layout(s) now", key="umap_compute"):
        for emb in missing:
            bar = st.progress(0.0, text=f"UMAP of {emb}: neighbour graph...")
            umap_cache.umap_layout(screen, emb, level=level, n_neighbors=n_neighbors, min_dist=min_dist,
                                   tqdm_kwds={"file": ui_progress_file(bar, f"UMAP of {emb}"), "mininterval": 0.5})
            bar.progress(1.0, text=f"UMAP of {emb}: done")
        st.rerun()
    st.stop()

frames = {}
for key, emb in (("a", emb_a), ("b", emb_b)):
    try:
        with st.spinner(f"UMAP of {emb} ({n_points:,} points, computed once, then cached on disk)..."):
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
    title = f"{emb} ({ds.embedder_kind(emb)})" + (" - UMAP of the perturbation map the benchmark scores"
                                                   if level == "perturbation" else " - UMAP of the wells")
    # Above DENSITY_ABOVE points: binned counts coloured by the bin's mean/majority (a 222k scatter
    # is overplotted); zooming into a region with fewer points draws them, and a lasso on the bins
    # selects every well in them. The selection itself is always drawn as points.
    idx = np.arange(len(frame))
    if len(frame) > DENSITY_ABOVE:
        with col.expander("Zoom (points instead of density below "
                          f"{DENSITY_ABOVE:,} points)"):
            zx = st.slider("UMAP 1 range (%)", 0, 100, (0, 100), key=f"zoom_x_{key}")
            zy = st.slider("UMAP 2 range (%)", 0, 100, (0, 100), key=f"zoom_y_{key}")
        if (zx, zy) != ((0, 100), (0, 100)):
            x, y = frame["x"].to_numpy(), frame["y"].to_numpy()
            qx, qy = np.nanmin(x) + np.ptp(x) * np.array(zx) / 100, np.nanmin(y) + np.ptp(y) * np.array(zy) / 100
            idx = np.flatnonzero((x >= qx[0]) & (x <= qx[1]) & (y >= qy[0]) & (y <= qy[1]))
    sub = frame if len(idx) == len(frame) else frame.iloc[idx].reset_index(drop=True)
    hl = wells_to_rows(sub, selected, id_col)
    if len(sub) > DENSITY_ABOVE:
        fig, curves, bin_rows = embedding_density(sub, color, highlight=hl, title=title)
    else:
        fig, curves = embedding_scatter(sub, color, hover_cols=hover, highlight=hl, title=title)
    with col:
        event = ui.plot(fig, f"umap_{emb}_{color}", key=f"umap_{key}_{level}", on_select="rerun",
                        selection_mode=("lasso", "box"))
    sel_ev = event.selection if event else None
    rows = selected_bin_rows(sel_ev, curves, bin_rows) if len(sub) > DENSITY_ABOVE else selection_to_rows(sel_ev, curves)
    current[key] = tuple(sorted(rows_to_wells(sub, rows, id_col)))

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
    on = st.multiselect("Channels", screen.channels, default=screen.channels, key="sel_channels",
                        help="the channels mixed into the"
                             " false-colour composites") \
        if screen.has_images else None
    if screen.has_images:
        st.markdown(ui.channel_legend(screen), unsafe_allow_html=True)
    n_show = 12
    ui.gallery(screen, sel.merge(screen.obs[["well_id"]], on="well_id").head(n_show), on, ncols=6)
    if len(sel) > n_show:
        st.caption(f"First {n_show} of {len(sel)} wells; all are in the table and its CSV.")
