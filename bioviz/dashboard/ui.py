"""The Streamlit side shared by every page: the sidebar app.py draws (dataset choice, figure
format), Home's Compute, cached loaders, URL state, downloads, map colour options.

Everything heavy is cached with ``st.cache_resource`` keyed on the files' size and mtime (no copy
on a hit: a 222k-row table comes back in microseconds), so a page switch or a recolour recomputes
nothing that has not changed on disk. Cached objects are shared: callers never mutate them.
"""
from __future__ import annotations

import io
import os
from pathlib import Path

import numpy as np
import pandas as pd
import streamlit as st

from ..errors import BiovizError
from . import datasets as ds
from . import urlstate
from .umap_cache import map_args, perturbation_profiles, umap_layout

OTHER_PATH = "other folder..."


# -- URL <-> session state ---------------------------------------------------------------------
def url_get(key: str) -> str | None:
    """The query parameter for ``key``, falling back to what this session chose on another page
    (Streamlit drops query parameters on a page switch; the session remembers them)."""
    name = urlstate.KEYS.get(key, key)
    if name in st.query_params:
        return st.query_params[name]
    return st.session_state.get(f"_url_{key}")


def url_set(**values) -> None:
    for key, value in values.items():
        name = urlstate.KEYS.get(key, key)
        text = urlstate.encode(value)
        st.session_state[f"_url_{key}"] = text
        if text:
            if st.query_params.get(name) != text:
                st.query_params[name] = text
        elif name in st.query_params:
            del st.query_params[name]


def widget_default(key: str, options, default=None):
    """Index-free default for a selectbox: the URL's value when it is a valid option."""
    return urlstate.decode_choice(url_get(key), options, default)


# -- dataset -----------------------------------------------------------------------------------
@st.cache_resource(show_spinner=False, max_entries=8)
def _load_screen(path: str, key: tuple):
    from ..screen import read_screen

    # Image files are checked when shown: stat-ing a million files would cost a minute on a
    # 222k-well screen, and a missing image is reported where it is needed.
    return read_screen(path, check_images=False)


def load_screen(path: Path):
    p = Path(path)
    return _load_screen(str(p), ds.files_fingerprint(p / "dataset.json", p / "metadata.csv",
                                                     p / "metadata.parquet"))


def sidebar_dataset():
    """The dataset picker. Returns the Screen, or None after showing why it could not be loaded."""
    names = ds.list_datasets()
    current = url_get("dataset") or os.environ.get("BIOVIZ_DATASET")
    if current is None and names:
        current = names[0]
    options = names + [OTHER_PATH]
    is_named = current in names
    choice = st.sidebar.selectbox("Dataset", options, index=options.index(current) if is_named else len(options) - 1,
                                  help="A folder under data/ or any dataset folder (see docs/dataset-format.md)",
                                  key="dataset_choice")
    if choice == OTHER_PATH:
        value = st.sidebar.text_input("Dataset folder", value="" if is_named else (current or ""),
                                      placeholder="/path/to/dataset", key="dataset_path").strip()
    else:
        value = choice
    if not value:
        st.info("Choose a dataset in the sidebar, or type the path of a dataset folder. "
                "`make run` builds the demo screen under data/demo.")
        return None
    try:
        root = ds.resolve_dataset(value)
        screen = load_screen(root)
    except BiovizError as exc:
        url_set(dataset=value)
        st.error(f"Could not open dataset {value!r}: {exc}")
        return None
    url_set(dataset=ds.dataset_label(screen.root))
    st.sidebar.caption(f"{screen.n_sites:,} wells · {screen.obs['plate'].nunique()} plates · "
                       f"{len(screen.channels)} channels")
    return screen


def figure_format() -> str:
    return st.sidebar.radio("Figure download format", ["png", "svg"], horizontal=True, key="fig_format",
                            help="The camera icon above each figure saves it in this format")


def sidebar() -> None:
    """What app.py draws once for every page: the dataset picker (its Screen, or None, goes to
    ``st.session_state["screen"]`` for the page) and the figure format."""
    st.sidebar.title("bioviz")
    try:
        st.session_state["screen"] = sidebar_dataset()
    except BiovizError as exc:  # anything the user can fix gets one line, never a traceback
        st.session_state["screen"] = None
        st.error(str(exc))
    figure_format()


