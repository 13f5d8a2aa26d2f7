"""Every dashboard page under streamlit.testing.v1.AppTest: runs without exception, shows its key
elements, and its widgets change what is shown.

Most tests use the synthetic stand-in (two seconds to build, known numbers); one module-scoped run
of the real tiny demo pipeline checks the pages read the files the other modules really write.
"""
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from streamlit.testing.v1 import AppTest  # a dependency of the product: no skip that could hide the tests

REPO = Path(__file__).resolve().parents[1]
HOME = "app_pages/0_Home.py"
PAGES = ["app_pages/1_Embeddings.py", "app_pages/2_Recall.py", "app_pages/3_Confounders.py", "app_pages/4_Relationships.py",
         "app_pages/5_Plates.py", "app_pages/6_Guide.py"]


def app(dataset, page=None, **params) -> AppTest:
    at = AppTest.from_file(str(REPO / "app.py"), default_timeout=240)
    at.query_params["dataset"] = str(dataset)
    for k, v in params.items():
        at.query_params[k] = v
    at.run()
    if page:
        at.switch_page(page).run()
    return at


def no_error(at):
    assert not at.exception, [e.message for e in at.exception]
    assert not at.error, [e.value for e in at.error]


def texts(at) -> str:
    parts = [m.value for m in at.markdown] + [m.value for m in at.caption] + [i.value for i in at.info] \
        + [w.value for w in at.warning] + [h.value for h in at.header] + [h.value for h in at.subheader]
    return "\n".join(map(str, parts))


def df_with(at, column) -> pd.DataFrame:
    """The first table shown that has ``column`` (tables sit in tabs, so position is not stable)."""
    for d in at.dataframe:
        if column in d.value.columns:
            return d.value
    raise AssertionError(f"no table with column {column!r}")


def charts(at):
    return at.get("plotly_chart")


def chart_json(el):
    import json

    return json.loads(el.proto.spec)


# -- the router -----------------------------------------------------------------------------------
def test_app_py_only_routes():
    """app.py defines no page and no logic: its statements are imports, the page config, the page
    list, st.navigation, the shared sidebar and nav.run()."""
    import ast

    tree = ast.parse((REPO / "app.py").read_text())
    assert not [n for n in ast.walk(tree) if isinstance(n, (ast.FunctionDef, ast.ClassDef, ast.If, ast.For,
                                                              ast.While, ast.Try, ast.With))]
    calls = {ast.unparse(n.func) for n in ast.walk(tree) if isinstance(n, ast.Call)}
    assert calls == {"st.set_page_config", "st.Page", "st.navigation", "ui.sidebar", "nav.run"}
    pages = [ast.literal_eval(n.args[0]) for n in ast.walk(tree)
             if isinstance(n, ast.Call) and ast.unparse(n.func) == "st.Page"]
    assert pages == [HOME] + PAGES and all((REPO / p).is_file() for p in pages)


# -- Home ------------------------------------------------------------------------------------------
def test_home_scorecard_matches_recall_file(standin):
    at = app(standin)
    no_error(at)
    assert at.title[0].value == "What has the model learned?"
    assert [m.label for m in at.metric][:3] == ["Plates", "Wells", "Perturbations"]
    assert at.metric[0].value == "2"
    card = df_with(at, "recall CORUM")
    rec = pd.read_csv(standin / "results" / "recall.csv")
    raw = rec[(rec.threshold == "0.05_0.95") & rec.adjusted_for.isna() & rec.mechanism.isna() & (rec.source == "CORUM")]
    got = card.set_index("embedder")["recall CORUM"]
    for _, r in raw.iterrows():
        assert got[r.embedder] == pytest.approx(r.recall)
    assert "drop adjusted for density" in card.columns and "cell-count R²" in card.columns
    assert "baseline" in set(card["kind"]) and card["kind"].iloc[0] == "model"
    # the status table lists each embedding as computed
    status = df_with(at, "written")
    assert set(status["item"]) >= {"weakly_supervised", "cell_count", "recall.csv"}
    # changing the threshold changes the numbers shown and the URL
    at.selectbox(key="home_threshold").select("0.1/0.9").run()
    card10 = df_with(at, "recall CORUM").set_index("embedder")["recall CORUM"]
    raw10 = rec[(rec.threshold == "0.1_0.9") & rec.adjusted_for.isna() & rec.mechanism.isna() & (rec.source == "CORUM")]
    for _, r in raw10.iterrows():
        assert card10[r.embedder] == pytest.approx(r.recall)
    assert at.query_params["threshold"] == "0.1/0.9"
    # the headline sentences (findings.headline) sit under the scorecard
    best = card["embedder"].iloc[0]
    assert f"Best model **{best}**" in texts(at)
    # Home is a page like the others: leaving it and coming back shows it again, with the URL state
    at.switch_page(PAGES[1]).run()
    at.switch_page(HOME).run()
    no_error(at)
    assert at.title[0].value == "What has the model learned?"
    assert at.selectbox(key="home_threshold").value == "0.1/0.9"


