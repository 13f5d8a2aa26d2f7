"""Plots (scanpy-style ``pl``): plotly figures of embeddings, recall and confounders."""
from .plots import (activity_bars, embedding_scatter, heatmap, leakage_bars,  # noqa: F401
                    mechanism_bars, null_distributions, plate_map, recall_bars)