def compute(screen, missing: list[str]) -> None:
    """Home's Compute button: embed what is missing, then benchmark, behind one progress bar."""
    from ..bench.adjust import DEFAULT_ADJUST

    bar = st.progress(0.0, text="starting")

    def progress(done, total, message):  # bioviz.embed's callback; embedding fills 0-70% of the bar
        bar.progress(0.7 * done / max(total, 1), text=message or "embedding")

    try:
        if missing:
            from ..embed import embed

            # embed() reuses every up-to-date cache, so asking for all of them recomputes only what
            # is missing or stale; "all" is what applies (no image embedders without images, no
            # weakly_supervised without a trained model).
            embed(screen, "all", progress=progress)
        bar.progress(0.75, text="benchmarking")
        from ..bench import run_benchmark

        from ..embed import load_confounders

        # None: every embedding with an up-to-date cache, as `bioviz benchmark` does; the density
        # adjustment only where there is a cell count (profiles may carry none)
        conf = load_confounders(screen, missing_ok=True)
        adjust = [DEFAULT_ADJUST] if conf is not None and "cell_count" in conf else None
        run_benchmark(screen, None, adjust=adjust, progress=lambda msg: bar.progress(0.85, text=msg))
        bar.progress(1.0, text="done")
        st.cache_resource.clear()
        st.success("Computed. The scorecard below is up to date.")
        from ..embed import not_applicable_embedders

        why = not_applicable_embedders(screen, "all").get("weakly_supervised", "")
        if "no trained model" in why:
            st.info(f"weakly_supervised was not computed: {why}")
    except BiovizError as exc:
        st.error(f"Could not compute: {exc}")


def plot(fig, name: str, **kwargs):
    from ..plots import figure_config

    return st.plotly_chart(fig, config=figure_config(st.session_state.get("fig_format", "png"), name), **kwargs)


def download_csv(df: pd.DataFrame, name: str, key: str | None = None, label: str = "Download CSV") -> None:
    st.download_button(label, df.to_csv(index=False).encode(), file_name=f"{name}.csv", mime="text/csv",
                       key=key or f"dl_{name}")


def table(df: pd.DataFrame, name: str, **kwargs):
    kwargs["column_config"] = with_help(df, kwargs.get("column_config"))
    out = st.dataframe(df, hide_index=True, **kwargs)
    download_csv(df, name)
    return out


def with_help(df: pd.DataFrame, config: dict | None = None) -> dict:
    """``column_config`` with the glossary's tooltip (dashboard.glossary) on every column that has
    one; a column already configured keeps its type and format and gains the help text."""
    from .glossary import column_help

    out = dict(config or {})
    for col, text in column_help(df.columns).items():
        c = out.get(col)
        if c is None:
            out[col] = st.column_config.Column(help=text)
        elif isinstance(c, dict) and not c.get("help"):
            out[col] = {**c, "help": text}
    return out


def intro(page: str) -> None:
    """The page's "What this shows · How to read it" box (dashboard.glossary.INTROS): open on the
    first visit of this session, collapsed on later visits; it keeps the state it opened with
    while the user stays on the page, so a widget change does not fold it."""
    from .glossary import INTRO_LABEL, INTROS

    state = st.session_state.setdefault("_intro", {"current": None, "seen": set(), "open": {}})
    if state["current"] != page:
        state["open"][page] = page not in state["seen"]
        state["seen"].add(page)
        state["current"] = page
    with st.expander(INTRO_LABEL, expanded=state["open"].get(page, True), icon=":material/help:"):
        st.markdown(INTROS[page])


# -- cached tables -----------------------------------------------------------------------------
# Every reader goes through the owner of the folder (bioviz.embed for embeddings/, bench.results
# for results/); the cache key is the files' identity (path, size, mtime), never an object id().
def _fp(*paths: Path) -> tuple:
    return ds.files_fingerprint(*paths)


def _screen_key(screen) -> tuple:
    root = Path(screen.root)
    return _fp(root / "dataset.json", root / "metadata.csv", root / "metadata.parquet")


def _embedding_key(screen, embedder: str) -> tuple:
    from ..bench.results import result_path
    from ..embed import embedding_file

    # summary.json carries the map recipe the profiles are built with
    return _fp(embedding_file(screen, embedder), result_path(screen, "summary")) + _screen_key(screen)


