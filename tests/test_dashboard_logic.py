"""Plain functions behind the dashboard: dataset discovery, URL state, selection-to-rows, composites,
result-table normalisation, the scorecard, UMAP caching and the pair drill-down."""
import numpy as np
import pandas as pd
import pytest

from bioviz.dashboard import datasets as ds
from bioviz.dashboard import urlstate
from bioviz.dashboard.composite import composite, hex_to_rgb, montage, stretch
from bioviz.dashboard.pairs import (confounder_comparison, example_wells, model_only_pairs, null_similarities,
                                    pair_similarity, parse_query, percentile_in, perturbation_rows,
                                    relationship_table)
from bioviz.dashboard.selection import (resolve_linked, rows_to_wells, selected_table, selection_to_rows,
                                        wells_to_rows)
from bioviz.errors import DatasetError


# -- datasets ----------------------------------------------------------------------------------
def test_list_and_resolve_datasets(tmp_path, standin):
    (tmp_path / "zeta").mkdir()
    (tmp_path / "zeta" / "dataset.json").write_text("{}")
    (tmp_path / "demo").mkdir()
    (tmp_path / "demo" / "dataset.json").write_text("{}")
    (tmp_path / "notadataset").mkdir()
    assert ds.list_datasets(tmp_path) == ["demo", "zeta"]
    assert ds.resolve_dataset("demo", tmp_path) == tmp_path / "demo"
    assert ds.resolve_dataset(str(standin), tmp_path) == standin.resolve()
    assert ds.dataset_label(tmp_path / "demo", tmp_path) == "demo"
    assert ds.dataset_label(standin, tmp_path) == str(standin)
    with pytest.raises(DatasetError, match="neither"):
        ds.resolve_dataset("nope", tmp_path)
    with pytest.raises(DatasetError):
        ds.resolve_dataset("", tmp_path)


def test_status_lists_computed_and_missing(standin):
    from bioviz.bench import results

    st = ds.dataset_status(standin, registered=["weakly_supervised", "cell_count", "morphology"])
    emb = st[st["kind"].str.startswith("embedding")].set_index("item")
    assert emb.loc["cell_count", "computed"] and not emb.loc["morphology", "computed"]
    assert ds.missing_embedders(st) == ["morphology"]
    assert st.set_index("item").loc["recall.csv", "computed"]
    assert emb.loc["weakly_supervised", "kind"] == "embedding (model)"
    assert emb.loc["random", "kind"] == "embedding (null)"  # noise calibrates chance; it is no baseline
    # the results rows are bench.results' file list, nothing hand-typed
    assert st.loc[st["kind"].str.startswith("benchmark result"), "item"].tolist() == results.file_names()


def test_stale_and_foreign_caches_say_recompute_and_are_not_loaded(standin_copy):
    """bioviz.embed decides what is computed: a cache of other data is stale, a parquet that bioviz
    did not write is foreign; the dashboard lists neither as computed and loads neither."""
    from bioviz import embed
    from bioviz.screen import read_screen

    s = read_screen(standin_copy)
    assert embed.embedding_status(s)["cell_count"] == embed.UP_TO_DATE
    # foreign: features without bioviz's metadata
    pd.read_parquet(embed.embedding_file(s, "random")).to_parquet(embed.embedding_file(s, "random"))
    # stale: the data changed under a cache (one more metadata column changes the fingerprint)
    meta = pd.read_csv(standin_copy / "metadata.csv")
    meta["moa"] = ""
    meta.to_csv(standin_copy / "metadata.csv", index=False)
    s = read_screen(standin_copy)
    status = embed.embedding_status(s)
    assert status["random"] == embed.FOREIGN and status["cell_count"] == embed.STALE
    assert embed.computed_embedders(s) == []
    st = ds.dataset_status(s).set_index("item")
    assert st.loc["cell_count", "status"] == "stale: recompute" and not st.loc["cell_count", "computed"]
    assert st.loc["random", "status"] == "stale: recompute"
    assert st.loc["confounders", "status"] == "stale: recompute"
    assert {"cell_count", "random"} <= set(ds.missing_embedders(ds.dataset_status(s)))
    with pytest.raises(embed.EmbedderError, match="out of date"):
        embed.load_embedding(s, "cell_count")


