"""Forest plot, dumbbell, plate heatmap and montage: the drawn data equal the tables they come from."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from bioviz.errors import BiovizError
from bioviz.plots import forest, montage, plate_view

EMB = ["weakly_supervised", "my_model", "cell_count", "pixel_stats", "untrained_vit", "morphology", "plate_layout",
       "random", "confounder:intensity"]


def _recall(seed=0):
    rng = np.random.default_rng(seed)
    rows = []
    for adj in ("", "density"):
        for src in ("CORUM", "planted", "SIGNOR"):
            for e in EMB:
                r = float(rng.uniform(0.05, 0.5))
                if adj and e == "cell_count":
                    r = 0.1
                rows.append(dict(embedder=e, source=src, threshold="0.05_0.95", recall=r, ci_low=r - 0.03,
                                 ci_high=r + 0.04, adjusted_for=adj, mechanism="", n_pairs=50, null_size=900,
                                 null_model="all"))
                rows.append(dict(rows[-1], threshold="0.1_0.9", recall=r / 2))
                rows.append(dict(rows[-2], null_model="matched:density", recall=0.99))  # another null: ignored
    return pd.DataFrame(rows)


def test_forest_rows_sorted_colours_by_kind_ci_from_table():
    rec = _recall()
    d = forest.forest_data(rec, "0.05_0.95")
    raw = rec[(rec.threshold == "0.05_0.95") & (rec.adjusted_for == "") & (rec.null_model == "all")]
    # one row per embedder and source, values and CI ends exactly the table's
    m = d.merge(raw, on=["source", "embedder"], suffixes=("", "_t"))
    assert len(m) == len(raw) == len(d) == 3 * len(EMB)
    assert (m.recall == m.recall_t).all() and (m.ci_low == m.ci_low_t).all() and (m.ci_high == m.ci_high_t).all()
    # rows sorted by mean recall over the sources, best on top, same order in every panel
    mean = raw.groupby("embedder").recall.mean().sort_values(ascending=False)
    order = d.drop_duplicates("embedder").sort_values("row").embedder.tolist()
    assert order == mean.index.tolist()
    assert d.groupby("source").apply(lambda g: g.sort_values("row").embedder.tolist()).map(tuple).nunique() == 1
    # planted truth first; kinds and colours
    assert d.source.iloc[0] == "planted"
    kinds = d.drop_duplicates("embedder").set_index("embedder")
    assert kinds.loc["random", "kind"] == "null" and kinds.loc["random", "dash"]
    assert kinds.loc["cell_count", "kind"] == "density" and kinds.loc["untrained_vit", "kind"] == "untrained network"
    models = kinds[kinds.kind == "model"]
    assert set(models.index) == {"weakly_supervised", "my_model"}
    assert models.color.isin(forest.MODEL_COLORS).all() and models.color.nunique() == 2
    bases = kinds[kinds.kind != "model"]
    assert (bases.color == bases.kind.map(forest.KIND_COLORS)).all()
    assert all(c.lstrip("#")[0:2] == c.lstrip("#")[2:4] or k in ("handcrafted", "confounder")
               for c, k in zip(bases.color, bases.kind))  # greys (warm greys for handcrafted/confounder)
    assert d["null"].iloc[0] == pytest.approx(0.1)


def test_forest_figure_matches_data_and_fits_a_slide():
    rec = _recall()
    fig = forest.forest_plot(rec, "0.05_0.95", title="cell_count's recall comes from density")
    d = forest.forest_data(rec, "0.05_0.95")
    assert fig.layout.title.text == "cell_count's recall comes from density"
    assert fig.layout.width == 1280 and fig.layout.height <= 720
    pts = [t for t in fig.data if t.x and t.x[0] is not None]
    assert len(pts) == len(d)
    got = sorted((t.y[0], float(t.x[0]), float(t.x[0]) + t.error_x.array[0]) for t in pts)
    want = sorted((r.embedder, r.recall, r.ci_high) for r in d.itertuples())
    assert [g[0] for g in got] == [w[0] for w in want]
    assert np.allclose([g[1:] for g in got], [w[1:] for w in want])
    assert list(fig.layout.yaxis.categoryarray) == d.drop_duplicates("embedder").sort_values("row").embedder.tolist()
    assert fig.layout.legend.x > 1  # beside the panels, not below
    assert forest.label_overlaps(fig) == []
    # the null line in each of the three panels
    assert sum(1 for s in fig.layout.shapes if s.line.dash == "dash") == 3


def test_dumbbell_raw_to_adjusted_from_table():
    rec = _recall()
    d = forest.dumbbell_data(rec, "0.05_0.95", "density")
    cc = d[(d.embedder == "cell_count") & (d.source == "CORUM")].iloc[0]
    t = rec[(rec.embedder == "cell_count") & (rec.source == "CORUM") & (rec.threshold == "0.05_0.95")
            & (rec.null_model == "all")]
    assert cc.raw == t[t.adjusted_for == ""].recall.iloc[0] and cc.adjusted == 0.1
    assert cc.change == pytest.approx(0.1 - cc.raw)
    order = d.drop_duplicates("embedder").sort_values("row").embedder.tolist()
    mean_adj = d.groupby("embedder").adjusted.mean()
    assert order == sorted(mean_adj.index, key=lambda n: (-mean_adj[n], n))
    fig = forest.dumbbell_plot(rec, "0.05_0.95", "density", title="Adjusting for density removes cell_count's recall")
    lines = [t for t in fig.data if t.mode == "lines+markers"]
    assert len(lines) == len(d)
    assert forest.dumbbell_data(rec, "0.05_0.95", "focus").empty
    assert "no recall adjusted for focus" in forest.dumbbell_plot(rec, "0.05_0.95", "focus", title="t").layout.annotations[0].text


def test_plate_heatmap_places_wells_on_one_colour_scale():
    """The Plates page's heatmap (the one plate builder): wells at their row/column, letter rows
    accepted, one colour scale for every plate, and a table without row/col is one line."""
    wells = pd.DataFrame({
        "well_id": ["P1_A01", "P1_B03", "P2_A02", "P2_AA01"],
        "plate": ["P1", "P1", "P2", "P2"], "well": ["A01", "B03", "A02", "AA01"], "perturbation": "g",
        "row": [0, 1, 0, 26], "col": [1, 3, 2, 1],
        "cell_count": [10.0, 20.0, 7.0, 40.0],
    })
    fig = plate_view.plate_heatmap(wells, "cell_count", title="Edge wells hold fewer cells")
    assert len(fig.data) == 2 and [a.text for a in fig.layout.annotations][:2] == ["plate P1", "plate P2"]
    p1, p2 = fig.data
    assert list(p1.x) == [1, 3] and list(p1.y) == [0, 1] and list(p1.customdata[:, 0]) == ["P1_A01", "P1_B03"]
    assert p1.marker.cmin == p2.marker.cmin and p1.marker.cmax == p2.marker.cmax  # one scale
    letters = wells.assign(row=["A", "B", "A", "AA"])
    fig2 = plate_view.plate_heatmap(letters, "cell_count", title="t")
    assert list(fig2.data[1].y) == [0, 26]
    assert [plate_view.row_label(i) for i in (0, 25, 26, 31)] == ["A", "Z", "AA", "AF"]
    with pytest.raises(BiovizError, match="no 'row' column") as e:
        plate_view.plate_heatmap(wells.drop(columns="row"), "cell_count", title="t")
    assert "\n" not in str(e.value)


def test_montage_order_spans_the_axis():
    df = pd.DataFrame({"well_id": [f"w{i}" for i in range(101)], "cell_count": np.arange(101)[::-1] * 2.0})
    o = montage.montage_order(df, "cell_count", n=5)
    assert o.cell_count.tolist() == [0, 50, 100, 150, 200] and o["quantile"].tolist() == [0, 0.25, 0.5, 0.75, 1]
    assert o.well_id.iloc[0] == "w100" and o.position.tolist() == list(range(5))
    assert len(montage.montage_order(df.head(3), "cell_count", n=8)) == 3
    s = montage.direction_scores([[0, 0], [1, 1], [2, 0]], [0, 0], [2, 0])
    assert s.tolist() == [0.0, 0.5, 1.0]
    tiles = [np.full((20, 30, 3), i * 40, np.uint8) for i in range(5)]
    fig = montage.montage_strip(tiles, o.well_id, title="Low to high cell count")
    assert fig.data[0].z.shape == (20, 5 * 30 + 4 * 4, 3)
    assert list(fig.layout.xaxis.ticktext) == o.well_id.tolist()
    with pytest.raises(BiovizError, match="differ in size"):
        montage.montage_strip([tiles[0], np.zeros((10, 10, 3), np.uint8)], ["a", "b"], title="t")
    with pytest.raises(BiovizError, match="no column 'focus'"):
        montage.montage_order(df, "focus")


def test_titles_state_the_finding():
    rec = _recall()
    t = forest.forest_title(rec, "0.05_0.95")
    d = forest.forest_data(rec, "0.05_0.95")
    d = d[d.source != "planted"]  # the mean covers the public sources only (issue 9)
    mean = d.groupby("embedder").recall.mean()
    best_model = mean[["weakly_supervised", "my_model"]].idxmax()
    assert t.startswith(best_model) and "best baseline" in t
    kinds = d.drop_duplicates("embedder").set_index("embedder")["kind"]
    best_base = mean[~kinds[mean.index].isin(["model", "null", "handcrafted"])].idxmax()
    assert f"the best baseline ({best_base})" in t  # handcrafted features are not baselines (issue 9)
    assert f"over {d.source.nunique()} sources" in t
    rec2 = rec.copy()
    raw_cc = (rec2.embedder == "cell_count") & (rec2.adjusted_for == "")
    rec2.loc[raw_cc, "recall"] = 0.6
    assert forest.dumbbell_title(rec2, "0.05_0.95", "density").startswith("cell_count's recall comes from density")


def test_long_titles_break_once():
    t = "weakly_supervised does not beat the best baseline (morphology): mean recall 25% vs 33% over 6 sources"
    w = forest.wrap_title(t)
    assert w.count("<br>") == 1 and w.replace("<br>", " ") == t
    assert all(len(part) <= 75 for part in w.split("<br>"))
    assert forest.wrap_title("short") == "short"


def test_recorded_kind_wins_over_the_name():
    """A CellProfiler profile benchmarked as `precomputed` with kind=handcrafted (summary.json kinds,
    added as a column by the dashboard's reader) is drawn as handcrafted, not as a model."""
    rows = [dict(embedder=e, source=s, threshold="0.05_0.95", recall=r, ci_low=r - 0.05, ci_high=r + 0.05,
                 adjusted_for="", mechanism="") for e, r in (("precomputed", 0.4), ("weakly_supervised", 0.3),
                                                             ("pixel_stats", 0.2), ("random", 0.1))
            for s in ("CORUM", "HuMAP")]
    rec = pd.DataFrame(rows)
    by_name = forest.forest_data(rec, "0.05_0.95").drop_duplicates("embedder").set_index("embedder")["kind"]
    assert by_name["precomputed"] == "model"
    recorded = rec.assign(kind=rec["embedder"].map({"precomputed": "handcrafted", "weakly_supervised": "model",
                                                    "pixel_stats": "baseline", "random": "null"}))
    d = forest.forest_data(recorded, "0.05_0.95").drop_duplicates("embedder").set_index("embedder")
    assert d.loc["precomputed", "kind"] == "handcrafted" and d.loc["precomputed", "color"] == forest.KIND_COLORS["handcrafted"]
    assert d.loc["weakly_supervised", "kind"] == "model"
    # the title compares the best model with the best baseline, as Home does, and names handcrafted
    # features that beat the model
    assert forest.forest_title(recorded, "0.05_0.95") == ("weakly_supervised beats the best baseline (pixel_stats): "
                                                          "mean recall 30% vs 20% over 2 sources; handcrafted "
                                                          "precomputed 40%")
    from bioviz.dashboard import datasets as ds

    card = ds.scorecard(recorded, None, threshold="0.05_0.95").set_index("embedder")
    assert card.loc["precomputed", "kind"] == "handcrafted" and card["kind"].iloc[0] == "model"
