"""Guide: docs/guide.md (the one source of the text), its worked example's numbers taken from the
results of the dataset the sidebar has open (dashboard.guide), and the images of the example's
model-only pair, so the Guide alone shows what such a pair looks like."""
import pandas as pd
import streamlit as st

from bioviz.dashboard import ui
from bioviz.dashboard.guide import guide_numbers, render_guide
from bioviz.dashboard.pairs import example_wells

st.title("Guide: reading bioviz, for biologists")
ui.intro("guide")
screen = st.session_state.get("screen")
# a dataset without results shows the demo's numbers, said to be the demo's
st.markdown(render_guide(screen, drop_title=True))

n = guide_numbers(screen) if screen is not None else None
if n and n.get("pair_a") and screen.has_images:
    a, b = n["pair_a"], n["pair_b"]
    st.subheader(f"What the model-only pair {a} – {b} looks like")
    st.caption(f"Two wells of each gene and two negative-control wells from the same plates (false colour: "
               f"{', '.join(screen.channels)}). {n['model']} places the pair at percentile {n['pair_pct']:.1f}; no "
               "baseline recalls it.")
    groups = example_wells(screen.obs, a, b, screen.control_label, n=2)
    ui.gallery(screen, pd.concat(list(groups.values())), ncols=6, caption_cols=("perturbation", "well_id"))
