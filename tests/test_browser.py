"""End to end in a real browser: Debian's Chromium driven by Playwright against `streamlit run app.py`
on the tiny demo. Visits every page, asserts its content and that no exception box is shown, emulates
one lasso with mouse moves, and saves screenshots under screenshots/ (git-ignored)."""
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run"]
SHOTS = REPO / "screenshots"

pytestmark = [pytest.mark.browser, pytest.mark.slow]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    if not os.path.exists(CHROMIUM):
        pytest.skip(f"{CHROMIUM} is not installed (apt-get install -y chromium; .ci/run does it)")
    pytest.importorskip("playwright.sync_api")
    from standin_dataset import build_tiny_demo

    return build_tiny_demo(tmp_path_factory.mktemp("browser") / "tiny")


@pytest.fixture(scope="module")
def server(dataset):
    port = _free_port()
    log = open(SHOTS.parent / ".streamlit-browser-test.log", "w") if SHOTS.parent.is_dir() else subprocess.DEVNULL
    proc = subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", str(REPO / "app.py"), "--server.headless", "true",
         "--browser.gatherUsageStats", "false", "--server.port", str(port), "--server.address", "127.0.0.1",
         "--server.fileWatcherType", "none"],
        cwd=REPO, stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    deadline = time.time() + 60
    while time.time() < deadline:
        try:
            urllib.request.urlopen(base + "/_stcore/health", timeout=2)
            break
        except OSError:
            if proc.poll() is not None:
                pytest.fail("streamlit exited before serving")
            time.sleep(0.5)
    else:
        proc.terminate()
        pytest.fail("streamlit did not start within 60 s")
    yield base
    proc.terminate()
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()


@pytest.fixture(scope="module")
def page(server):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        pg = browser.new_page(viewport={"width": 1500, "height": 2000})
        pg.set_default_timeout(90_000)
        yield pg
        browser.close()


def settle(pg):
    """Wait until Streamlit has finished running the script (the running indicator is gone)."""
    pg.wait_for_timeout(300)
    pg.wait_for_function("() => !document.querySelector('[data-testid=\"stStatusWidget\"]')"
                         " || !document.querySelector('[data-testid=\"stStatusWidget\"]').innerText.includes('Running')",
                         timeout=90_000)
    pg.wait_for_timeout(500)


def no_exception(pg, where):
    assert pg.locator('[data-testid="stException"]').count() == 0, f"exception box on {where}"


def shot(pg, name):
    SHOTS.mkdir(exist_ok=True)
    pg.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


def has_count(locator, n):
    """Wait (up to 90 s) until the locator matches exactly n elements: Streamlit draws plots and images
    after the text around them, so a count taken at once can be 0 on a loaded machine (CI at 1075 s
    counted 0 maps right after the Embeddings caption)."""
    from playwright.sync_api import expect

    expect(locator).to_have_count(n, timeout=90_000)
    return True


def nav(pg, label):
    pg.locator('[data-testid="stSidebarNav"] a', has_text=label).first.click()
    settle(pg)


