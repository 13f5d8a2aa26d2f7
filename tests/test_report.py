"""`bioviz report`: one self-contained HTML page with the dashboard's figures and tables."""
import base64
import re
import subprocess
import sys

import pandas as pd
import pytest


def test_report_is_self_contained_with_figures_and_tables(standin, tmp_path):
    out = tmp_path / "report.html"
    r = subprocess.run([sys.executable, "-m", "bioviz", "report", "--dataset", str(standin), "--out", str(out)],
                       capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr
    html = out.read_text()
    # offline: plotly.js inlined once, no script or stylesheet fetched from elsewhere
    assert html.count("plotly.js v") >= 1 or "Plotly" in html
    assert not re.search(r"<script[^>]+src=['\"]https?:", html)
    assert not re.search(r"<link[^>]+href=['\"]https?:", html)
    for fig in ("fig-recall", "fig-recall_by_mechanism", "fig-probe_r2", "fig-plate_leakage", "fig-cka",
                "fig-umap_weakly_supervised"):
        assert f'id="{fig}"' in html, fig
    assert html.count("data:image/png;base64,") >= 4  # example wells in false colour
    # every table carries its CSV, and the scorecard's numbers are the recall file's
    links = re.findall(r"download='([^']+)\.csv' href='data:text/csv;base64,([^']+)'", html)
    names = [n for n, _ in links]
    assert "scorecard" in names and "recall" in names and "probes" in names
    card = pd.read_csv(pd.io.common.StringIO(base64.b64decode(dict(links)["scorecard"]).decode()))
    rec = pd.read_csv(standin / "results" / "recall.csv")
    raw = rec[(rec.threshold == "0.05_0.95") & rec.adjusted_for.isna() & rec.mechanism.isna() & (rec.source == "CORUM")]
    got = card.set_index("embedder")["recall CORUM"]
    for _, row in raw.iterrows():
        assert got[row.embedder] == pytest.approx(row.recall)


def test_report_without_results_is_one_line(tmp_path, standin):
    import shutil

    d = tmp_path / "nores"
    shutil.copytree(standin, d, ignore=shutil.ignore_patterns("results"))
    r = subprocess.run([sys.executable, "-m", "bioviz", "report", "--dataset", str(d), "--out",
                        str(tmp_path / "x.html")], capture_output=True, text=True, timeout=300)
    assert r.returncode == 2
    assert "bioviz benchmark" in r.stderr and len(r.stderr.strip().splitlines()) == 1
    r = subprocess.run([sys.executable, "-m", "bioviz", "report", "--dataset", str(tmp_path / "nope")],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 2 and "neither" in r.stderr


def test_app_command_line():
    from bioviz.commands.app import APP, command

    cmd = command(8600)
    assert cmd[1:4] == ["-m", "streamlit", "run"] and cmd[4] == str(APP) and APP.is_file()
    assert cmd[cmd.index("--server.port") + 1] == "8600"
    assert cmd[cmd.index("--server.headless") + 1] == "true"
    assert cmd[cmd.index("--browser.gatherUsageStats") + 1] == "false"
    r = subprocess.run([sys.executable, "-m", "bioviz", "app", "--help"], capture_output=True, text=True)
    assert r.returncode == 0 and "--dataset" in r.stdout
