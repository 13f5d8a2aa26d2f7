"""Logic behind the dashboard pages, kept free of Streamlit so it can be tested and reused.

Pages in ``app_pages/`` only compose widgets; everything they show is computed here or in
``bioviz.plots``. ``ui`` is the one module that imports Streamlit.
"""