def test_every_page_and_a_lasso(page, server, dataset):
    import pandas as pd

    pg = page
    pg.goto(f"{server}/?dataset={dataset}")
    pg.get_by_text("What has the model learned?").wait_for()
    pg.get_by_text("Scorecard: each model beside the baselines").wait_for()
    settle(pg)
    # the scorecard table renders after its heading; settle() can return first on a loaded machine
    # (a run at load 19 on 2 cores counted 0 tables)
    pg.locator('[data-testid="stDataFrame"]').first.wait_for()
    no_exception(pg, "Home")
    shot(pg, "1_home")
    pg.get_by_role("tab", name="Plates and example wells").click()
    pg.locator('[data-testid="stImage"] img').first.wait_for()
    pg.locator(".js-plotly-plot").first.wait_for()
    shot(pg, "1b_home_plates")
    assert f"dataset={dataset}".replace("/", "%2F") in pg.url or f"dataset={dataset}" in pg.url

    # Embeddings: two WebGL maps; a lasso on the left one outlines the same wells on the right
    nav(pg, "Embeddings")
    pg.get_by_text("Draw a lasso").wait_for()
    plots = pg.locator(".js-plotly-plot")
    assert has_count(plots, 2)
    no_exception(pg, "Embeddings")
    shot(pg, "2_embeddings")
    box = plots.nth(0).locator(".nsewdrag").first.bounding_box()
    cx, cy, w, h = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2, box["width"], box["height"]
    # the left half of the map: a real subset of the wells
    poly = [(cx - 0.48 * w, cy - 0.48 * h), (cx, cy - 0.48 * h), (cx, cy + 0.48 * h),
            (cx - 0.48 * w, cy + 0.48 * h), (cx - 0.48 * w, cy - 0.47 * h)]
    pg.mouse.move(*poly[0])
    pg.mouse.down()
    for (x0, y0), (x1, y1) in zip(poly, poly[1:]):
        for t in range(1, 11):
            pg.mouse.move(x0 + (x1 - x0) * t / 10, y0 + (y1 - y0) * t / 10)
    pg.mouse.up()
    pg.get_by_text("selected on the left map").wait_for()
    settle(pg)
    import re

    n_sel = int(re.search(r"(\d+) wells selected", pg.get_by_text("selected on the left map").inner_text()).group(1))
    n_wells = len(pd.read_csv(dataset / "metadata.csv"))
    assert 0 < n_sel < n_wells  # the lasso outlines part of the map: some wells, not none and not all
    no_exception(pg, "Embeddings after lasso")
    pg.locator('[data-testid="stImage"]').first.wait_for()  # the gallery of selected wells
    shot(pg, "3_embeddings_lasso")

    nav(pg, "Recall")
    pg.get_by_text("Recall of known relationships").first.wait_for()
    pg.locator(".js-plotly-plot").first.wait_for()
    no_exception(pg, "Recall")
    assert has_count(pg.get_by_text("Recall by planted mechanism"), 1)
    shot(pg, "4_recall")
    # a direct link opens the page through the router (sidebar and dataset included), and Home is
    # one click back
    pg.goto(f"{server}/recall?dataset={dataset}&threshold=0.1/0.9")
    pg.get_by_text("Recall of known relationships").first.wait_for()
    pg.locator(".js-plotly-plot").first.wait_for()
    settle(pg)
    no_exception(pg, "Recall from a direct link")
    assert pg.locator('[data-testid="stSidebarNav"]').count() == 1
    nav(pg, "Home")
    pg.get_by_text("Scorecard: each model beside the baselines").wait_for()
    no_exception(pg, "Home after Recall")

    nav(pg, "Confounders")
    pg.get_by_text("Plate leakage").wait_for()
    assert has_count(pg.locator(".js-plotly-plot"), 3)
    no_exception(pg, "Confounders")
    shot(pg, "5_confounders")

    pairs = pd.read_parquet(dataset / "results" / "pairs.parquet")
    row = pairs[pairs["source"] == "planted"].iloc[0] if (pairs["source"] == "planted").any() else pairs.iloc[0]
    a, b = row["entity1"], row["entity2"]
    nav(pg, "Relationships")
    pg.get_by_text("Choose a pair").wait_for()
    no_exception(pg, "Relationships")
    # a shared link opens the pair directly
    pg.goto(f"{server}/relationships?dataset={dataset}&gene={a}&pair={a},{b}")
    pg.get_by_text(f"{a} – {b}").wait_for()
    pg.get_by_text("null distribution").first.wait_for()
    settle(pg)
    no_exception(pg, "Relationships with a pair")
    pg.locator('[data-testid="stImage"]').nth(2).wait_for()  # at least 3 images (drawn after the text)
    assert has_count(pg.locator(".js-plotly-plot"), 1)
    shot(pg, "6_relationships_pair")


@pytest.fixture(scope="module")
def profiles_dataset(tmp_path_factory):
    from profiles_dataset import build_profiles_dataset

    return build_profiles_dataset(tmp_path_factory.mktemp("browser_profiles") / "prof")