def test_home_bad_dataset_is_a_friendly_message(tmp_path):
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / "dataset.json").write_text("{not json")
    at = app(tmp_path / "broken")
    assert not at.exception
    assert at.error and "not valid JSON" in at.error[0].value
    at = app(tmp_path / "does-not-exist")
    assert not at.exception and "neither a folder" in at.error[0].value
    for page in PAGES + [HOME]:  # every page survives a dataset that does not load
        at.switch_page(page).run()
        assert not at.exception, page


def test_home_missing_results_and_embeddings(standin, tmp_path):
    import shutil

    d = tmp_path / "partial"
    shutil.copytree(standin, d, ignore=shutil.ignore_patterns("results", "random.parquet"))
    at = app(d)
    no_error(at)
    assert "No benchmark results yet" in texts(at)
    status = df_with(at, "written").set_index("item")
    assert not status.loc["recall.csv", "computed"] if "computed" in status else "missing" in status.loc["recall.csv", "status"]
    assert any(b.label.startswith("Compute") for b in at.button)
    for page in PAGES:
        at.switch_page(page).run()
        no_error(at)
    at.switch_page("app_pages/4_Relationships.py").run()
    assert "No per-pair results" in texts(at)


def _n_points(x) -> int:
    """Points in a plotly trace's x: a list, or a typed array (base64 ``bdata`` with a ``dtype``)."""
    if isinstance(x, dict) and "bdata" in x:
        import base64

        return len(base64.b64decode(x["bdata"])) // np.dtype(x["dtype"]).itemsize
    return len(x)


def _values(v) -> list:
    """A plotly trace's values: a list, or a typed array (base64 ``bdata`` with a ``dtype``)."""
    if isinstance(v, dict) and "bdata" in v:
        import base64

        return np.frombuffer(base64.b64decode(v["bdata"]), dtype=v["dtype"]).tolist()
    return list(v)


# -- Embeddings --------------------------------------------------------------------------------------
def test_embeddings_two_maps_recolour_and_url(standin):
    at = app(standin, PAGES[0])
    no_error(at)
    figs = charts(at)
    assert len(figs) == 2
    left = chart_json(figs[0])
    assert left["data"][0]["type"] == "scattergl"
    names = {t["name"] for t in left["data"]}
    assert {"density", "morphology", "intensity"} <= names  # coloured by planted mechanism by default
    at.selectbox(key="emb_color").select("cell_count").run()
    no_error(at)
    left = chart_json(charts(at)[0])
    assert left["data"][0]["marker"]["colorbar"]["title"]["text"] == "cell_count"
    assert at.query_params["color"] == "cell_count"
    # the right map follows its selectbox
    at.selectbox(key="emb_b").select("pixel_stats").run()
    assert "pixel_stats" in chart_json(charts(at)[1])["layout"]["title"]["text"]
    # perturbation level: one point per perturbation
    at.radio(key="emb_level").set_value("perturbation").run()
    no_error(at)
    n_pert = pd.read_csv(standin / "metadata.csv")["perturbation"].nunique()
    pts = sum(_n_points(t["x"]) for t in chart_json(charts(at)[0])["data"])
    assert pts == n_pert - 1  # every perturbation but the control, whose wells centre the map
    assert "Draw a lasso" in texts(at)


def test_embeddings_url_opens_same_view(standin):
    at = app(standin, None, a="cell_count", b="random", color="plate")
    at.switch_page(PAGES[0]).run()
    no_error(at)
    assert at.selectbox(key="emb_a").value == "cell_count"
    assert at.selectbox(key="emb_b").value == "random"
    assert at.selectbox(key="emb_color").value == "plate"


def test_embeddings_without_any_embedding(standin, tmp_path):
    import shutil

    d = tmp_path / "noemb"
    shutil.copytree(standin, d, ignore=shutil.ignore_patterns("embeddings", "results"))
    at = app(d, PAGES[0])
    no_error(at)
    assert "No embedding is computed" in texts(at)