_SHAPERS = {"recall": ds.normalize_recall, "cka": ds.normalize_cka, "pairs": ds.normalize_pairs}


@st.cache_resource(show_spinner=False, max_entries=64)
def _table(path: str, table: str, key: tuple):
    from ..bench.results import read_table

    df = read_table(path, table)
    return _SHAPERS[table](df) if table in _SHAPERS else df


def _result(screen, table: str):
    from ..bench.results import result_path

    path = result_path(screen, table)
    if not path.is_file():
        return None
    try:
        return _table(str(path), table, _fp(path))
    except Exception as exc:  # a half-written or foreign table: say which file, keep the page up
        st.warning(f"results/{path.name} could not be read: {exc}")
        return None


def recall(screen):
    """recall.csv (all-pairs rows) with a ``kind`` column: the kind the benchmark recorded per
    embedder (summary.json), so a precomputed table run with kind=handcrafted is drawn and ranked as
    handcrafted, not by its name."""
    r = _result(screen, "recall")
    kinds = summary(screen).get("kinds") or {}
    if r is None or not kinds:
        return r
    return r.assign(kind=r["embedder"].map(kinds))


@st.cache_resource(show_spinner=False, max_entries=16)
def _table_all_nulls(path: str, table: str, key: tuple):
    from ..bench.results import read_table

    df = read_table(path, table, null_model=None)
    return _SHAPERS[table](df) if table in _SHAPERS else df


def all_nulls(screen, table: str):
    """recall or pairs with the rows of every null model (``all`` and ``matched:...``; the other
    readers give the all-pairs rows only), shaped as they are; None when the file is absent."""
    from ..bench.results import result_path

    path = result_path(screen, table)
    return _table_all_nulls(str(path), table, _fp(path)) if path.is_file() else None


def probes(screen):
    return _result(screen, "probes")


def cka(screen):
    return _result(screen, "cka")


def activity(screen):
    return _result(screen, "activity")


def retrieval(screen):
    return _result(screen, "retrieval")


def consistency(screen):
    """efaar's perturbation-signal consistency per embedder and perturbation (consistency.csv)."""
    return _result(screen, "consistency")


def comparisons(screen):
    return _result(screen, "comparisons")


def model_only(screen):
    return _result(screen, "model_only")


def pairs(screen):
    return _result(screen, "pairs")


def summary(screen) -> dict:
    return _result(screen, "summary") or {}


@st.cache_resource(show_spinner=False, max_entries=8)
def _embedders(root: str, key: tuple, _screen):
    from ..embed import computed_embedders

    from ..bench.attribution import models_first

    return models_first(computed_embedders(_screen))


def embedders(screen) -> list[str]:
    """Embedders with an up-to-date cache (bioviz.embed decides; stale and foreign ones are left
    out and shown as "stale: recompute" on Home), models first."""
    d = screen.embeddings_dir
    files = sorted(d.glob("*.parquet")) if d.is_dir() else []
    return _embedders(str(screen.root), _fp(*files) + _screen_key(screen), screen)


@st.cache_resource(show_spinner=False, max_entries=8)
def _confounders(root: str, key: tuple, _screen):
    from ..embed import load_confounders

    try:
        return load_confounders(_screen, missing_ok=True)
    except BiovizError:  # stale: shown as "stale: recompute" on Home, never loaded
        return None


def confounders(screen):
    from ..embed import embedding_file

    return _confounders(str(screen.root), _fp(embedding_file(screen, "confounders")) + _screen_key(screen), screen)


def _well_key(screen) -> tuple:
    from ..embed import embedding_file

    root = Path(screen.root)
    return _screen_key(screen) + _fp(embedding_file(screen, "confounders"), root / "truth" / "genes.csv")


@st.cache_resource(show_spinner=False, max_entries=8)
def _well_frame(root: str, key: tuple, _screen):
    """Metadata + confounders + planted mechanism, one row per well: what maps are coloured by."""
    obs = _screen.obs
    frame = obs[[c for c in obs.columns if not c.startswith("image_")]].copy()
    conf = confounders(_screen)
    if conf is not None:
        extra = [c for c in conf.columns if c not in frame.columns or c == "well_id"]
        frame = frame.merge(conf[extra], on="well_id", how="left")
    truth = _screen.truth
    if truth is not None and "mechanism" in truth.genes.columns:
        mech = dict(zip(truth.genes["gene"].astype(str), truth.genes["mechanism"].astype(str)))
        comp = dict(zip(truth.genes["gene"].astype(str), truth.genes.get("complex", pd.Series(dtype=str)).astype(str)))
        frame["planted mechanism"] = frame["perturbation"].map(mech).fillna("control")
        frame["complex"] = frame["perturbation"].map(comp).fillna("")
    return frame


