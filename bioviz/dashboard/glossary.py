"""Words for a biologist, defined once: each page's "What this shows · How to read it" box and the
tooltip of every metric column a page shows (``column_help``). The Guide (docs/guide.md) says the
same at length; these are its two-to-four-sentence versions."""
from __future__ import annotations

INTRO_LABEL = "What this shows · How to read it"

INTROS = {
    "home": (
        "**What this shows:** how well each model's embedding recovers known gene–gene relationships, next to "
        "baselines that know nothing about biology (cell counts, pixel statistics, untrained networks, plate "
        "position, random numbers). **How to read it:** a model is only interesting where it beats the best "
        "baseline; a baseline with a high score and a large *drop* when adjusted for density scored by counting "
        "cells, not by seeing morphology. The sentences under the table say the finding in words."),
    "embeddings": (
        "**What this shows:** every well (or perturbation) of the screen placed on a 2-D UMAP map of one "
        "embedding, next to a second embedding for comparison. **How to read it:** colour by a confounder such "
        "as cell count or plate: if the map sorts by it, the embedding sees that confounder. Draw a lasso on "
        "the left map to see where the same wells fall on the right map and what their images look like."),
    "recall": (
        "**What this shows:** for each embedder, the share of known relationships (pairs of genes in the same "
        "complex or pathway) whose profiles are unusually similar or dissimilar, with a 95% interval. **How to "
        "read it:** the dashed line is what a map without information reaches by chance; models are in colour, "
        "baselines in grey. An embedder whose recall falls when density is regressed out (raw → adjusted) was "
        "scoring through cell density."),
    "confounders": (
        "**What this shows:** how much of each technical or trivial variable (cell count, intensity, focus, "
        "plate, position) a simple linear probe can read from each embedding, and how similar the embeddings "
        "are to each other (CKA). **How to read it:** an R² near 1 means the embedding encodes that variable "
        "almost perfectly; that is fine for a biology-driven variable, a warning for plate or focus."),
    "relationships": (
        "**What this shows:** one gene at a time: first whether it has a phenotype at all (its replicates "
        "differ from controls), then its known partners and its nearest neighbours in every map, then the "
        "images behind a pair. **How to read it:** trust a gene's neighbours only when the gene is active; a "
        "★ marks a neighbour that is a known partner. Percentiles near 0 or 100 mean the map relates the pair."),
    "plates": (
        "**What this shows:** each plate as a grid of wells coloured by one per-well value (cell count, "
        "intensity, focus, a probe's residual, or how far the well sits from its perturbation's mean), and a "
        "strip of images ordered along a confounder or a map direction. **How to read it:** a gradient across "
        "rows, columns or edges is a plate effect; click a well to see its images, and read the strip from left "
        "to right to see what 'high cell count' or 'this direction' looks like."),
    "guide": (
        "**What this shows:** the words behind every number in bioviz, written for biologists, with a worked "
        "example on the demo screen. **How to read it:** start with *Why baselines*, then follow the worked "
        "example from the scorecard to the images of a pair only the model finds."),
}

# column -> tooltip; a column that starts with a key ending in ' ' or ':' takes that key's text
TOOLTIPS = {
    "embedder": "the embedding (a model, or a diagnostic baseline) the row is about",
    "kind": "model = a network trained on images; baseline = a diagnostic embedding with no biology learned",
    "mean recall": "recall averaged over the relationship sources: the share of known pairs the map relates "
                   "beyond the chosen percentile thresholds",
    "recall": "share of the source's known pairs whose cosine similarity is beyond either percentile threshold "
              "of random pairs",
    "recall ": "recall for this relationship source (share of its known pairs beyond either threshold)",
    "drop": "raw recall minus recall after regressing the confounder out of the embedding: a large drop means "
            "the score came from the confounder",
    "cell-count R²": "how well a linear probe reads the well's cell count from the embedding (1 = perfectly, "
                     "0 = not at all)",
    "ci_low": "lower end of the 95% bootstrap interval",
    "ci_high": "upper end of the 95% bootstrap interval",
    "n_pairs": "how many known pairs were scored",
    "null_size": "how many random pairs the percentiles come from",
    "null": "recall a map without information reaches by chance (the share of random pairs beyond the thresholds)",
    "null_model": "'all' = each pair judged against all pairs; 'matched:...' = only against pairs whose members "
                  "share its confounder levels",
    "adjusted_for": "'' = raw; else the confounders regressed out of the embedding before scoring",
    "mechanism": "the planted mechanism of the pairs (simulated screens only); '' = all pairs",
    "threshold": "lower/upper percentile of random pairs' similarity a known pair must pass",
    "source": "where the known relationships come from (CORUM complexes, HuMAP, Reactome, SIGNOR, StringDB; "
              "planted on the simulated screen)",
    "percentile": "where the pair's cosine falls among random pairs (near 0 or 100 = related)",
    " pct": "percentile of the pair's cosine among random pairs in this embedder's map (near 0 or 100 = related)",
    "cosine": "cosine similarity of the two perturbation profiles in the map (1 = same direction)",
    "value": "the metric's value",
    "metric": "r2 = probe R² (regression), accuracy / chance = plate classification",
    "confounder": "the technical or trivial variable the probe predicts",
    "cka": "linear CKA: 1 = the two embeddings have the same geometry, 0 = unrelated",
    "accuracy": "how often a linear probe names the well's plate from its embedding",
    "chance": "accuracy of always guessing the most common plate",
    "fraction significant:": "share of perturbations with corrected p < 0.05",
    "mean mAP:": "mean average precision over perturbations (copairs)",
    "diff": "recall of the embedder minus recall of the baseline, on the same pairs",
    "p_value": "paired bootstrap p-value that the embedder beats the baseline",
    "rank": "1 = the most similar perturbation in this map",
    "known": "the sources that list this neighbour as a known partner of the query ('' = none)",
    "planted mechanism": "how the simulated screen planted the pair's similarity (density, intensity, morphology)",
    "recalled by models": "models whose map relates the pair beyond the thresholds",
    "baselines that also recall it": "baselines that relate it too: a pair recalled by cell_count is a density pair",
    "recalled by": "models that relate the pair while no baseline does",
    "cell_count": "nuclei counted in the well's image",
    "focus": "image sharpness (variance of the Laplacian); low = out of focus",
    "intensity": "mean pixel intensity of a channel",
}
# the activity/consistency columns the Relationships query view shows
from .neighbors import ACTIVITY_COLUMNS  # noqa: E402

TOOLTIPS.update(ACTIVITY_COLUMNS)


def tooltip(column: str) -> str | None:
    """The tooltip for a column name: exact match first, then the longest prefix/suffix key."""
    c = str(column)
    if c in TOOLTIPS:
        return TOOLTIPS[c]
    hits = [k for k in TOOLTIPS if (k.endswith((" ", ":")) and c.startswith(k)) or (k.startswith(" ") and c.endswith(k))
            or (k in ("drop", "intensity") and c.startswith(k))]
    return TOOLTIPS[max(hits, key=len)] if hits else None


def column_help(columns) -> dict[str, str]:
    """{column: tooltip} for the columns that have one."""
    return {c: t for c in columns if (t := tooltip(c))}