# -- Recall ------------------------------------------------------------------------------------------
def test_recall_forest_is_the_default_view(standin):
    at = app(standin, PAGES[1])
    no_error(at)
    assert at.radio(key="rec_view").value == "Forest plot"
    figs = [chart_json(c) for c in charts(at)]
    forest, dumbbell = figs[0], figs[1]  # raw forest, then raw -> density-adjusted dumbbell
    rec = pd.read_csv(standin / "results" / "recall.csv", keep_default_na=False)
    want = rec[(rec.threshold == "0.05_0.95") & (rec.adjusted_for == "") & (rec.mechanism == "")]
    pts = [t for t in forest["data"] if t.get("x") and t["x"][0] is not None]
    assert len(pts) == len(want)
    assert "best baseline" in forest["layout"]["title"]["text"]
    assert "adjusted for density" in dumbbell["layout"]["annotations"][-1]["text"]


def test_recall_bars_follow_widgets(standin):
    at = app(standin, PAGES[1])
    at.radio(key="rec_view").set_value("Grouped bars").run()
    no_error(at)
    fig = chart_json(charts(at)[0])
    bars = [t for t in fig["data"] if t["type"] == "bar"]
    # raw + density-adjusted panels, one bar trace per embedder in each
    assert len(bars) == 2 * 4
    assert any("baseline" in t["name"] for t in bars) and bars[0]["name"] == "weakly_supervised"
    assert bars[1]["marker"]["pattern"]["shape"] == "/"  # baselines hatched
    assert any(s.get("line", {}).get("dash") == "dash" for s in fig["layout"]["shapes"])  # null line
    titles = [a.get("text") for a in fig["layout"]["annotations"]]
    assert "raw" in titles and "adjusted for density" in titles
    # the paired-bootstrap table shows the chosen threshold, raw and density-adjusted rows only
    cmp_ = df_with(at, "embedder_b")
    assert set(cmp_["threshold"]) == {"0.05/0.95"} and set(cmp_["adjusted_for"].fillna("")) == {"", "density"}
    want = pd.read_csv(standin / "results" / "comparisons.csv")
    assert len(cmp_) == (want["threshold"] == "0.05_0.95").sum()
    at.multiselect(key="rec_adjust").set_value([]).run()
    bars = [t for t in chart_json(charts(at)[0])["data"] if t["type"] == "bar"]
    assert len(bars) == 4
    at.multiselect(key="rec_embedders").set_value(["weakly_supervised", "random"]).run()
    bars = [t for t in chart_json(charts(at)[0])["data"] if t["type"] == "bar"]
    assert [b["name"] for b in bars] == ["weakly_supervised", "random (baseline)"]
    # recall by planted mechanism is shown on the simulated screen
    assert any("mechanism" in s for s in [h.value for h in at.subheader])
    at.multiselect(key="rec_embedders").set_value([]).run()
    no_error(at)
    assert "Pick at least one embedder" in texts(at)


def test_recall_mechanism_numbers(standin):
    at = app(standin, PAGES[1])
    no_error(at)
    # the figures above it (forest, dumbbell, three nulls) vary with the view: find it by its x axis
    figs = [chart_json(c) for c in charts(at)]
    mech = next(f for f in figs if f["layout"].get("xaxis", {}).get("title", {}).get("text") == "planted mechanism")
    src = at.selectbox(key="rec_mech_source").value
    assert src == "CORUM"  # sources sorted: CORUM is the default
    rec = pd.read_csv(standin / "results" / "recall.csv")
    want = rec[(rec.threshold == "0.05_0.95") & (rec.embedder == "cell_count") & rec.adjusted_for.isna()
               & (rec.source == src) & rec.mechanism.notna()].set_index("mechanism").recall
    tr = next(t for t in mech["data"] if t["name"] == "cell_count (baseline)")
    y = dict(zip(tr["x"], _values(tr["y"])))
    assert set(y) == set(want.index) == {"density", "intensity", "morphology"}
    for m in want.index:
        assert y[m] == pytest.approx(want[m])


