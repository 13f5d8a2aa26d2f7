"""Guide: docs/guide.md (the one source of the text), its worked example's numbers taken from the
results of the dataset the sidebar has open (dashboard.guide)."""
import streamlit as st

from bioviz.dashboard import ui
from bioviz.dashboard.guide import render_guide

st.title("Guide: reading bioviz, for biologists")
ui.intro("guide")
# a dataset without results shows the demo's numbers, said to be the demo's
st.markdown(render_guide(st.session_state.get("screen"), drop_title=True))
