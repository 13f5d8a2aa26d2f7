"""Plates page: per-well values (distance to the perturbation mean, the probe's residual), the
plate heatmap, the montage order, and the pages (Plates, Guide, Relationships' query view) under
AppTest."""
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from bioviz.dashboard.wells import distance_to_mean, order_along, plate_values, probe_residual, umap_direction
from bioviz.errors import BiovizError

REPO = Path(__file__).resolve().parents[1]


def test_distance_to_mean_equals_a_loop():
    rng = np.random.default_rng(0)
    obs = pd.DataFrame({"well_id": [f"w{i}" for i in range(12)],
                        "perturbation": ["A"] * 4 + ["B"] * 5 + ["C"] * 2 + ["D"]})
    emb = pd.DataFrame(rng.normal(size=(12, 5)), columns=[f"f{i}" for i in range(5)]).assign(well_id=obs["well_id"])
    got = distance_to_mean(emb.sample(frac=1, random_state=1), obs)  # order-free
    for _, r in obs.iterrows():
        members = obs[obs["perturbation"] == r["perturbation"]]["well_id"]
        x = emb.set_index("well_id").loc[r["well_id"]].to_numpy()
        m = emb.set_index("well_id").loc[members].to_numpy().mean(axis=0)
        want = 1 - x @ m / (np.linalg.norm(x) * np.linalg.norm(m))
        if len(members) < 2:
            assert np.isnan(got[r["well_id"]])
        else:
            assert got[r["well_id"]] == pytest.approx(want, abs=1e-12)


def test_probe_residual_gives_the_benchmarks_probe_r2():
    from bioviz.bench.probes import confounder_probes

    rng = np.random.default_rng(3)
    x = rng.normal(size=(120, 20))
    y = 3 * x[:, 0] - x[:, 1] + rng.normal(scale=0.5, size=120) + 10
    res = probe_residual(x, y)
    r2 = 1 - (res ** 2).sum() / ((y - y.mean()) ** 2).sum()
    probe = confounder_probes(x, pd.DataFrame({"cell_count": y}))
    want = probe[(probe["confounder"] == "cell_count") & (probe["metric"] == "r2")]["value"].iloc[0]
    assert r2 == pytest.approx(want, abs=1e-9) and r2 > 0.8


def test_order_along_and_umap_direction():
    f = pd.DataFrame({"well_id": [f"w{i:02d}" for i in range(50)], "v": np.r_[np.arange(49.0)[::-1], np.nan]})
    s = order_along(f, "v", 5)
    assert list(s["v"]) == [0, 12, 24, 36, 48]  # lowest first, highest last, evenly spaced, NaN left out
    assert len(order_along(f, "v", 500)) == 49
    m = pd.DataFrame({"x": [0.0, 1.0, 2.0], "y": [2.0, 1.0, 0.0]})
    assert list(umap_direction(m, 0)) == [0, 1, 2]
    np.testing.assert_allclose(umap_direction(m, 90), [2, 1, 0], atol=1e-12)


def test_plate_values_without_positions_is_one_line():
    f = pd.DataFrame({"well_id": ["a"], "plate": ["P1"], "perturbation": ["X"], "cell_count": [3]})
    with pytest.raises(BiovizError) as e:
        plate_values(f, "cell_count")
    assert "row, col" in str(e.value) and "\n" not in str(e.value)
    with pytest.raises(BiovizError, match="placeholders"):
        plate_values(pd.concat([f, f.assign(well_id="b")]).assign(row=0, col=0), "cell_count")


