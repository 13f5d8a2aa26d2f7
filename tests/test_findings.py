import pandas as pd

from bioviz.dashboard.findings import truth_findings


def _pairs():
    rows = []
    # cell_count recalls 4 density pairs and 1 none pair; adjusted, only 1 density pair is left
    for i, mech in enumerate(["density"] * 4 + ["none"] + ["morphology"] * 3):
        rows.append(dict(source="CORUM", entity1=f"A{i}", entity2=f"B{i}", embedder="cell_count", adjusted_for="",
                         mechanism=mech, **{"recalled_0.05_0.95": i < 5,
                                            "also_recalled_0.05_0.95": ""}))
        rows.append(dict(source="CORUM", entity1=f"A{i}", entity2=f"B{i}", embedder="cell_count",
                         adjusted_for="density", mechanism=mech, **{"recalled_0.05_0.95": i == 0,
                                                                    "also_recalled_0.05_0.95": ""}))
        # the model recalls the three morphology pairs, two of them alone
        rows.append(dict(source="CORUM", entity1=f"A{i}", entity2=f"B{i}", embedder="weakly_supervised",
                         adjusted_for="", mechanism=mech,
                         **{"recalled_0.05_0.95": mech == "morphology",
                            "also_recalled_0.05_0.95": {5: "alone", 6: "alone", 7: "morphology"}.get(i, "")}))
    return pd.DataFrame(rows)


def test_truth_findings_name_density_baseline_and_model_only_pairs():
    notes = truth_findings(_pairs())
    assert notes[0].startswith("**cell_count**: 80% of the CORUM pairs") and "4 of them fall to 1" in notes[0]
    assert notes[1] == ("**weakly_supervised** recalls 3 of 3 planted *morphology* CORUM pairs; 2 of them are "
                        "recalled by no baseline (open them on *Relationships*).")


def test_threshold_as_the_dashboard_writes_it():
    assert truth_findings(_pairs(), threshold="0.05/0.95") == truth_findings(_pairs())


def test_no_truth_no_findings():
    assert truth_findings(_pairs().drop(columns="mechanism")) == []
    assert truth_findings(None) == []


def test_headline_names_the_confounded_baseline_and_the_best_model():
    from bioviz.dashboard.findings import headline

    # datasets.scorecard's shape: models first, best recall first
    card = pd.DataFrame(dict(embedder=["weakly_supervised", "cell_count", "random"],
                             kind=["model", "baseline", "baseline"], **{"mean recall": [0.40, 0.30, 0.10],
                                                                         "drop adjusted for density": [0.02, 0.20, 0.0]}))
    notes = headline(card)
    assert notes == ["Baseline **cell_count** loses 0.20 recall when adjusted for density: its score "
                     "comes from that confounder.",
                     "Best model **weakly_supervised**: mean recall 0.40 vs 0.30 for the best baseline (cell_count)."]
    # a drop within DROP_NOTE is not called out; no baseline, no comparison
    small = card.assign(**{"drop adjusted for density": [0.0, 0.04, 0.0]})
    assert headline(small) == [notes[1]]
    assert headline(card[card["kind"] == "model"]) == []
