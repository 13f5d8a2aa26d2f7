"""`bioviz info`: images opened per channel and copied feature vectors flagged, each in one line."""
import numpy as np
import pandas as pd
import pytest

from bioviz.cli import main
from bioviz.screen import write_screen


def _screen(root, *, dna=None, rna=None, sites=1):
    """2 plates x 2 wells x `sites` sites, channels DNA and RNA as TIFFs (uint16 32x32 unless given)."""
    import tifffile

    rows = []
    for plate in ("P1", "P2"):
        for well, pert in (("A01", "NT"), ("A02", "TP53")):
            for site in range(1, sites + 1):
                rec = dict(well_id=f"{plate}_{well}_s{site}", batch="b", plate=plate, well=well, row=0,
                           col=int(well[1:]), site=site, perturbation=pert,
                           perturbation_type="control" if pert == "NT" else "gene", is_control=pert == "NT")
                for ch, arr in (("DNA", dna), ("RNA", rna)):
                    rel = f"images/{plate}_{well}_s{site}_{ch}.tif"
                    (root / "images").mkdir(parents=True, exist_ok=True)
                    tifffile.imwrite(root / rel, np.ones((32, 32), np.uint16) if arr is None else arr, photometric="minisblack")
                    rec[f"image_{ch}"] = rel
                rows.append(rec)
    write_screen(root, pd.DataFrame(rows), channels=["DNA", "RNA"], control_label="NT", name="t")
    return root


def _one_error_line(capsys):
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "Traceback" not in err[0], err
    return err[0]


def test_info_reports_dtype_and_shape_per_channel(tmp_path, capsys):
    _screen(tmp_path)
    assert main(["info", "--dataset", str(tmp_path)]) == 0
    assert "images       DNA uint16 32x32, RNA uint16 32x32" in capsys.readouterr().out


@pytest.mark.parametrize("arr, words", [
    (np.zeros((32, 32), np.float32), "bit depth float32"),
    (np.zeros((3, 32, 32), np.uint16), "has shape (3, 32, 32); expected one 2-D plane"),
])
def test_float_or_stack_fails_in_info_naming_the_file(tmp_path, capsys, arr, words):
    _screen(tmp_path, rna=arr)
    assert main(["info", "--dataset", str(tmp_path)]) == 2
    line = _one_error_line(capsys)
    assert line.startswith("bioviz info: error:") and words in line and "P1_A01_s1_RNA.tif" in line


def test_channels_of_different_sizes_fail_in_info(tmp_path, capsys):
    _screen(tmp_path, rna=np.ones((16, 32), np.uint16))
    assert main(["info", "--dataset", str(tmp_path)]) == 2
    line = _one_error_line(capsys)
    assert "different image shapes (DNA 32x32, RNA 16x32)" in line and "P1_A01_s1" in line


def test_copied_feature_vectors_across_wells_are_flagged(tmp_path, capsys):
    _screen(tmp_path, sites=2)
    rng = np.random.default_rng(0)
    wells = [("P1", "A01"), ("P1", "A02"), ("P2", "A01"), ("P2", "A02")]
    X = rng.normal(size=(4, 5))
    table = pd.DataFrame(X, columns=[f"feature_{i}" for i in range(5)])
    table.insert(0, "Metadata_Well", [w for _, w in wells])
    table.insert(0, "Metadata_Plate", [p for p, _ in wells])
    path = tmp_path / "profiles.csv"
    table.to_csv(path, index=False)
    # A per-well profile shared by both sites of a well is how per-well tables work: not flagged.
    assert main(["info", "--dataset", str(tmp_path), "--precomputed", str(path)]) == 0
    assert "profiles.csv: every well has its own feature vector" in capsys.readouterr().out
    # An export that copied P1/A02's row onto P2/A01 is.
    table.loc[2, [f"feature_{i}" for i in range(5)]] = X[1]
    table.to_csv(path, index=False)
    assert main(["info", "--dataset", str(tmp_path), "--precomputed", str(path)]) == 1
    out = capsys.readouterr().out
    assert "profiles.csv: 2 wells in 1 groups share identical feature vectors" in out
    assert "P1/A02 = P2/A01" in out and "P1/A01" not in out.split("WARNING")[1]


def test_precomputed_recorded_in_dataset_json_is_checked(tmp_path, capsys):
    import json

    _screen(tmp_path)
    ids = ["P1_A01_s1", "P1_A02_s1", "P2_A01_s1", "P2_A02_s1"]
    pd.DataFrame({"well_id": ids, "feature_0": [1.0, 2.0, 1.0, 2.0], "feature_1": [0.5, 0.5, 0.5, 0.5]}
                 ).to_parquet(tmp_path / "emb.parquet")
    cfg = json.loads((tmp_path / "dataset.json").read_text())
    cfg["precomputed"] = {"path": "emb.parquet", "kind": "model"}
    (tmp_path / "dataset.json").write_text(json.dumps(cfg))
    assert main(["info", "--dataset", str(tmp_path)]) == 1
    out = capsys.readouterr().out
    assert "emb.parquet: 4 wells in 2 groups" in out
    assert "P1/A01 = P2/A01" in out and "P1/A02 = P2/A02" in out
