"""Plotly figure builders: pure functions of DataFrames, shared by the dashboard and the report."""
from .figures import (  # noqa: F401
    CATEGORICAL_MAX, activity_bars, embedder_colors, embedding_scatter, figure_config, heatmap,
    leakage_bars, mechanism_bars, null_distributions, plate_map, recall_bars,
)
