"""The simulated screen: reproducible bytes, the promised design, truth that matches the images."""
from pathlib import Path

import numpy as np
import pytest

from bioviz.cli import main
from bioviz.demo import make_demo
from bioviz.errors import BiovizError
from bioviz.relationships import SOURCES, load_relationships
from bioviz.screen import read_screen
from bioviz.segment import count_nuclei


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    return make_demo(tmp_path_factory.mktemp("demo") / "tiny", preset="tiny", seed=0)


def _files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_same_seed_same_bytes_other_seed_differs(tiny, tmp_path):
    again = make_demo(tmp_path / "again", preset="tiny", seed=0)
    a, b = _files(tiny), _files(again)
    assert a.keys() == b.keys()
    assert [k for k in a if a[k] != b[k]] == []
    other = _files(make_demo(tmp_path / "other", preset="tiny", seed=1))
    assert other["metadata.csv"] != a["metadata.csv"] or other["truth/genes.csv"] != a["truth/genes.csv"]
    assert not any(n.startswith(".") for n in (p.name for p in tmp_path.iterdir())), "staging left behind"


def test_design(tiny):
    s = read_screen(tiny)
    assert s.channels == ["DNA", "ER", "RNA", "AGP", "Mito"]
    assert s.colors["DNA"] == "#0000FF" and s.control_label == "non-targeting"
    obs = s.obs
    assert 120 <= len(obs) <= 200
    ctrl = obs[obs.is_control]
    assert (ctrl.perturbation == "non-targeting").all() and (ctrl.perturbation_type == "control").all()
    assert len(ctrl) >= 0.1 * len(obs)
    genes = obs[~obs.is_control]
    assert (genes.perturbation_type == "gene").all()
    reps = genes.groupby("perturbation").size()
    assert len(reps) >= 30 and reps.min() >= 3
    assert obs.plate.nunique() >= 2 and obs.batch.nunique() >= 2
    assert (genes.groupby("perturbation").plate.nunique() >= 2).all()
    assert obs.well_id.iloc[0].endswith("_s1") and "cell_type" in obs
    img = s.load_site_raw(obs.well_id.iloc[0])
    assert img.shape == (5, 64, 64) and img.dtype == np.uint16


def test_truth_tables(tiny):
    truth = read_screen(tiny).truth
    g = truth.genes
    assert list(g.columns[:4]) == ["gene", "complex", "mechanism", "effect_size"]
    assert set(g.mechanism) == {"morphology", "density", "intensity", "none"}
    assert g.gene.is_unique and len(g) >= 30
    assert (g[g.mechanism == "intensity"].channel != "").all()
    assert (g.groupby("complex").mechanism.nunique() == 1).all()
    screen_genes = set(read_screen(tiny).obs.perturbation) - {"non-targeting"}
    assert set(g.gene) == screen_genes
    assert list(truth.wells.columns[:2]) == ["well_id", "true_cell_count"]


def test_relationships_cover_real_tables(tiny):
    truth = read_screen(tiny).truth
    rel, genes = truth.relationships, set(truth.genes.gene)
    assert set(rel.mechanism) <= {"morphology", "density", "intensity", "none"}
    for src in SOURCES:
        real = load_relationships(src)
        real = real[real.entity1.isin(genes) & real.entity2.isin(genes)]
        ours = rel[rel.source == src]
        assert set(zip(real.entity1, real.entity2)) == set(zip(ours.entity1, ours.entity2)), src
    assert (rel.source == "CORUM").sum() >= 10
    # Pairs inside a morphology complex share the morphology mechanism.
    comp = truth.genes.set_index("gene")
    same = rel[rel.entity1.map(comp.complex) == rel.entity2.map(comp.complex)]
    morph = same[same.entity1.map(comp.mechanism) == "morphology"]
    assert len(morph) and (morph.mechanism == "morphology").all()


def test_planted_counts_match_segmentation(tiny):
    s = read_screen(tiny)
    wells = s.truth.wells.set_index("well_id")
    true = wells.loc[s.obs.well_id, "true_cell_count"].to_numpy()
    found = np.array([count_nuclei(s.load_site(w, ["DNA"])[0]) for w in s.obs.well_id])
    assert np.mean(np.abs(found - true) / true) < 0.10


def test_density_genes_have_fewer_cells(tiny):
    s = read_screen(tiny)
    df = s.obs.merge(s.truth.wells, on="well_id").merge(
        s.truth.genes, left_on="perturbation", right_on="gene", how="left")
    ctrl = df[df.is_control].true_cell_count.mean()
    dens = df[df.mechanism == "density"].true_cell_count.mean()
    assert dens < 0.8 * ctrl


def test_train_split_has_other_genes(tiny, tmp_path):
    train = read_screen(make_demo(tmp_path / "train", preset="tiny", seed=0, split="train"))
    bench = read_screen(tiny)
    tg, bg = set(train.truth.genes.gene), set(bench.truth.genes.gene)
    assert len(tg) >= 30 and not tg & bg
    assert set(train.truth.genes.mechanism) == {"morphology", "density", "intensity", "none"}
    assert train.obs[~train.obs.is_control].groupby("perturbation").size().min() >= 3


def test_cli(tmp_path, capsys):
    assert main(["demo", "--preset", "tiny", "--out", str(tmp_path / "d"), "--seed", "3"]) == 0
    assert (tmp_path / "d" / "truth" / "relationships.csv").exists()
    assert "wells" in capsys.readouterr().out
    # A second run replaces the previous demo in place.
    assert main(["demo", "--out", str(tmp_path / "d"), "--seed", "4"]) == 0
    with pytest.raises(SystemExit) as exc:
        main(["demo", "--preset", "huge", "--out", str(tmp_path / "e")])
    assert exc.value.code == 2
    assert "invalid choice" in capsys.readouterr().err


def test_refuses_to_overwrite_other_folders(tmp_path):
    (tmp_path / "keep.txt").write_text("mine")
    with pytest.raises(BiovizError, match="not a bioviz demo folder"):
        make_demo(tmp_path, preset="tiny")
    assert (tmp_path / "keep.txt").read_text() == "mine"
    with pytest.raises(BiovizError, match="preset"):
        make_demo(tmp_path / "x", preset="huge")