@pytest.mark.parametrize("th,null", [("0.05/0.95", 0.10), ("0.05_0.95", 0.10), ("0.1/0.9", 0.2), ("0.1_0.9", 0.2)])
def test_null_recall(th, null):
    assert ds.null_recall(th) == pytest.approx(null)


def test_normalize_recall_for_display():
    raw = pd.DataFrame(dict(embedder=["weakly_supervised", "cell_count"], source=["CORUM"] * 2,
                            threshold=["0.05_0.95", "0.1_0.9"], recall=[0.3, 0.4], ci_low=[0.2, 0.3],
                            ci_high=[0.4, 0.5], adjusted_for=[np.nan, "density"], mechanism=[np.nan, "density"]))
    n = ds.normalize_recall(raw)
    assert list(n["threshold"]) == ["0.05/0.95", "0.1/0.9"]
    assert list(n["adjusted_for"]) == ["", "density"] and list(n["mechanism"]) == ["", "density"]
    assert list(n["null"]) == pytest.approx([0.1, 0.2]) and list(n["kind"]) == ["model", "baseline"]


def test_scorecard_numbers_match_recall_file(standin):
    rec = ds.normalize_recall(pd.read_csv(standin / "results" / "recall.csv"))
    probes = pd.read_csv(standin / "results" / "probes.csv")
    card = ds.scorecard(rec, probes, threshold="0.05/0.95").set_index("embedder")
    raw = rec[(rec.threshold == "0.05/0.95") & (rec.adjusted_for == "") & (rec.mechanism == "")]
    adj = rec[(rec.threshold == "0.05/0.95") & (rec.adjusted_for == "density") & (rec.mechanism == "")]
    for emb in raw["embedder"].unique():
        r = raw[raw.embedder == emb].set_index("source")["recall"]
        a = adj[adj.embedder == emb].set_index("source")["recall"]
        assert card.loc[emb, "recall CORUM"] == pytest.approx(r["CORUM"])
        public = [c for c in r.index if c != "planted"]  # planted is the truth, not a sixth source
        if a.isna().all():  # nothing left / ties everywhere after adjusting: no drop, the reason instead
            assert np.isnan(card.loc[emb, "drop adjusted for density"])
            continue
        assert card.loc[emb, "drop adjusted for density"] == pytest.approx((r - a)[public].mean())
        assert card.loc[emb, "mean recall"] == pytest.approx(r[public].mean())
    cc = probes[(probes.confounder == "cell_count") & (probes.metric == "r2")].set_index("embedder")["value"]
    assert card.loc["cell_count", "cell-count R²"] == pytest.approx(cc["cell_count"])
    assert card["kind"].iloc[0] == "model"  # models lead the table


def test_normalize_cka_square_from_long():
    long = pd.DataFrame(dict(embedder_a=["m", "m", "random"], embedder_b=["m", "random", "random"],
                             cka=[1.0, 0.2, 1.0]))
    m = ds.normalize_cka(long)
    assert m.loc["random", "m"] == pytest.approx(0.2) and m.loc["m", "random"] == pytest.approx(0.2)
    assert list(m.index) == ["m", "random"]


def test_normalize_pairs_keeps_raw_rows_in_percent():
    p = pd.DataFrame(dict(source="S", entity1=["A", "A"], entity2=["B", "B"], embedder="m",
                          adjusted_for=["", "density"], cosine=[0.5, 0.1], percentile=[0.97, 0.6]))
    n = ds.normalize_pairs(p)
    assert len(n) == 1 and n["percentile"].iloc[0] == pytest.approx(97.0)


def test_summarize_activity():
    act = pd.DataFrame(dict(embedder=["m"] * 4, perturbation=list("abcd"), metric=["activity"] * 4,
                            mean_average_precision=[0.1, 0.2, 0.3, 0.4], corrected_p_value=0.01,
                            below_corrected_p=[True, True, False, False]))
    s = ds.summarize_activity(act).set_index("embedder")
    assert s.loc["m", "fraction significant: activity"] == pytest.approx(0.5)
    assert s.loc["m", "mean mAP: activity"] == pytest.approx(0.25)


# -- URL state ---------------------------------------------------------------------------------
def test_url_roundtrip():
    assert urlstate.encode(["a", "b"]) == "a,b"
    assert urlstate.decode_list("a, b,,c", allowed=["a", "c"]) == ["a", "c"]
    assert urlstate.decode_pair("TP53,MDM2") == ("TP53", "MDM2")
    assert urlstate.decode_pair("TP53|MDM2") == ("TP53", "MDM2")
    assert urlstate.decode_pair("TP53") is None
    assert urlstate.decode_choice("x", ["a", "b"]) == "a"  # a stale link falls back
    assert urlstate.decode_choice("b", ["a", "b"]) == "b"
    assert urlstate.page_url("recall", {"dataset": "demo", "gene": ""}) == "recall?dataset=demo"