def well_frame(screen) -> pd.DataFrame:
    return _well_frame(str(screen.root), _well_key(screen), screen)


@st.cache_resource(show_spinner=False, max_entries=8)
def _pert_frame(root: str, key: tuple, _wells: pd.DataFrame):
    w = _wells
    num = [c for c in w.columns if pd.api.types.is_numeric_dtype(w[c]) and not pd.api.types.is_bool_dtype(w[c])
           and c not in ("row", "col", "site")]
    agg = w.groupby("perturbation")[num].mean()
    agg["n_wells"] = w.groupby("perturbation").size()
    cat = [c for c in ("perturbation_type", "moa", "target", "planted mechanism", "complex") if c in w.columns]
    first = w.groupby("perturbation")[cat].first()
    out = first.join(agg).reset_index()
    return out


def perturbation_frame(screen) -> pd.DataFrame:
    return _pert_frame(str(screen.root), _well_key(screen), well_frame(screen))


@st.cache_resource(show_spinner=False, max_entries=32)
def _layout(root: str, embedder: str, level: str, n_neighbors: int, min_dist: float, key: tuple, _screen):
    return umap_layout(_screen, embedder, level=level, n_neighbors=n_neighbors, min_dist=min_dist)


@st.cache_resource(show_spinner=False, max_entries=32)
def _map_frame(root, embedder, level, n_neighbors, min_dist, key, _screen, _base):
    lay = _layout(root, embedder, level, n_neighbors, min_dist, key, _screen)
    id_col = "well_id" if level == "well" else "perturbation"
    pos = pd.Series(np.arange(len(_base)), index=_base[id_col].astype(str).to_numpy())
    lay = lay[lay["id"].astype(str).isin(pos.index)]
    rows = pos.loc[lay["id"].astype(str)].to_numpy()
    frame = _base.iloc[rows].reset_index(drop=True).copy()
    frame["x"] = lay["x"].to_numpy()
    frame["y"] = lay["y"].to_numpy()
    return frame


def map_frame(screen, embedder: str, level: str, n_neighbors: int = 15, min_dist: float = 0.1) -> pd.DataFrame:
    """The UMAP layout joined to the colouring table (rows in layout order)."""
    base = well_frame(screen) if level == "well" else perturbation_frame(screen)
    key = _embedding_key(screen, embedder) + _well_key(screen)
    return _map_frame(str(screen.root), embedder, level, int(n_neighbors), float(min_dist), key, screen, base)


# Building a map runs the benchmark's recipe over every well (about 7 s per embedder at 222,601 wells
# on 2 cores), once per session: say so rather than leave the page silent.
@st.cache_resource(show_spinner="Building this embedder's perturbation map with the benchmark's recipe "
                                "(once per session)…", max_entries=32)
def _profiles(root: str, embedder: str, key: tuple, _screen):
    from ..embed import load_embedding

    emb = load_embedding(_screen, embedder)
    return perturbation_profiles(emb, _screen.obs, _screen.control_label, **map_args(_screen))


def profiles(screen, embedder: str) -> pd.DataFrame:
    """The embedder's perturbation map, built with the benchmark's recipe (results.map_recipe)."""
    return _profiles(str(screen.root), embedder, _embedding_key(screen, embedder), screen)


@st.cache_resource(show_spinner=False, max_entries=32)
def _null(root: str, embedder: str, key: tuple, _screen):
    from .pairs import null_similarities

    return np.sort(null_similarities(_profiles(root, embedder, key, _screen), _screen.control_label))


def null(screen, embedder: str) -> np.ndarray:
    return _null(str(screen.root), embedder, _embedding_key(screen, embedder), screen)


@st.cache_resource(show_spinner=False, max_entries=8)
def _perturbation_rows(root: str, key: tuple, _screen):
    from .pairs import perturbation_rows as build

    return build(_screen.obs)


