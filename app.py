"""bioviz dashboard: `bioviz app` or `make run`. This file only routes: the page list, the
sidebar every page shares (dataset, figure format), and ``st.navigation``.

The pages live in app_pages/, not pages/: a pages/ folder would switch Streamlit to its older
file-based navigation for direct links (/recall?dataset=demo), which runs a page without this
router. Home is app_pages/0_Home.py and the default page, so /?dataset=demo opens it. Pages only
compose widgets and figures from bioviz.dashboard and bioviz.plots; the screen the sidebar loaded
is in ``st.session_state["screen"]``.
"""
from __future__ import annotations

import streamlit as st

from bioviz.dashboard import ui

st.set_page_config(page_title="bioviz", page_icon=":material/biotech:", layout="wide")

pages = [
    st.Page("app_pages/0_Home.py", title="Home", icon=":material/home:", default=True),
    st.Page("app_pages/1_Embeddings.py", title="Embeddings", url_path="embeddings", icon=":material/scatter_plot:"),
    st.Page("app_pages/2_Recall.py", title="Recall", url_path="recall", icon=":material/bar_chart:"),
    st.Page("app_pages/3_Confounders.py", title="Confounders", url_path="confounders", icon=":material/balance:"),
    st.Page("app_pages/4_Relationships.py", title="Relationships", url_path="relationships", icon=":material/link:"),
    st.Page("app_pages/5_Plates.py", title="Plates", url_path="plates", icon=":material/grid_on:"),
    st.Page("app_pages/6_Guide.py", title="Guide", url_path="guide", icon=":material/menu_book:"),
]
nav = st.navigation(pages)
ui.sidebar()
nav.run()