# -- Confounders -------------------------------------------------------------------------------------
def test_confounders_heatmaps(standin):
    at = app(standin, PAGES[2])
    no_error(at)
    figs = [chart_json(f) for f in charts(at)]
    assert [f["data"][0]["type"] for f in figs] == ["heatmap", "bar", "heatmap"]
    probe = figs[0]["data"][0]
    assert probe["x"][0] == "cell_count" and "weakly_supervised" in probe["y"]
    probes = pd.read_csv(standin / "results" / "probes.csv")
    want = probes[(probes.embedder == "cell_count") & (probes.confounder == "cell_count") & (probes.metric == "r2")]
    row = probe["y"].index("cell_count")
    assert float(probe["text"][row][0]) == pytest.approx(want.value.iloc[0], abs=0.006)
    assert any(t["name"] == "chance" for t in figs[1]["data"])


# -- Relationships -----------------------------------------------------------------------------------
def test_relationships_gene_search_and_pair(standin):
    pairs = pd.read_parquet(standin / "results" / "pairs.parquet")
    g1, g2 = pairs.entity1.iloc[0], pairs.entity2.iloc[0]
    at = app(standin, PAGES[3])
    no_error(at)
    assert "Choose a pair" in texts(at)
    at.text_input(key="rel_gene").input(g1).run()
    no_error(at)
    tbl = df_with(at, "entity1")
    assert ((tbl.entity1 == g1) | (tbl.entity2 == g1)).all() and "planted mechanism" in tbl.columns
    at.text_input(key="rel_pair_text").input(f"{g1},{g2}").run()
    no_error(at)
    assert any(f"{g1} – {g2}" in h.value for h in at.header)
    assert at.query_params["pair"] == f"{g1},{g2}"
    assert len(at.get("image")) > 0
    sim = df_with(at, "percentile").set_index("embedder")
    assert set(sim.index) == {"weakly_supervised", "cell_count", "pixel_stats", "random"}
    # the page's percentile is the benchmark's: the same map recipe and a null of all pairs
    bench = pairs[(pairs.entity1 == g1) & (pairs.entity2 == g2) & (pairs.adjusted_for.fillna("") == "")]
    bench = bench.drop_duplicates("embedder").set_index("embedder")["percentile"] * 100
    common = sim.index.intersection(bench.index)
    assert len(common) >= 3
    np.testing.assert_allclose(sim.loc[common, "percentile"].astype(float), bench.loc[common], atol=1.0)
    # unknown gene: friendly message
    at.text_input(key="rel_gene").input("NOSUCHGENE").run()
    no_error(at)
    assert "has no known relationship" in texts(at)
    # a pair that is not in the screen
    at.text_input(key="rel_pair_text").input("NOSUCH,ALSONOT").run()
    no_error(at)
    assert "not a perturbation of this screen" in texts(at)


def test_relationships_channel_toggle_changes_images(standin):
    pairs = pd.read_parquet(standin / "results" / "pairs.parquet")
    g1, g2 = pairs.entity1.iloc[0], pairs.entity2.iloc[0]
    at = app(standin, None, pair=f"{g1},{g2}")
    at.switch_page(PAGES[3]).run()
    no_error(at)
    n_all = len(at.get("image"))
    at.toggle(key="rel_per_channel").set_value(True).run()
    assert len(at.get("image")) > n_all  # grey per-channel images added
    at.multiselect(key="rel_channels").set_value(["DNA"]).run()
    no_error(at)


# -- the real pipeline's files -------------------------------------------------------------------------
@pytest.fixture(scope="module")
def tiny_demo(tmp_path_factory):
    from standin_dataset import build_tiny_demo

    return build_tiny_demo(tmp_path_factory.mktemp("real") / "tiny")


@pytest.mark.slow
def test_every_page_on_the_real_tiny_demo(tiny_demo):
    at = app(tiny_demo)
    no_error(at)
    card = df_with(at, "mean recall")
    assert "cell_count" in set(card["embedder"]) and "drop adjusted for density" in card.columns
    from bioviz.dashboard.guide import render_guide
    from bioviz.screen import read_screen

    for page in PAGES:
        at.switch_page(page).run()
        no_error(at)
        if page.endswith("Guide.py"):  # text and images, no figure: the guide with this dataset's numbers
            want = render_guide(read_screen(tiny_demo), drop_title=True).strip()
            assert want in [m.value.strip() for m in at.markdown]
        else:
            assert charts(at) or page.endswith("Relationships.py"), page
    at.switch_page("app_pages/4_Relationships.py").run()
    pairs = pd.read_parquet(tiny_demo / "results" / "pairs.parquet")
    a, b = pairs.entity1.iloc[0], pairs.entity2.iloc[0]
    at.text_input(key="rel_pair_text").input(f"{a},{b}").run()
    no_error(at)
    assert len(at.get("image")) > 0 and len(charts(at)) == 1
