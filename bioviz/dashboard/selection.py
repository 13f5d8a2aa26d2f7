"""From a plotly selection event to rows of the table behind the figure.

A scatter is drawn as several traces (one per category, plus a hover layer on large maps), so a
selected point is (curve_number, point_index); ``curves`` maps each trace's points back to row
positions of the frame the figure was built from.
"""
from __future__ import annotations

import numpy as np
import pandas as pd


def selection_to_rows(selection, curves: list[np.ndarray]) -> np.ndarray:
    """Sorted unique row positions of the selected points (empty array when nothing is selected)."""
    if not selection:
        return np.array([], dtype=int)
    points = selection.get("points", []) if hasattr(selection, "get") else []
    rows = []
    for p in points or []:
        c = p.get("curve_number", p.get("curveNumber"))
        i = p.get("point_index", p.get("pointIndex", p.get("point_number")))
        if c is None or i is None or not (0 <= int(c) < len(curves)):
            continue
        trace_rows = curves[int(c)]
        if trace_rows is None or not (0 <= int(i) < len(trace_rows)):
            continue
        rows.append(int(trace_rows[int(i)]))
    return np.unique(np.asarray(rows, dtype=int))


def rows_to_wells(frame: pd.DataFrame, rows, id_col: str = "well_id") -> list[str]:
    rows = np.asarray(rows, dtype=int)
    return frame[id_col].iloc[rows].astype(str).tolist() if len(rows) else []


def wells_to_rows(frame: pd.DataFrame, wells, id_col: str = "well_id") -> np.ndarray:
    """Positions in ``frame`` of the given ids (ids absent from this map are ignored)."""
    if wells is None or len(wells) == 0:
        return np.array([], dtype=int)
    mask = frame[id_col].astype(str).isin(set(map(str, wells))).to_numpy()
    return np.flatnonzero(mask)


def resolve_linked(previous: dict, current: dict, active: str | None, kept: tuple = ()) -> tuple[str | None, tuple]:
    """Which selection rules both maps: the newest non-empty lasso/box on either chart.

    ``previous`` and ``current`` map chart key -> tuple of ids selected on that chart in the last
    and this run. Streamlit gives a chart a fresh, empty selection whenever its figure changes (a
    recolour, or the outline of the other chart's selection being drawn on it), so an empty
    selection is never taken as a new choice: the kept selection (``active``, ``kept``) stays until
    another lasso replaces it or the user clears it. Returns (active key, selected ids).
    """
    for key, ids in current.items():
        if ids and tuple(ids) != tuple(previous.get(key, ())):
            return key, tuple(ids)
    return active, tuple(kept)


def selected_table(obs: pd.DataFrame, conf: pd.DataFrame | None, wells) -> pd.DataFrame:
    """The rows a gallery and the CSV download show: metadata plus confounders of selected wells."""
    if wells is None or len(wells) == 0:
        return obs.iloc[0:0]
    t = obs[obs["well_id"].isin(set(wells))]
    keep = [c for c in t.columns if not c.startswith("image_")]
    t = t[keep]
    if conf is not None:
        extra = [c for c in conf.columns if c not in t.columns or c == "well_id"]
        t = t.merge(conf[extra], on="well_id", how="left")
    return t.reset_index(drop=True)
