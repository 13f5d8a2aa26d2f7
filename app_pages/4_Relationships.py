"""Relationships drill-down: a gene's known pairs, who recalls them, and the images behind a pair."""
import pandas as pd
import streamlit as st

from bioviz.dashboard import datasets as ds
from bioviz.dashboard import nulls, ui, urlstate
from bioviz.dashboard.composite import composite, grey
from bioviz.dashboard.neighbors import (activity_sentence, known_partners, neighbours_table, neighbours_wide,
                                        query_activity)
from bioviz.dashboard.pairs import (confounder_comparison, example_wells, model_only_pairs, pair_similarity,
                                    parse_query, percentile_in, relationship_table)
from bioviz.errors import BiovizError
from bioviz.plots import null_distributions

st.title("Relationships")
ui.intro("relationships")
screen = st.session_state.get("screen")
if screen is None:
    st.stop()
pairs = ui.pairs(screen)
if pairs is None:
    st.warning("No per-pair results (results/pairs.parquet) for this dataset yet: run "
               "`bioviz benchmark --dataset ...`.")
    st.stop()
if pairs.empty:  # a finished benchmark without known pairs (no controls, or no source matched)
    st.info(ui.no_recall_reason(screen))
    st.stop()

sources = sorted(pairs["source"].unique())
recalled_cols = ds.recalled_columns(pairs)
c = st.columns([1, 1, 2])
# On a simulated screen the planted pairs are the ground truth a reviewer checks first.
default_source = "planted" if "planted" in sources else sources[0]
source = c[0].selectbox("Source", sources, index=sources.index(ui.widget_default("source", sources, default_source)),
                        key="rel_source",
                        help="where the known relationships come from (CORUM, HuMAP, Reactome, SIGNOR, StringDB;"
                             " planted on the demo)")
rcol = None
if recalled_cols:
    rcol = c[1].selectbox("Recalled at", recalled_cols, format_func=lambda s: s.replace("recalled_", "").replace("_", "/"),
                          key="rel_recalled",
                          help="the percentile thresholds a pair must pass to count as recalled")
# the example is a pair of this screen's own perturbations (gene or compound), not a fixed gene pair
_ex = pairs[pairs["source"] == source].iloc[0] if (pairs["source"] == source).any() else None
_ph = f"e.g. {_ex['entity1']}, or {_ex['entity1']} {_ex['entity2']}" if _ex is not None else "a gene or compound"
gene = c[2].text_input("Gene or compound, or a pair", value=ui.url_get("gene") or "", placeholder=_ph,
                       key="rel_gene",
                       help="one perturbation (its activity, known pairs and nearest neighbours) or two (that"
                            " pair)").strip()
truth_rel = screen.truth.relationships if screen.truth is not None else None
# the kinds the benchmark recorded: a precomputed CellProfiler table run as handcrafted is no model
kinds = ui.summary(screen).get("kinds") or {}
ui.url_set(source=source, gene=gene)

# one perturbation asked for: its own phenotype first (JUMP's match tables), then its pairs and neighbours
query = parse_query(gene)
query = query[0] if len(query) == 1 else None
if query:
    acts = query_activity(ui.activity(screen), query, ui.consistency(screen))
    st.subheader(f"{query}: its own phenotype first")
    st.markdown(activity_sentence(acts, query))
    if len(acts):
        ui.table(acts, f"activity_{query}", key="rel_activity")

if gene:
    tbl = relationship_table(pairs, source, gene, rcol, truth_rel, kinds=kinds)
    if tbl.empty:
        known = set(pairs.loc[pairs["source"] == source, "entity1"]) | set(pairs.loc[pairs["source"] == source, "entity2"])
        q = parse_query(gene, known=known)
        missing = [g for g in q if g.upper() not in {k.upper() for k in known}]
        if missing:
            st.info(f"{', '.join(missing)} has no known relationship in {source} among this screen's perturbations.")
        else:
            st.info(f"{' and '.join(q)} are not a known pair in {source}.")
    title = f"Known pairs of {gene} in {source}"