def test_every_page_on_a_profiles_only_dataset(page, server, profiles_dataset):
    """A compound screen distributed as profiles (no images): every page renders without an
    exception box, says in one line that there are no images, and shows the MOA section."""
    pg, ds = page, profiles_dataset
    pg.goto(f"{server}/?dataset={ds}")
    pg.get_by_text("Scorecard: each model beside the baselines").wait_for()
    settle(pg)
    pg.locator('[data-testid="stDataFrame"]').first.wait_for()
    pg.get_by_text("MOA / target retrieval").first.wait_for()
    no_exception(pg, "Home (profiles)")
    assert has_count(pg.get_by_text("Channels: none (profiles only"), 1)
    shot(pg, "p1_home")
    pg.get_by_role("tab", name="Plates and example wells").click()
    pg.get_by_text("No images to show").first.wait_for()
    assert pg.locator('[data-testid="stImage"]').count() == 0
    shot(pg, "p1b_home_plates")
    pg.get_by_role("tab", name="Computed / missing").click()
    settle(pg)  # the status table is a canvas grid: its 'not applicable: no images' cells are not DOM text
    no_exception(pg, "Home status (profiles)")
    shot(pg, "p1c_home_status")

    nav(pg, "Embeddings")
    pg.get_by_text("Draw a lasso").wait_for()
    no_exception(pg, "Embeddings (profiles)")
    shot(pg, "p2_embeddings")

    nav(pg, "Recall")
    pg.get_by_text("Recall of known relationships").first.wait_for()
    pg.get_by_text("MOA / target retrieval").first.wait_for()
    settle(pg)
    no_exception(pg, "Recall (profiles)")
    shot(pg, "p4_recall")

    nav(pg, "Confounders")
    pg.get_by_text("Plate leakage").wait_for()
    no_exception(pg, "Confounders (profiles)")
    shot(pg, "p5_confounders")

    import pandas as pd

    pairs = pd.read_parquet(ds / "results" / "pairs.parquet")
    a, b = pairs["entity1"].iloc[0], pairs["entity2"].iloc[0]
    pg.goto(f"{server}/relationships?dataset={ds}&pair={a},{b}")
    pg.get_by_text(f"{a} – {b}").wait_for()
    settle(pg)
    pg.get_by_text("No images to show").first.wait_for()
    no_exception(pg, "Relationships with a pair (profiles)")
    assert pg.locator('[data-testid="stImage"]').count() == 0
    shot(pg, "p6_relationships_pair")


# -- issue 12: the new pages and the report at slide size (1,280 x 720) --------------------------------
# Tick labels of one axis that intersect, or a figure wider than the slide, fail the check.
_OVERLAPS = """() => {
  const out = [];
  // axis-aligned boxes of rotated labels overlap while the text does not: for those, only labels
  // drawn at (nearly) the same place count
  const check = (k, texts, what) => {
    const boxes = texts.filter(t => t.textContent.trim()).map(t => [t.textContent, t.getBoundingClientRect(),
      (t.getAttribute('transform') || '').includes('rotate')]).filter(([, b]) => b.width > 0);
    for (let i = 0; i < boxes.length; i++) for (let j = i + 1; j < boxes.length; j++) {
      const [ta, a, ra] = boxes[i], [tb, b, rb] = boxes[j];
      const ox = Math.min(a.right, b.right) - Math.max(a.left, b.left);
      const oy = Math.min(a.bottom, b.bottom) - Math.max(a.top, b.top);
      const hit = (ra || rb) ? Math.abs((a.left + a.right) - (b.left + b.right)) / 2 < 6
                                && Math.abs((a.top + a.bottom) - (b.top + b.bottom)) / 2 < 6 : ox > 1 && oy > 1;
      if (hit) out.push(`figure ${k}: ${what} '${ta}' and '${tb}' overlap`);
    }
  };
  document.querySelectorAll('.js-plotly-plot').forEach((p, k) => {
    const r = p.getBoundingClientRect();
    if (r.width === 0 && r.height === 0) return;  // in a tab that is not open
    if (r.width > 1280 + 1) out.push(`figure ${k} is ${Math.round(r.width)} px wide`);
    if (r.height < 50) out.push(`figure ${k} is empty (${Math.round(r.height)} px high)`);
    p.querySelectorAll('.xaxislayer-above, .yaxislayer-above').forEach(ax => {
      check(k, [...ax.querySelectorAll('text')], 'labels');
    });
    check(k, [...p.querySelectorAll('.annotation-text')], 'titles');
  });
  return out;
}"""