# -- selection ---------------------------------------------------------------------------------
def test_selection_to_rows_maps_curves_back():
    curves = [np.array([5, 7]), np.array([0, 1, 2])]
    sel = {"points": [{"curve_number": 1, "point_index": 2}, {"curve_number": 0, "point_index": 1},
                      {"curve_number": 0, "point_index": 1}, {"curve_number": 9, "point_index": 0},
                      {"curve_number": 0, "point_index": 99}]}
    assert selection_to_rows(sel, curves).tolist() == [2, 7]
    assert selection_to_rows(None, curves).tolist() == []
    assert selection_to_rows({"points": []}, curves).tolist() == []


def test_scatter_curves_cover_every_row_and_hover_layer():
    from bioviz.plots import embedding_scatter

    n = 500
    df = pd.DataFrame(dict(x=np.arange(n, dtype=float), y=0.0, well_id=[f"w{i}" for i in range(n)],
                           plate=np.repeat(["P1", "P2"], n // 2), cell_count=np.arange(n)))
    fig, curves = embedding_scatter(df, "plate", hover_cols=["well_id", "plate"])
    assert len(fig.data) == 2 and sorted(np.concatenate(curves).tolist()) == list(range(n))
    # the x of every drawn point equals the row it maps to: selection_to_rows is exact
    for tr, rows in zip(fig.data, curves):
        assert np.array_equal(np.asarray(tr.x), df["x"].to_numpy()[rows])
    fig, curves = embedding_scatter(df, "cell_count", hover_cols=["well_id"], max_hover=100, highlight=[3, 4])
    assert [t.name for t in fig.data] == ["cell_count", "hover sample", "selected (2)"]
    assert fig.data[0].hoverinfo == "skip" and len(fig.data[1].x) == 100
    assert curves[2].tolist() == [3, 4]
    assert fig.data[0].marker.colorbar.title.text == "cell_count"


def test_categorical_palette_caps_categories():
    from bioviz.plots import CATEGORICAL_MAX, embedding_scatter

    n = 300
    df = pd.DataFrame(dict(x=np.random.rand(n), y=np.random.rand(n), g=[f"g{i % 40}" for i in range(n)]))
    fig, curves = embedding_scatter(df, "g", categorical=True)
    assert len(fig.data) == CATEGORICAL_MAX + 1 and fig.data[0].name.startswith("other")
    assert sum(len(c) for c in curves) == n


def test_resolve_linked_selection():
    prev = {"a": (), "b": ()}
    assert resolve_linked(prev, {"a": ("w1", "w2"), "b": ()}, None) == ("a", ("w1", "w2"))
    # a lasso on the other map replaces it
    prev = {"a": ("w1", "w2"), "b": ()}
    assert resolve_linked(prev, {"a": ("w1", "w2"), "b": ("w9",)}, "a", ("w1", "w2")) == ("b", ("w9",))
    # another widget reran the page: the active chart keeps its selection
    assert resolve_linked({"a": ("w1",), "b": ()}, {"a": ("w1",), "b": ()}, "a", ("w1",)) == ("a", ("w1",))
    # a redrawn figure comes back with an empty selection: the kept selection survives
    assert resolve_linked({"a": ("w1",), "b": ()}, {"a": (), "b": ()}, "a", ("w1",)) == ("a", ("w1",))
    # the same lasso drawn again after a redraw counts as a new choice
    assert resolve_linked({"a": (), "b": ()}, {"a": ("w1",), "b": ()}, "b", ("w7",)) == ("a", ("w1",))


def test_rows_wells_and_selected_table(standin):
    from bioviz.screen import read_screen

    s = read_screen(standin)
    frame = s.obs.iloc[::-1].reset_index(drop=True)
    wells = rows_to_wells(frame, [0, 2])
    assert wells == [frame.well_id[0], frame.well_id[2]]
    assert sorted(wells_to_rows(frame, wells + ["absent"]).tolist()) == [0, 2]
    from bioviz.embed import load_confounders

    conf = load_confounders(s)
    t = selected_table(s.obs, conf, wells)
    assert set(t["well_id"]) == set(wells) and "cell_count" in t and not any(c.startswith("image_") for c in t)
    assert t.set_index("well_id").loc[wells[0], "cell_count"] == conf.set_index("well_id").loc[wells[0], "cell_count"]
    assert selected_table(s.obs, conf, []).empty


# -- images ------------------------------------------------------------------------------------
def test_composite_false_colour_and_toggles():
    site = np.zeros((3, 8, 8), np.float32)
    site[0, :4] = 0.01   # dim DNA: the stretch must make it full blue
    site[1, :, :4] = 0.9
    site[2] = 0.5        # flat: stays black rather than dividing by zero
    colors = {"DNA": "#0000FF", "ER": "#00FF00", "RNA": "#FF0000"}
    rgb = composite(site, colors, ["DNA", "ER", "RNA"])
    assert rgb.dtype == np.uint8 and rgb.shape == (8, 8, 3)
    assert tuple(rgb[0, 0]) == (0, 255, 255)  # DNA blue + ER green
    assert tuple(rgb[7, 7]) == (0, 0, 0)
    only_dna = composite(site, colors, ["DNA", "ER", "RNA"], channels_on=["DNA"])
    assert tuple(only_dna[0, 0]) == (0, 0, 255) and tuple(only_dna[0, 7]) == (0, 0, 255)
    assert tuple(composite(site, colors, ["DNA", "ER", "RNA"], channels_on=[])[0, 0]) == (0, 0, 0)
    assert np.allclose(hex_to_rgb("#FF00FF"), [1, 0, 1])
    s = stretch(np.linspace(0, 1, 1000).reshape(10, 100))
    assert s.min() == 0 and s.max() == 1
    m = montage([rgb, rgb, rgb], ncols=2, pad=1)
    assert m.shape == (17, 17, 3)


# -- UMAP cache ----------------------------------------------------------------------------------
def test_umap_cached_on_disk_and_invalidated(standin_copy, monkeypatch):
    from bioviz.dashboard import umap_cache
    from bioviz.embed import cache, create_embedder, embedding_file
    from bioviz.screen import read_screen

    s = read_screen(standin_copy)
    calls = []
    real = umap_cache.compute_layout

    def counting(x, *a, **k):
        calls.append(len(x))
        return real(x, *a, **k)

    monkeypatch.setattr(umap_cache, "compute_layout", counting)
    a = umap_cache.umap_layout(s, "cell_count", level="perturbation")
    b = umap_cache.umap_layout(s, "cell_count", level="perturbation")
    assert calls == [len(a)] and a.equals(b)
    # the benchmark's map: every perturbation but the control
    assert set(a["id"]) == set(s.obs["perturbation"]) - {s.control_label}
    path = umap_cache.layout_path(s, "cell_count", "perturbation")
    assert path.is_file() and path.parent == s.cache_dir / "umap"
    # other settings: another file; a rewritten embedding: another key
    umap_cache.umap_layout(s, "cell_count", level="perturbation", n_neighbors=5)
    assert len(calls) == 2
    before = umap_cache.layout_path(s, "cell_count", "perturbation")
    import time

    time.sleep(0.01)
    e = create_embedder("cell_count")
    e.resolve(s)
    cache.write_cache(s, e, pd.read_parquet(embedding_file(s, "cell_count")), s.fingerprint())
    assert umap_cache.layout_path(s, "cell_count", "perturbation") != before
    assert umap_cache.umap_layout(s, "cell_count", level="perturbation", compute=False) is None


def test_maps_in_views_follow_the_benchmark_recipe(standin_copy):
    """summary.json records how the benchmark built its maps; the profiles behind the pair
    similarity, the nulls and the perturbation UMAP are built the same way."""
    import json

    from bioviz.bench.maps import build_map
    from bioviz.bench.results import map_recipe, result_path
    from bioviz.dashboard import umap_cache
    from bioviz.embed import load_embedding
    from bioviz.screen import read_screen

    s = read_screen(standin_copy)
    assert map_recipe(s) == {"method": "pca_centerscale", "aggregation": "mean", "adjust": ["density"]}
    key = umap_cache.layout_key(s, "cell_count", "perturbation", 15, 0.1, 0)
    p = result_path(s, "summary")
    summ = json.loads(p.read_text())
    summ["recipe"] = {"method": "centerscale", "aggregation": "median", "adjust": []}
    p.write_text(json.dumps(summ))
    assert umap_cache.map_args(s) == {"method": "centerscale", "aggregation": "median"}
    assert umap_cache.layout_key(s, "cell_count", "perturbation", 15, 0.1, 0) != key
    emb = load_embedding(s, "cell_count")
    prof = umap_cache.perturbation_profiles(emb, s.obs, s.control_label, **umap_cache.map_args(s))
    ref = build_map(emb, s.obs, s.control_label, method="centerscale", aggregation="median", keep_controls=True)
    pd.testing.assert_frame_equal(prof, ref)


# -- pairs ---------------------------------------------------------------------------------------
def test_parse_query():
    assert parse_query("TP53") == ["TP53"]
    assert parse_query("TP53 MDM2") == ["TP53", "MDM2"]
    assert parse_query("TP53,MDM2") == ["TP53", "MDM2"]
    # hyphens belong to symbols: HLA-A and NKX2-1 are single genes, with or without a vocabulary
    assert parse_query("HLA-A") == ["HLA-A"] and parse_query("NKX2-1") == ["NKX2-1"]
    assert parse_query("HLA-A", known=["HLA-A", "HLA", "A"]) == ["HLA-A"]
    assert parse_query("nkx2-1 HLA-A") == ["nkx2-1", "HLA-A"]
    # a hyphenated pair is split only when the screen knows both halves and not the whole
    assert parse_query("TP53-MDM2", known=["TP53", "MDM2"]) == ["TP53", "MDM2"]
    assert parse_query("TP53-MDM2") == ["TP53-MDM2"]
    assert parse_query("") == []


def test_relationship_table_and_model_only(standin):
    pairs = ds.normalize_pairs(pd.read_parquet(standin / "results" / "pairs.parquet"))
    g = pairs["entity1"].iloc[0]
    t = relationship_table(pairs, "CORUM", g.lower(), "recalled_0.05_0.95")
    assert len(t) and ((t.entity1 == g) | (t.entity2 == g)).all()
    row = t.iloc[0]
    src = pairs[(pairs.source == "CORUM") & (pairs.entity1 == row.entity1) & (pairs.entity2 == row.entity2)]
    for _, r in src.iterrows():
        assert row[f"{r.embedder} pct"] == pytest.approx(round(r.percentile, 1))
        if r["recalled_0.05_0.95"] and ds.embedder_kind(r.embedder) == "baseline":
            assert r.embedder in row["baselines that also recall it"]
    assert relationship_table(pairs, "CORUM", "NOSUCHGENE", "recalled_0.05_0.95").empty
    # every row against a plain per-pair scan: who recalls it, and the planted mechanism in either order
    full = relationship_table(pairs, "CORUM", None, "recalled_0.05_0.95")
    keys = full[["entity1", "entity2"]].drop_duplicates()
    truth = pd.DataFrame({"entity1": [keys.entity2.iloc[0], keys.entity1.iloc[1]],
                          "entity2": [keys.entity1.iloc[0], keys.entity2.iloc[1]],
                          "mechanism": ["density", "morphology"]})
    full = relationship_table(pairs, "CORUM", None, "recalled_0.05_0.95", truth)
    assert list(full["planted mechanism"].iloc[:2]) == ["density", "morphology"]
    assert (full["planted mechanism"].iloc[2:] == "").all()
    for _, row in full.iterrows():
        hit = pairs[(pairs.source == "CORUM") & (pairs.entity1 == row.entity1) & (pairs.entity2 == row.entity2)
                    & pairs["recalled_0.05_0.95"].astype(bool)]
        models = sorted(e for e in hit.embedder if ds.embedder_kind(e) == "model")
        bases = sorted(e for e in hit.embedder if ds.embedder_kind(e) in ("baseline", "handcrafted"))
        assert row["recalled by models"] == ", ".join(models)
        assert row["baselines that also recall it"] == ", ".join(bases)
    # the kinds the benchmark recorded win over the name: a model recorded as handcrafted features
    # (a precomputed CellProfiler table) is a baseline the pair is attributed to, never "a model"
    recalled = full[full["recalled by models"].str.contains("weakly_supervised")]
    assert len(recalled)
    as_crafted = relationship_table(pairs, "CORUM", None, "recalled_0.05_0.95",
                                    kinds={"weakly_supervised": "handcrafted"})
    again = as_crafted.set_index(["entity1", "entity2"]).loc[recalled.set_index(["entity1", "entity2"]).index]
    assert not again["recalled by models"].str.contains("weakly_supervised").any()
    assert again["baselines that also recall it"].str.contains("weakly_supervised").all()
    mo_k = model_only_pairs(pairs, "CORUM", "recalled_0.05_0.95", kinds={"weakly_supervised": "handcrafted"})
    assert not mo_k["recalled by"].str.contains("weakly_supervised").any()
    mo = model_only_pairs(pairs, "CORUM", "recalled_0.05_0.95")
    assert len(mo)  # the stand-in plants morphology complexes only the model sees
    for _, r in mo.iterrows():
        hit = pairs[(pairs.source == "CORUM") & (pairs.entity1 == r.entity1) & (pairs.entity2 == r.entity2)
                    & pairs["recalled_0.05_0.95"]]
        assert set(hit.embedder.map(ds.embedder_kind)) == {"model"}


def test_example_wells_controls_from_same_plates(standin):
    from bioviz.screen import read_screen

    s = read_screen(standin)
    genes = s.obs.loc[~s.obs.is_control, "perturbation"].unique()
    g = example_wells(s.obs, genes[0], genes[1], s.control_label, n=2)
    assert set(g) == {genes[0], genes[1], s.control_label}
    plates = set(g[genes[0]].plate) | set(g[genes[1]].plate)
    assert set(g[s.control_label].plate) <= plates and g[s.control_label].is_control.all()


def test_pair_drilldown_fast_paths_match_a_plain_scan(standin):
    """The cached row index and the aligned-confounder path give what a plain scan of every well gives,
    whatever the case the user typed, and whether or not the confounder table is in obs's order."""
    from bioviz.embed import load_confounders
    from bioviz.screen import read_screen

    s = read_screen(standin)
    obs, conf = s.obs, load_confounders(s)
    rows = perturbation_rows(obs)
    up = obs["perturbation"].astype(str).str.upper()
    assert sorted(rows) == sorted(up.unique())
    for name, pos in rows.items():
        assert list(pos) == list(np.flatnonzero((up == name).to_numpy()))
    genes = obs.loc[~obs.is_control, "perturbation"].unique()
    a, b = genes[0].lower(), genes[1]
    g = example_wells(obs, a, b, s.control_label, n=2, rows=rows)
    assert g[a].perturbation.str.upper().eq(a.upper()).all() and len(g[a]) == 2
    num = [c for c in conf.columns if c != "well_id" and pd.api.types.is_numeric_dtype(conf[c])
           and c not in ("row", "col")]
    shuffled = conf.sample(frac=1.0, random_state=1)  # not in obs's order: the isin path
    for table in (conf, shuffled):
        got = confounder_comparison(table, obs, g, rows=rows)
        for label in (a, b):
            ids = set(obs.loc[up == label.upper(), "well_id"])
            want = conf[conf.well_id.isin(ids)][num].astype(float).mean()
            col = f"{label} (n={len(ids)})"
            np.testing.assert_allclose(got[col].to_numpy(), want.to_numpy(), rtol=1e-12)
        plates = set(g[a].plate) | set(g[b].plate)
        ids = set(obs.loc[obs.is_control & obs.plate.isin(plates), "well_id"])
        col = f"{s.control_label} (n={len(ids)})"
        want = conf[conf.well_id.isin(ids)][num].astype(float).mean()
        np.testing.assert_allclose(got[col].to_numpy(), want.to_numpy(), rtol=1e-12)


def test_null_and_pair_similarity():
    prof = pd.DataFrame({"perturbation": ["A", "B", "C", "D"], "f0": [1.0, 1.0, -1.0, 0.0],
                         "f1": [0.0, 0.1, 0.0, 1.0]})
    null = null_similarities(prof)
    assert len(null) == 6
    v = pair_similarity(prof, "a", "B")
    assert v == pytest.approx(1 / np.sqrt(1.01))
    assert pair_similarity(prof, "A", "Z") is None
    assert percentile_in(np.sort(null), v) > 80
    assert percentile_in(np.array([0.1, 0.2, 0.3, 0.4]), 0.25) == pytest.approx(50.0)
    assert percentile_in(np.array([0.1, 0.2, 0.3, 0.4]), 0.2) == pytest.approx(37.5)
    assert np.isnan(percentile_in(np.array([]), 0.2))
