"""Plates: a plate heatmap of any per-well value (CellProfiler Analyst's plate viewer; a click opens
the well's images) and a montage of wells ordered along a confounder or a UMAP direction."""
import pandas as pd
import streamlit as st

from bioviz.dashboard import ui
from bioviz.dashboard.wells import (distance_to_mean, has_positions, order_along, plate_values, probe_residual,
                                    umap_direction)
from bioviz.errors import BiovizError
from bioviz.plots.plate_view import plate_heatmap

st.title("Plates and montages")
ui.intro("plates")
screen = st.session_state.get("screen")
if screen is None:
    st.stop()

DIST = "distance to perturbation mean · "
RESID = "cell-count residual of the probe · "


@st.cache_resource(show_spinner="computing per-well values", max_entries=16)
def _derived(root: str, name: str, key: tuple, _screen, _frame):
    """A per-well value that needs an embedding (cached on the embedding file's identity)."""
    from bioviz.embed import load_embedding

    emb_name = name.split(" · ", 1)[1]
    emb = load_embedding(_screen, emb_name)
    if name.startswith(DIST):
        return distance_to_mean(emb, _screen.obs)
    x = emb[[c for c in emb.columns if c != "well_id"]].to_numpy()
    y = _frame.set_index("well_id")["cell_count"].reindex(emb["well_id"]).to_numpy(float)
    return pd.Series(probe_residual(x, y), index=emb["well_id"].to_numpy(), name=name)


frame = ui.well_frame(screen)
embs = ui.embedders(screen)
skip = {"row", "col", "site", "is_control", "edge"}
numeric = [c for c in frame.columns if c not in skip and pd.api.types.is_numeric_dtype(frame[c])
           and not pd.api.types.is_bool_dtype(frame[c])]
derived = [DIST + e for e in embs] + ([RESID + e for e in embs] if "cell_count" in frame.columns else [])


def with_value(name: str) -> pd.DataFrame:
    if name in frame.columns:
        return frame
    s = _derived(str(screen.root), name, ui._embedding_key(screen, name.split(" · ", 1)[1]), screen, frame)
    return frame.assign(**{name: frame["well_id"].map(s)})


# -- plate view ------------------------------------------------------------------------------------
st.header("Plate view")
if not has_positions(frame):
    st.info("No plate view: this dataset's metadata has no well position (row/col columns), so wells cannot be "
            "placed on a plate.")
else:
    c = st.columns([2, 1])
    options = numeric + derived
    if not options:
        st.info("No per-well value to colour the plates by yet: `bioviz embed --dataset ...` measures the "
                "confounders (cell count, intensity, focus).")
        st.stop()
    default = "cell_count" if "cell_count" in options else options[0]
    value = c[0].selectbox("Colour wells by", options, index=options.index(default), key="plate_value",
                           help="a confounder measured per well; the well's cosine distance to the mean of its "
                                "perturbation's wells in one embedding (an outlier replicate stands out); or the "
                                "cell count minus what a linear probe reads from the embedding (out of fold)")
    try:
        vals = plate_values(with_value(value), value)
    except BiovizError as exc:
        st.error(str(exc))
        st.stop()
    ev = ui.plot(plate_heatmap(vals, value), f"plate_view_{value}", key="plate_heatmap", on_select="rerun",
                 selection_mode="points")
    st.caption("Rows A.. top to bottom, columns 1.. left to right; one colour scale for all plates (1st to 99th "
               "percentile). A gradient across rows, columns or the edge is a plate effect. Click a well to open it.")
    clicked = None
    pts = ev.selection.points if ev is not None and getattr(ev, "selection", None) else []
    if pts:
        cd = pts[0].get("customdata")
        clicked = cd[0] if cd else None
    wells = sorted(vals["well_id"].astype(str))
    pick = c[1].selectbox("Or open a well", [""] + wells, key="plate_well", help="the well whose images are shown")
    well = clicked or pick or None
    if well:
        w = frame[frame["well_id"].astype(str) == well]
        st.subheader(f"Well {well}")
        if len(w):
            r = w.iloc[0]
            st.caption(f"plate {r['plate']} · {r.get('well', '')} · {r['perturbation']}"
                       + (f" · {value} {vals.set_index('well_id').loc[well, value]:.3g}"
                          if pd.notna(vals.set_index('well_id').loc[well, value]) else ""))
            ui.gallery(screen, w, ncols=4)

# -- montage ---------------------------------------------------------------------------------------
st.header("Montage along an axis")
if not screen.has_images:
    st.info(f"No montage: {screen.name} is a profiles-only dataset (features per well, no image files), so there "
            "is nothing to show along an axis.")
    st.stop()
m = st.columns([1, 2, 1, 1])
axis = m[0].radio("Order wells along", ["a per-well value", "a UMAP direction"], key="montage_axis",
                  help="a confounder (cell count, intensity, focus ...) or a direction across one embedding's map")
if axis == "a per-well value":
    if not numeric + derived:
        st.info("No per-well value to order wells by yet: `bioviz embed --dataset ...` measures the confounders "
                "(cell count, intensity, focus).")
        st.stop()
    by = m[1].selectbox("Value", numeric + derived, key="montage_value",
                        index=(numeric + derived).index("cell_count") if "cell_count" in numeric else 0,
                        help="wells are sorted by this value and sampled evenly from lowest to highest")
    f = with_value(by)
else:
    if not embs:
        st.info("No embedding is computed yet: run `bioviz embed` to order wells along a map.")
        st.stop()
    emb = m[1].selectbox("Embedding", embs, key="montage_emb", help="the UMAP map of wells of this embedding")
    angle = m[1].slider("Direction (degrees: 0 = left → right, 90 = bottom → top)", 0, 345, 0, 15, key="montage_angle")
    try:
        mf = ui.map_frame(screen, emb, "well")
    except BiovizError as exc:
        st.error(str(exc))
        st.stop()
    by = f"position along {angle}° of {emb}'s map"
    f = mf.assign(**{by: umap_direction(mf, angle)})
which = m[2].selectbox("Wells", ["all", "controls only", "perturbations only"], key="montage_which",
                       help="controls only: the axis without any perturbation's effect")
n = m[3].slider("Wells in the strip", 4, 16, 10, key="montage_n")
if which == "controls only":
    f = f[f["is_control"]]
elif which == "perturbations only":
    f = f[~f["is_control"]]
strip = order_along(f, by, n)
if strip.empty:
    st.info(f"No well has a value for {by}.")
else:
    strip = strip.assign(**{"value": [f"{by.split(' · ')[0][:24]} {v:.3g}" for v in strip[by]]})
    st.caption(f"Left: lowest {by}; right: highest. Each tile is one well (false-colour composite).")
    ui.gallery(screen, strip, ncols=len(strip), caption_cols=("value", "perturbation"))