else:
    tbl = model_only_pairs(pairs, source, rcol, kinds=kinds) if rcol else pd.DataFrame()
    title = f"Pairs a model recalls and no baseline does ({source})"
    if not tbl.empty:
        full = relationship_table(pairs, source, None, rcol, truth_rel, kinds=kinds)
        tbl = full.merge(tbl[["entity1", "entity2"]], on=["entity1", "entity2"])
    else:
        tbl = relationship_table(pairs, source, None, rcol, truth_rel, kinds=kinds)
        title = f"Known pairs in {source}"

if not tbl.empty:
    st.subheader(title)
    st.caption("Percentile of each pair's cosine among all perturbation pairs, per embedder; click a row to open it.")
    ev = st.dataframe(tbl, hide_index=True, on_select="rerun", selection_mode="single-row", key="rel_table",
                      column_config=ui.with_help(tbl))
    ui.download_csv(tbl, f"relationships_{source}")
    picked = ev.selection.rows if ev is not None else []
    if picked:
        r = tbl.iloc[picked[0]]
        new = f"{r['entity1']},{r['entity2']}"
        if new != ui.url_get("pair"):
            ui.url_set(pair=new)

if query:
    st.subheader(f"Most similar to {query} in each map")
    k = st.slider("Neighbours per map (top-k)", 3, 25, 10, key="rel_k",
                  help="the k perturbations whose profiles have the highest cosine similarity to the query in each "
                       "embedder's map, built with the benchmark's recipe (controls left out)")
    maps = {}
    for emb in ui.embedders(screen):
        try:
            maps[emb] = ui.profiles(screen, emb)
        except BiovizError as exc:
            st.caption(f"{emb}: {exc}")
    nb = neighbours_table(maps, query, k, control_label=screen.control_label,
                          known=known_partners(pairs, query, truth_rel))
    if nb.empty:
        st.info(f"{query} is not in any map (a control, or not a perturbation of this screen).")
    else:
        st.caption("Rank 1 = the most similar perturbation; ★ = a known partner of "
                   f"{query} in any source. A model whose list carries more ★ than the baselines' relates "
                   "this gene to its partners through what it learned.")
        ui.table(neighbours_wide(nb), f"neighbours_{query}", key="rel_neighbours")
        with st.expander("Cosine similarities and the sources of each known partner"):
            ui.table(nb, f"neighbours_{query}_long", key="rel_neighbours_long")

pair = urlstate.decode_pair(ui.url_get("pair"))
st.divider()
pc = st.columns([2, 1])
typed = pc[0].text_input("Pair", value=",".join(pair) if pair else "", placeholder="A,B (two perturbations: genes or compounds)", key="rel_pair_text",
                         help="two perturbations separated by a comma: their images, confounders and "
                              "similarity in every map")
if typed.strip() and urlstate.decode_pair(typed) != pair:
    pair = urlstate.decode_pair(typed)
    ui.url_set(pair=",".join(pair) if pair else "")
if not pair:
    st.info("Choose a pair: click a row of the table, or type two perturbations.")
    st.stop()
a, b = pair
perts = ui.perturbation_rows(screen)
absent = [g for g in (a, b) if g.upper() not in perts]
if absent:
    st.warning(f"{', '.join(absent)} is not a perturbation of this screen, so the pair cannot be shown.")
    st.stop()
st.header(f"{a} – {b}")

groups = example_wells(screen.obs, a, b, screen.control_label, n=3, rows=perts)
st.subheader("Example wells")
if screen.has_images:
    on = pc[1].multiselect("Channels", screen.channels, default=screen.channels, key="rel_channels",
                           help="the channels mixed into the"
                                " false-colour composites")
    st.markdown("Composite colours: " + ui.channel_legend(screen), unsafe_allow_html=True)
    per_channel = st.toggle("Show each channel in grey", value=False, key="rel_per_channel",
                            help="also show each selected channel alone"
                                 " in grey")
else:
    st.caption(f"No images to show: {screen.name} is a profiles-only dataset (features per well, no image files).")