def perturbation_rows(screen) -> dict:
    """Upper-cased perturbation -> its wells' positions in ``screen.obs``, once per screen."""
    return _perturbation_rows(str(screen.root), _screen_key(screen), screen)


@st.cache_resource(show_spinner=False, max_entries=512)
def _site(root: str, well_id: str, key: tuple, _screen):
    return _screen.load_site(well_id)


def site(screen, well_id: str) -> np.ndarray:
    return _site(str(screen.root), well_id, _screen_key(screen), screen)


def png_bytes(rgb: np.ndarray) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, format="PNG")
    return buf.getvalue()


# Columns of the well/perturbation frame that colour a map by category; every other numeric column
# (cell_count, intensities, focus, ...) colours it on a continuous scale.
CATEGORICAL = ("plate", "batch", "perturbation_type", "perturbation", "moa", "target", "planted mechanism",
               "complex", "is_control", "edge")


def color_options(frame: pd.DataFrame) -> tuple[list[str], str]:
    """(what a map can be coloured by, the default): the planted mechanism first when the screen
    has one (the ground truth a reviewer checks first), then categories, then numeric columns."""
    categorical = [c for c in CATEGORICAL if c in frame.columns]
    continuous = [c for c in frame.columns if c not in categorical and c not in ("well_id", "well", "site")
                  and pd.api.types.is_numeric_dtype(frame[c]) and not pd.api.types.is_bool_dtype(frame[c])]
    options = ["planted mechanism"] if "planted mechanism" in categorical else []
    options += [c for c in categorical if c not in options] + continuous
    default = "planted mechanism" if "planted mechanism" in options else ("plate" if "plate" in options
                                                                          else options[0])
    return options, default


def channel_legend(screen) -> str:
    """Channel names in their display colours, as inline HTML."""
    return " ".join(f"<span style='white-space:nowrap;margin-right:10px'><span style='display:inline-block;"
                    f"width:12px;height:12px;background:{screen.colors[c]};border:1px solid #555;"
                    f"vertical-align:middle;margin-right:4px'></span>{c}</span>" for c in screen.channels)


def no_recall_reason(screen) -> str:
    """Why a finished benchmark has no recall rows (no controls, no source matched), from summary.json."""
    summ = summary(screen) or {}
    for w in summ.get("warnings", []):
        if w.startswith("no control wells"):
            return "No known-relationship recall: " + w + "."
    return ("No known-relationship recall: no relationship source matched a pair of this screen's perturbations "
            "(gene tables on a compound screen). `bioviz benchmark --relationships moa` scores pairs of "
            "perturbations sharing an MOA as a source.")


def moa_section(ret, *, key: str, chosen=None) -> None:
    """MOA / target retrieval with CIs (Home and Recall): nothing when the screen has no labels."""
    if ret is None or not len(ret):
        return
    st.subheader("MOA / target retrieval")
    st.caption("On the normalised wells (the maps' recipe): nn_accuracy = share of wells whose nearest well of a "
               "*different* compound shares the MOA (or a target), chance beside it; mAP = retrieving other "
               "compounds of the same MOA (copairs). Treatment level: wells of one compound at one concentration "
               "averaged. 95% bootstrap CIs.")
    t = ds.retrieval_cis(ret)
    if chosen is not None:
        t = t[t["embedder"].isin(chosen)]
    table(t, key, key=key)


def gallery(screen, wells: pd.DataFrame, channels_on=None, ncols: int = 4, caption_cols=("well_id", "perturbation"),
            width="stretch") -> int:
    """False-colour composites of the given wells in a grid; a well whose images cannot be read
    gets a one-line note instead. Returns how many were shown."""
    from .composite import composite

    if not screen.has_images:
        st.caption(f"No images to show: {screen.name} is a profiles-only dataset (features per well, no image files).")
        return 0
    shown = 0
    cols = st.columns(ncols)
    for k, (_, w) in enumerate(wells.iterrows()):
        try:
            rgb = composite(site(screen, str(w["well_id"])), screen.colors, screen.channels, channels_on)
        except BiovizError as exc:
            cols[k % ncols].caption(f"{w['well_id']}: {exc}")
            continue
        cap = " · ".join(str(w[c]) for c in caption_cols if c in w.index)
        cols[k % ncols].image(rgb, caption=cap, width=width)
        shown += 1
    return shown
