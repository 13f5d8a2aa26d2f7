"""``bioviz.bench.results`` owns results/: its file list and columns are what run_benchmark writes,
what the CLI reports and what docs/design.md shows."""
import json
import re
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from bioviz.bench import results

REPO = Path(__file__).resolve().parents[1]


def test_design_doc_lists_the_results_layout_from_the_module():
    text = (REPO / "docs" / "design.md").read_text()
    block = re.search(r"<!-- results:begin -->\n(.*?)\n<!-- results:end -->", text, re.S)
    assert block, "docs/design.md lost its results block"
    assert block.group(1) == results.describe_markdown()


def test_every_file_has_columns_and_dtypes():
    for name in results.FILES:
        if name != "summary":
            assert list(results.COLUMNS[name]) == list(results.COL_DTYPES[name]), name


def test_run_benchmark_writes_exactly_the_declared_columns(standin):
    from bioviz.screen import read_screen

    s = read_screen(standin, check_images=False)
    res = results.read_results(s)
    summ = res["summary"]
    for name, df in res.items():
        if name == "summary" or df is None:
            continue
        assert list(df.columns) == results.table_columns(name, summ["thresholds"]), name
    assert res["retrieval"] is None  # optional: the stand-in has no moa/target labels
    assert summ["recipe"] == {"method": "pca_centerscale", "aggregation": "mean", "adjust": ["density"]}
    assert results.map_recipe(s) == summ["recipe"]
    # '' means raw / all pairs: it survives the CSV round trip
    assert set(res["recall"]["adjusted_for"]) == {"", "density"} and "" in set(res["recall"]["mechanism"])


def test_write_read_round_trip(tmp_path):
    class Fake:  # write_results needs only results_dir
        results_dir = tmp_path / "results"

    rec = pd.DataFrame(dict(embedder=["a"], source=["CORUM"], threshold=["0.05_0.95"], recall=[0.5], ci_low=[0.4],
                            ci_high=[0.6], adjusted_for=[""], mechanism=[""], n_pairs=[4], null_size=[10]))
    written = results.write_results(Fake, {"recall": rec, "retrieval": pd.DataFrame()}, {"thresholds": ["0.05_0.95"]})
    assert set(written) == {"recall", "summary"}  # an empty optional table is not written
    back = results.read_results(Fake)
    # a file written before null_model existed reads back as the all-pairs null
    assert (back["recall"].pop("null_model") == "all").all()
    pd.testing.assert_frame_equal(back["recall"], rec)
    assert back["pairs"] is None and back["summary"] == {"thresholds": ["0.05_0.95"]}
    assert results.map_recipe(Fake) == results.DEFAULT_RECIPE
    with pytest.raises(KeyError):
        results.write_results(Fake, {"nonsense": rec}, {})


@pytest.mark.slow
def test_cli_benchmark_message_and_recipe_follow_options(standin_copy):
    r = subprocess.run([sys.executable, "-m", "bioviz", "benchmark", "--dataset", str(standin_copy),
                        "--embedders", "cell_count,random", "--map-method", "centerscale", "--aggregation",
                        "median", "--sources", "CORUM", "--n-boot", "20", "--quiet"],
                       capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr
    assert r.stderr.strip() == ""  # --quiet: no progress bar
    listed = r.stdout.split("wrote ", 1)[1].split(" to ")[0].split(", ")
    assert listed == [f for f in results.file_names() if (standin_copy / "results" / f).is_file()]
    summ = json.loads((standin_copy / "results" / "summary.json").read_text())
    assert summ["recipe"] == {"method": "centerscale", "aggregation": "median", "adjust": []}
    assert summ["embedders"][:2] == ["cell_count", "random"]  # then the confounder-only baselines