for label, wells in (groups.items() if screen.has_images else ()):
    st.markdown(f"**{label}** ({len(wells)} wells shown" + (", same plates" if label == screen.control_label else "")
                + ")")
    if wells.empty:
        st.caption("no wells")
        continue
    # A fixed grid keeps tiles thumbnail-sized however many wells and channels are shown.
    cols = st.columns(max(6, len(wells) * (1 + (len(on) if per_channel else 0))))
    k = 0
    for _, w in wells.iterrows():
        try:
            s = ui.site(screen, str(w["well_id"]))
        except BiovizError as exc:
            cols[k].caption(f"{w['well_id']}: {exc}")
            k += 1 + (len(on) if per_channel else 0)
            continue
        cols[k].image(composite(s, screen.colors, screen.channels, on), caption=f"{w['well_id']} ({w['plate']})",
                      width="stretch")
        k += 1
        if per_channel:
            for ch in on:
                cols[k].image(grey(s[screen.channels.index(ch)]), caption=ch, width="stretch")
                k += 1

conf = ui.confounders(screen)
if conf is not None:
    st.subheader("Confounders side by side")
    cmp = confounder_comparison(conf, screen.obs, groups, rows=perts)
    st.dataframe(cmp.style.format("{:.3g}"), key="rel_conf")
    ui.download_csv(cmp.reset_index().rename(columns={"index": "confounder"}), f"confounders_{a}_{b}")

st.subheader("The pair's similarity on each embedder's null distribution")
items, rows = [], []
for emb in ui.embedders(screen):
    try:
        prof = ui.profiles(screen, emb)
        nul = ui.null(screen, emb)
    except BiovizError as exc:
        st.caption(f"{emb}: {exc}")
        continue
    v = pair_similarity(prof, a, b)
    pct = percentile_in(nul, v) if v is not None else float("nan")
    items.append(dict(embedder=emb, null=nul, value=v, percentile=pct, kind=ds.embedder_kind(emb, kinds)))
    rows.append(dict(embedder=emb, kind=ds.embedder_kind(emb, kinds), cosine=v, percentile=pct))
if items:
    ui.plot(null_distributions(items), f"null_{a}_{b}", key="null_hist")
    st.caption("Grey/blue: cosine similarity of random perturbation pairs in the embedder's aggregated map; "
               "red line: this pair. Far out in either tail means the map relates them.")
    ui.table(pd.DataFrame(rows), f"pair_{a}_{b}_similarity", key="pair_sim")

# the same pair judged within its confounder-matched cell (bench.matched_null; docs/matched-null.md)
matched_info = {m: i for m, i in (ui.summary(screen).get("matched_null") or {}).items() if i.get("bins") and not i.get("reason")}
if matched_info and items:
    st.subheader("The pair within its matched cell")
    mnull = st.selectbox("Matched null", list(matched_info), key="rel_matched_null",
                         help="the matched null the pair is judged in"
                              " (docs/matched-null.md)")
    all_pct = {it["embedder"]: it["percentile"] for it in items}
    known = nulls.pair_nulls(ui.all_nulls(screen, "pairs"), source, a, b)
    m_items, m_rows = [], []
    for emb in [it["embedder"] for it in items]:
        cell = nulls.matched_cell(ui.profiles(screen, emb), screen.obs, conf, screen.control_label, mnull,
                                  matched_info[mnull]["bins"], a, b)
        if cell is None:
            continue
        m_items.append(dict(embedder=emb, null=cell["values"], value=cell["value"], percentile=cell["percentile"],
                            kind=ds.embedder_kind(emb, kinds)))
        bench = known[(known["embedder"] == emb) & (known["null_model"] == mnull)]["percentile"]
        m_rows.append({"embedder": emb, "kind": ds.embedder_kind(emb, kinds), "cosine": cell["value"],
                       "all-pairs percentile": all_pct[emb], f"{mnull} percentile": cell["percentile"],
                       "benchmark's matched percentile": bench.iloc[0] if len(bench) else float("nan"),
                       "cell": cell["cell"], "pairs in cell": cell["size"]})
    if m_items:
        ui.table(pd.DataFrame(m_rows), f"pair_{a}_{b}_matched", key="pair_matched")
        ui.plot(null_distributions(m_items), f"matched_null_{a}_{b}", key="matched_hist")
        st.caption(f"Histogram: cosines of the random pairs in this pair's {mnull} cell (members in the same "
                   "confounder bins as the pair's); red line: this pair. A pair far out against all pairs but "
                   "central in its cell was recalled through the confounder.")
    else:
        st.caption(f"{a} or {b} is not in the maps, or {mnull} cannot be matched on this screen.")