def slide_check(pg, name):
    """1,280 x 720 screenshot and a tall one; no exception box, no empty or too-wide figure, no
    overlapping tick labels."""
    pg.set_viewport_size({"width": 1280, "height": 720})
    # every element drawn: no skeleton placeholder left, the script finished
    pg.wait_for_function("() => !document.querySelector('[data-testid=\"stSkeleton\"]')", timeout=240_000)
    settle(pg)
    pg.wait_for_timeout(1500)
    no_exception(pg, name)
    problems = pg.evaluate(_OVERLAPS)
    shot_viewport = SHOTS / f"{name}_1280x720.png"
    SHOTS.mkdir(exist_ok=True)
    pg.screenshot(path=str(shot_viewport))
    pg.set_viewport_size({"width": 1280, "height": 3000})
    pg.wait_for_timeout(1500)
    problems += pg.evaluate(_OVERLAPS)
    pg.screenshot(path=str(SHOTS / f"{name}_tall.png"))
    pg.set_viewport_size({"width": 1500, "height": 2000})
    assert not problems, f"{name}: {problems}"


def test_issue12_pages_and_report_at_slide_size(page, server, dataset, tmp_path):
    import pandas as pd

    pg = page
    act = pd.read_csv(dataset / "results" / "activity.csv")
    gene = act["perturbation"].iloc[0]
    for path, text, name in [("plates", "Montage along an axis", "7_plates"), ("guide", "Why baselines", "8_guide"),
                             (f"relationships?gene={gene}", f"Most similar to {gene}", "9_relationships_query"),
                             ("recall", "Recall of known relationships", "4b_recall_slide"), ("", "Scorecard", "1c_home_slide")]:
        pg.goto(f"{server}/{path}{'&' if '?' in path else '?'}dataset={dataset}")
        pg.get_by_text(text).first.wait_for()
        settle(pg)
        pg.wait_for_timeout(1000)
        assert has_count(pg.get_by_text("What this shows · How to read it"), 1), name
        slide_check(pg, name)
    # the plate view opens a clicked well's images
    pg.goto(f"{server}/plates?dataset={dataset}")
    pg.get_by_text("Montage along an axis").wait_for()
    settle(pg)
    n_before = pg.locator('[data-testid="stImage"]').count()
    pt = pg.locator(".js-plotly-plot .scatterlayer .point").first
    pt.click(force=True)
    pg.get_by_text("Well ").first.wait_for()
    settle(pg)
    no_exception(pg, "Plates after a click")
    pg.locator('[data-testid="stImage"]').nth(n_before).wait_for()  # more images than before the click

    # the meeting report: one self-contained file, nothing fetched, figures drawn
    out = tmp_path / "report.html"
    r = subprocess.run([sys.executable, "-m", "bioviz", "report", "--dataset", str(dataset), "--out", str(out),
                        "--no-umap"], capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr
    text = out.read_text()
    assert text.index("<h2>Findings</h2>") < text.index("fig-story_forest") < text.index("<h2>Details</h2>")
    fetched, errors = [], []
    pg.on("request", lambda q: fetched.append(q.url) if not q.url.startswith(("file:", "data:", "blob:")) else None)
    pg.on("pageerror", lambda e: errors.append(str(e)))
    pg.goto(out.as_uri(), wait_until="load", timeout=240_000)
    pg.wait_for_timeout(3000)
    assert not fetched and not errors, (fetched, errors)
    assert pg.locator(".js-plotly-plot").count() >= 3
    slide_check(pg, "10_report")