def test_plate_heatmap_one_panel_per_plate():
    from bioviz.plots.plate_view import plate_heatmap

    rows = [dict(well_id=f"{p}_{r}{c}", plate=p, row=r, col=c, well=f"{chr(65 + r)}{c:02d}", perturbation="g",
                 cell_count=10 * r + c) for p in ("P1", "P2", "P3", "P4") for r in range(4) for c in range(1, 7)]
    v = pd.DataFrame(rows)
    fig = plate_heatmap(plate_values(v, "cell_count"), "cell_count")
    assert len(fig.data) == 4 and [a.text for a in fig.layout.annotations] == [f"plate P{i}" for i in range(1, 5)]
    t = fig.data[1]
    assert list(t.customdata[:, 0]) == list(v[v.plate == "P2"]["well_id"])
    assert list(t.marker.color) == list(v[v.plate == "P2"]["cell_count"])


# -- pages ------------------------------------------------------------------------------------------
def _app(dataset, page, **params):
    pytest.importorskip("streamlit")
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_file(str(REPO / "app.py"), default_timeout=300)
    at.query_params["dataset"] = str(dataset)
    for k, v in params.items():
        at.query_params[k] = v
    at.run()
    at.switch_page(page).run()
    return at


def _ok(at):
    assert not at.exception, [e.message for e in at.exception]
    assert not at.error, [e.value for e in at.error]


def test_plates_page_heatmap_well_and_montage(standin):
    at = _app(standin, "app_pages/5_Plates.py")
    _ok(at)
    assert len(at.get("plotly_chart")) == 1
    assert any("What this shows" in e.label for e in at.expander)
    wells = at.selectbox(key="plate_well").options
    at.selectbox(key="plate_well").set_value(wells[1]).run()
    _ok(at)
    assert any(f"Well {wells[1]}" in h.value for h in at.subheader)
    n_img = len(at.get("image"))
    assert n_img >= 1 + 4  # the well's composite + the montage strip
    at.selectbox(key="plate_value").set_value("distance to perturbation mean · random").run()
    _ok(at)
    at.radio(key="montage_axis").set_value("a UMAP direction").run()
    _ok(at)


def test_plates_page_without_row_col_is_one_line(standin, tmp_path):
    import shutil

    from bioviz.screen import read_screen, write_screen

    # the format requires row/col, so a table imported without positions carries one placeholder value
    d = tmp_path / "norowcol"
    shutil.copytree(standin, d, ignore=shutil.ignore_patterns("results", "embeddings"))
    s = read_screen(d, check_images=False)
    obs = s.obs.assign(row=0, col=0)[[c for c in s.obs.columns]]
    write_screen(d, obs, channels=s.channels, colors=s.colors, control_label=s.control_label, name="norowcol")
    at = _app(d, "app_pages/5_Plates.py")
    _ok(at)
    assert any("no well position" in i.value for i in at.info)


def test_guide_page_renders_the_open_datasets_numbers(standin):
    from bioviz.dashboard.guide import guide_numbers, worked_example
    from bioviz.screen import read_screen

    at = _app(standin, "app_pages/6_Guide.py")
    _ok(at)
    text = "\n".join(m.value for m in at.markdown)
    assert worked_example(guide_numbers(read_screen(standin, check_images=False))) in text
    assert "## Why baselines" in text


def test_relationships_query_shows_activity_then_neighbours(standin):
    act = pd.read_csv(standin / "results" / "activity.csv")
    gene = act[act["metric"] == "activity"]["perturbation"].iloc[0]
    at = _app(standin, "app_pages/4_Relationships.py", gene=gene)
    _ok(at)
    subs = [h.value for h in at.subheader]
    first = subs.index(f"{gene}: its own phenotype first")
    assert first < subs.index(f"Most similar to {gene} in each map")
    tables = [d.value for d in at.dataframe]
    a = next(t for t in tables if "activity mAP" in t.columns).set_index("embedder")
    want = act[(act["perturbation"] == gene) & (act["metric"] == "activity")].set_index("embedder")
    for e in want.index:
        assert a.loc[e, "activity mAP"] == pytest.approx(want.loc[e, "mean_average_precision"])
    nb = next(t for t in tables if "rank" in t.columns and "cosine" not in t.columns)
    assert len(nb) == 10 and "weakly_supervised" in nb.columns
