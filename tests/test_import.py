"""`bioviz import`: fixtures written in each distributed layout, plus the real data in ../shared.

Every import is then read back (`bioviz info`) and embedded (pixel_stats for image datasets,
precomputed for tables); pixel values read through a parquet shard or Zarr array are compared
with what the fixture wrote.
"""
from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from bioviz.cli import main
from bioviz.screen import read_screen

from conftest import REAL, write_png

KW = dict(workers=0, batch_size=4, confounders=False)


def run_cli(capsys, *argv):
    rc = main(list(argv))
    out = capsys.readouterr()
    return rc, out.out, out.err


def embed_ok(root, names):
    from bioviz.embed import embed

    screen = read_screen(root)
    return screen, embed(screen, names, **KW)


# -- RxRx3-core ------------------------------------------------------------------------------------
RXRX3_ROWS = [  # the README's sample rows, plus enough wells for two experiments
    ("gene-079_8_H29", "gene-079", 8, "H29", "RPLP2", "RPLP2_guide_4", "", "", "CRISPR"),
    ("gene-079_8_H30", "gene-079", 8, "H30", "RPLP2", "RPLP2_guide_2", "", "", "CRISPR"),
    ("gene-079_8_AD27", "gene-079", 8, "AD27", "RXRX3-43938", "RXRX3-43938_guide_6", "", "", "CRISPR"),
    ("gene-079_8_P28", "gene-079", 8, "P28", "EMPTY_control", "EMPTY_control", "", "", "CRISPR"),
    ("gene-079_8_P29", "gene-079", 8, "P29", "EMPTY_control", "EMPTY_control", "", "", "CRISPR"),
    ("gene-079_8_P30", "gene-079", 8, "P30", "EMPTY_control", "EMPTY_control", "", "", "CRISPR"),
    ("compound-001_19_D20", "compound-001", 19, "D20", "", "Dequalinium",
     "CC1=[N+](CCCCCCCCCC[N+]2=C(C)C=C(N)C3=CC=CC=C23)C2=CC=CC=C2C(N)=C1 |c:1,13,21,29,31,35,t:16,19,23,27|",
     0.25, "COMPOUND"),
    ("compound-001_19_D21", "compound-001", 19, "D21", "", "Dequalinium",
     "CC1=[N+](CCCCCCCCCC[N+]2=C(C)C=C(N)C3=CC=CC=C23)C2=CC=CC=C2C(N)=C1 |c:1,13,21,29,31,35,t:16,19,23,27|",
     2.5, "COMPOUND"),
    ("compound-001_11_U08", "compound-001", 11, "U08", "", "EMPTY_control", "", "", "COMPOUND"),
    ("compound-001_11_U09", "compound-001", 11, "U09", "", "EMPTY_control", "", "", "COMPOUND"),
    ("compound-001_43_B08", "compound-001", 43, "B08", "", "CRISPR_control", "", "", "COMPOUND"),
]


def pixels(well_id: str, channel: int) -> np.ndarray:
    rng = np.random.default_rng(abs(hash((well_id, channel))) % 2**32)
    return rng.integers(0, 256, (24, 24), dtype=np.uint8)


@pytest.fixture
def rxrx3_core(tmp_path):
    """metadata_rxrx3_core.csv, OpenPhenom embeddings and two WebDataset parquet shards, as published."""
    import imagecodecs
    import pyarrow as pa
    import pyarrow.parquet as pq

    d = tmp_path / "rxrx3-core"
    (d / "data").mkdir(parents=True)
    cols = ["well_id", "experiment_name", "plate", "address", "gene", "treatment", "SMILES", "concentration",
            "perturbation_type"]
    meta = pd.DataFrame(RXRX3_ROWS, columns=cols)
    meta["cell_type"] = "HUVEC"
    meta.to_csv(d / "metadata_rxrx3_core.csv", index=False)
    rng = np.random.default_rng(0)
    emb = pd.DataFrame(rng.normal(size=(len(meta), 384)), columns=[f"feature_{i}" for i in range(384)])
    emb.insert(0, "well_id", meta["well_id"])
    emb = emb[emb["well_id"] != "gene-079_8_P29"]  # one well without an embedding row
    emb.to_parquet(d / "OpenPhenom_rxrx3_core_embeddings.parquet", index=False)
    keys, blobs = [], []
    for r in meta.itertuples():
        for c in range(1, 7):
            if r.well_id == "gene-079_8_H30" and c == 6:
                continue  # a well lacking channel 6 in the shards
            keys.append(f"{r.experiment_name}/Plate{r.plate}/{r.address}_s1_{c}")
            blobs.append({"bytes": imagecodecs.jpeg2k_encode(pixels(r.well_id, c), level=0), "path": None})
    half = len(keys) // 2
    img_type = pa.struct([("bytes", pa.binary()), ("path", pa.string())])
    for i, sl in enumerate((slice(0, half), slice(half, None))):
        table = pa.table({"__key__": pa.array(keys[sl], pa.string()), "jp2": pa.array(blobs[sl], img_type)})
        pq.write_table(table, d / "data" / f"train-0000{i}-of-00002.parquet", row_group_size=7)
    return d


def test_rxrx3_core_import_reads_shards_lazily(rxrx3_core, tmp_path, capsys):
    out = tmp_path / "ds"
    rc, text, err = run_cli(capsys, "import", "rxrx3-core", "--metadata", str(rxrx3_core / "metadata_rxrx3_core.csv"),
                            "--embeddings", str(rxrx3_core / "OpenPhenom_rxrx3_core_embeddings.parquet"),
                            "--images", str(rxrx3_core / "data"), "--out", str(out))
    assert rc == 0, err
    assert "skipped 1 wells without an embedding row or with NaN features (first: gene-079_8_P29)" in text
    assert "skipped 1 wells without all 6 channel images in the shards (first: gene-079_8_H30)" in text
    assert "found 9 wells (9 sites) on 4 plates in 2 batches" in text
    assert "perturbations: 2 genes, 1 compound; 5 control sites (CRISPR_control, EMPTY_control)" in text
    assert "concentration (2 sites, 2 values)" in text and "SMILES (2 sites, 1 value)" in text
    screen = read_screen(out)
    obs = screen.obs.set_index("well_id")
    assert obs.loc["gene-079_8_H29", "perturbation"] == "RPLP2"          # gene from treatment, as EFAAR does
    assert obs.loc["gene-079_8_AD27", "perturbation"] == "RXRX3-43938"
    assert (obs.loc["gene-079_8_AD27", ["row", "col", "well"]].tolist() == [29, 27, "AD27"])
    assert obs.loc["compound-001_19_D20", "perturbation_type"] == "compound"
    assert float(obs.loc["compound-001_19_D20", "concentration"]) == 0.25
    assert obs.loc["compound-001_43_B08", "is_control"] and obs.loc["compound-001_43_B08", "perturbation_type"] == "control"
    assert obs.loc["gene-079_8_P28", "batch"] == "gene-079" and obs.loc["gene-079_8_P28", "plate"] == "gene-079_8"
    assert screen.control_label == "EMPTY_control"
    assert screen.channels == ["DNA", "ER", "Actin", "RNA", "Mito", "WGA"]
    # The images are members of the shards, never extracted: nothing but the tables in the folder.
    assert sorted(p.name for p in out.iterdir()) == ["dataset.json", "metadata.csv"]
    site = screen.load_site_raw("compound-001_19_D21")
    for c in range(6):
        np.testing.assert_array_equal(site[c], pixels("compound-001_19_D21", c + 1))  # lossless round trip
    assert run_cli(capsys, "info", "--dataset", str(out))[0] == 0
    screen, res = embed_ok(out, ["pixel_stats", "precomputed"])
    emb = pd.read_parquet(rxrx3_core / "OpenPhenom_rxrx3_core_embeddings.parquet").set_index("well_id")
    got = res["precomputed"].set_index("well_id")
    np.testing.assert_allclose(got.to_numpy(), emb.loc[got.index].to_numpy(), rtol=1e-6)
    from bioviz.embed import embedding_info

    assert embedding_info(screen, "precomputed")["config"]["kind"] == "model"
    means = res["pixel_stats"].set_index("well_id").iloc[:, 0]
    assert means.nunique() == len(means)  # each site's own pixels


def test_rxrx3_core_bad_input(rxrx3_core, tmp_path, capsys):
    bad = pd.read_csv(rxrx3_core / "metadata_rxrx3_core.csv")
    bad["concentration"] = bad["concentration"].astype(object)
    bad.loc[5, "concentration"] = "0.25 uM"
    bad.to_csv(tmp_path / "m.csv", index=False)
    rc, _, err = run_cli(capsys, "import", "rxrx3-core", "--metadata", str(tmp_path / "m.csv"), "--out", str(tmp_path / "o"))
    assert rc == 2 and "column 'concentration' mixes numbers and text (e.g. '0.25 uM')" in err
    pd.DataFrame({"well_id": ["a"], "x": [1]}).to_csv(tmp_path / "other.csv", index=False)
    rc, _, err = run_cli(capsys, "import", "rxrx3-core", "--metadata", str(tmp_path / "other.csv"), "--out", str(tmp_path / "o"))
    assert rc == 2 and "does not look like metadata_rxrx3_core.csv: column 'experiment_name' is missing" in err
    (tmp_path / "empty").mkdir()
    rc, _, err = run_cli(capsys, "import", "rxrx3-core", "--metadata", str(rxrx3_core / "metadata_rxrx3_core.csv"),
                         "--images", str(tmp_path / "empty"), "--out", str(tmp_path / "o"))
    assert rc == 2 and "no parquet shards found" in err
    # The whole Hugging Face folder: the embeddings parquet beside data/ is not a shard and is passed over.
    rc, text, err = run_cli(capsys, "import", "rxrx3-core", "--metadata", str(rxrx3_core / "metadata_rxrx3_core.csv"),
                            "--images", str(rxrx3_core), "--out", str(tmp_path / "o"))
    assert rc == 0 and "(1 other parquet files ignored: OpenPhenom_rxrx3_core_embeddings.parquet)" in text


# -- RxRx1 -----------------------------------------------------------------------------------------
def test_rxrx1_import(tmp_path, capsys):


    root = tmp_path / "rxrx1"
    rows = []
    for exp in ("HUVEC-01", "HEPG2-02"):
        for well, sirna, wtype in (("B02", "s21721", "treatment"), ("B03", "EMPTY", "negative_control"),
                                   ("AA04", "s501", "positive_control")):
            for site in (1, 2):
                rows.append(dict(site_id=f"{exp}_1_{well}_{site}", well_id=f"{exp}_1_{well}", cell_type=exp.split("-")[0],
                                 dataset="train", experiment=exp, plate=1, well=well, site=site, well_type=wtype,
                                 sirna=sirna, sirna_id=1))
                for c in range(1, 7):
                    if (exp, well, site, c) == ("HEPG2-02", "B02", 2, 3):
                        continue
                    write_png(root / "images" / exp / "Plate1" / f"{well}_s{site}_w{c}.png",
                              np.full((16, 16), 10 * c + site, dtype=np.uint8))
    pd.DataFrame(rows).to_csv(root / "metadata.csv", index=False)
    rc, text, err = run_cli(capsys, "import", "rxrx1", "--root", str(root), "--out", str(tmp_path / "ds"))
    assert rc == 0, err
    assert "skipped 1 sites without all 6 channel images (first: HEPG2-02_1_B02_s2)" in text
    assert "found 6 wells (11 sites) on 2 plates in 2 batches" in text
    screen, res = embed_ok(tmp_path / "ds", ["pixel_stats"])
    assert screen.control_label == "EMPTY" and int(screen.obs["is_control"].sum()) == 4
    assert screen.load_site_raw("HUVEC-01_1_AA04_s2")[2, 0, 0] == 32
    assert res["pixel_stats"].shape[0] == 11
    rc, _, err = run_cli(capsys, "import", "rxrx1", "--root", str(tmp_path / "nothing"), "--out", str(tmp_path / "o"))
    assert rc == 2 and "no metadata.csv (expected the RxRx1 layout" in err


# -- profiles ----------------------------------------------------------------------------------------
def test_profiles_cellprofiler_names_annotate_and_feature_drops(tmp_path, capsys):
    rng = np.random.default_rng(1)
    wells = [f"{r}{c:02d}" for r in "AB" for c in range(1, 7)]
    comp = ["DMSO", "bortezomib", "MG-132", "DMSO", "taxol", "bortezomib"] * 2
    df = pd.DataFrame({"Image_Metadata_Plate": "P1", "Image_Metadata_Well": wells, "Metadata_compound": comp,
                       "Metadata_dose": [0, 1, 1, 0, 3, 3] * 2})
    for i in range(5):
        df[f"Cells_AreaShape_f{i}"] = rng.normal(size=len(df))
    df["Cells_Constant"] = 7.0
    df["Nuclei_AllNaN"] = np.nan
    df["Image_FileName_DNA"] = "x.tif"
    with gzip.open(tmp_path / "p.csv.gz", "wt") as fh:
        df.to_csv(fh, index=False)
    pd.DataFrame({"compound": ["bortezomib", "MG-132", "taxol"],
                  "moa": ["proteasome inhibitor", "proteasome inhibitor", "tubulin stabilizer"]}).to_csv(
        tmp_path / "moa.csv", index=False)
    out = tmp_path / "ds"
    rc, text, err = run_cli(capsys, "import", "profiles", str(tmp_path / "p.csv.gz"), "--annotate",
                            str(tmp_path / "moa.csv"), "--on", "compound", "--out", str(out))
    assert rc == 0, err
    assert "features: 7 read, 1 NaN-only dropped, 1 constant dropped, 0 with NaN in some wells dropped, 5 kept" in text
    assert "annotated 8 of 12 rows from moa.csv on compound=compound (4 had no match)" in text
    assert "perturbations: 3 compounds; 4 control sites (DMSO)" in text
    assert "moa (8 sites, 2 values)" in text and "concentration (12 sites, 3 values)" in text
    screen = read_screen(out)
    assert screen.channels == [] and screen.config["precomputed"]["kind"] == "handcrafted"
    assert screen.obs.set_index("well")["moa"]["A05"] == "tubulin stabilizer"
    assert run_cli(capsys, "info", "--dataset", str(out))[0] == 0
    _, res = embed_ok(out, ["precomputed"])
    got = res["precomputed"].set_index("well_id")
    np.testing.assert_allclose(got.to_numpy(), df[[f"Cells_AreaShape_f{i}" for i in range(5)]].to_numpy())
    # Bad input: a labels table with a mixed-type column, a table matching no layout.
    pd.DataFrame({"compound": ["taxol", "MG-132"], "dose": [1.5, "10 uM"]}).to_csv(tmp_path / "mixed.csv", index=False)
    rc, _, err = run_cli(capsys, "import", "profiles", str(tmp_path / "p.csv.gz"), "--annotate",
                         str(tmp_path / "mixed.csv"), "--on", "compound", "--out", str(tmp_path / "o"))
    assert rc == 2 and "column 'dose' mixes numbers and text (e.g. '10 uM')" in err
    pd.DataFrame({"a": [1.0], "b": [2.0]}).to_csv(tmp_path / "plain.csv", index=False)
    rc, _, err = run_cli(capsys, "import", "profiles", str(tmp_path / "plain.csv"), "--out", str(tmp_path / "o"))
    assert rc == 2 and "matches no profile layout: no Metadata_* or Image_Metadata_* columns" in err


# -- CellProfiler per-image table ------------------------------------------------------------------
def test_cellprofiler_image_csv(tmp_path, capsys):
    import tifffile

    img_dir = tmp_path / "images"
    img_dir.mkdir()
    rows = []
    for i, (well, site) in enumerate([("A01", 1), ("A01", 2), ("B02", 1)]):
        rec = {"ImageNumber": i + 1, "Metadata_Plate": "CP1", "Metadata_Well": well, "Metadata_Site": site,
               "Count_Cells": 10 + i}
        for ch in ("DNA", "Actin"):
            name = f"{well}_s{site}_{ch}.tif"
            tifffile.imwrite(img_dir / name, np.full((20, 20), 1000 * (i + 1), dtype=np.uint16))
            rec[f"FileName_Orig{ch}"] = name
            rec[f"PathName_Orig{ch}"] = "/analysis/machine/gone"  # as moved from the analysis machine
        rec["FileName_IllumDNA"] = "illum.npy"
        rows.append(rec)
    pd.DataFrame(rows).to_csv(tmp_path / "Image.csv", index=False)
    pd.DataFrame({"well": ["A01", "B02"], "compound": ["DMSO", "taxol"]}).to_csv(tmp_path / "map.csv", index=False)
    rc, text, err = run_cli(capsys, "import", "cellprofiler", "--image-csv", str(tmp_path / "Image.csv"),
                            "--root", str(img_dir), "--perturbations", str(tmp_path / "map.csv"), "--out", str(tmp_path / "ds"))
    assert rc == 0, err
    assert "3 images with channels DNA, Actin from Image.csv" in text
    assert "found 2 wells (3 sites) on 1 plate in 1 batch" in text
    screen, res = embed_ok(tmp_path / "ds", ["pixel_stats"])
    assert screen.load_site_raw("CP1_A01_s2").max() == 2000 and screen.control_label == "DMSO"


# -- image files by template (Phenix) ---------------------------------------------------------------
def test_images_phenix_template_planes_and_missing_channel(tmp_path, capsys):
    import tifffile

    root = tmp_path / "Images"
    root.mkdir()
    for r, c in ((1, 1), (1, 2), (2, 1)):
        for f in (1, 2):
            for p in (1, 2):
                for ch in (1, 2, 3):
                    if (r, c, f, ch) == (2, 1, 2, 3):
                        continue
                    tifffile.imwrite(root / f"r{r:02d}c{c:02d}f{f:02d}p{p:02d}-ch{ch}sk1fk1fl1.tiff",
                                     np.full((12, 12), 100 * ch + p, dtype=np.uint16))
    pd.DataFrame({"Metadata_Well": ["A01", "A02", "B01"], "Metadata_gene": ["non-targeting", "RAB30", "TP53"]}).to_csv(
        tmp_path / "map.csv", index=False)
    rc, text, err = run_cli(capsys, "import", "images", "--root", str(root), "--pattern", "phenix", "--channels",
                            "3=DNA,1=ER,2=Mito", "--perturbations", str(tmp_path / "map.csv"), "--plate", "BR1",
                            "--out", str(tmp_path / "ds"))
    assert rc == 0, err
    assert "2 focal planes found; using plane 1" in text
    assert "skipped 1 sites without an image for every channel (first: BR1/B01/s2 (no DNA))" in text
    assert "found 3 wells (5 sites) on 1 plate in 1 batch" in text
    assert "perturbations: 2 genes; 2 control sites (non-targeting)" in text
    screen, res = embed_ok(tmp_path / "ds", ["pixel_stats"])
    assert screen.channels == ["DNA", "ER", "Mito"]
    np.testing.assert_array_equal(screen.load_site_raw("BR1_A02_s1")[:, 0, 0], [301, 101, 201])
    rc, _, err = run_cli(capsys, "import", "images", "--root", str(root), "--pattern", "{plate}/{well}_s{site}_w{channel}.tif",
                         "--out", str(tmp_path / "o"))
    assert rc == 2 and "matched none of 34 image files (expected names like 'PLATE1/C03_s1_w1.tif')" in err


def test_images_ome_zarr_plate(tmp_path, capsys):
    import zarr

    root = tmp_path / "plate.ome.zarr"
    g = zarr.open_group(str(root), mode="w", zarr_format=2)
    g.attrs["plate"] = {"wells": [{"path": "A/1"}, {"path": "B/3"}], "rows": [{"name": "A"}, {"name": "B"}],
                        "columns": [{"name": "1"}, {"name": "3"}]}
    for w, val in (("A/1", 5), ("B/3", 9)):
        wg = g.require_group(w)
        wg.attrs["well"] = {"images": [{"path": "0"}]}
        ig = wg.require_group("0")
        ig.attrs["multiscales"] = [{"axes": [{"name": a} for a in "czyx"], "datasets": [{"path": "0"}]}]
        ig.attrs["omero"] = {"channels": [{"label": "DNA"}, {"label": "Mito"}]}
        a = ig.create_array("0", shape=(2, 1, 8, 8), dtype="uint16")
        a[:] = np.stack([np.full((1, 8, 8), val), np.full((1, 8, 8), val + 1)])
    rc, text, err = run_cli(capsys, "import", "images", "--root", str(root), "--out", str(tmp_path / "ds"))
    assert rc == 0, err
    screen, _ = embed_ok(tmp_path / "ds", ["pixel_stats"])
    assert screen.channels == ["DNA", "Mito"]
    np.testing.assert_array_equal(screen.load_site_raw("plate_B03_s1")[:, 0, 0], [9, 10])


# -- the real data in ../shared ---------------------------------------------------------------------
needs_real = pytest.mark.skipif(not REAL.is_dir(), reason="../shared/data/real is absent (real public data)")


@needs_real
def test_real_lincs_plate(tmp_path, capsys):
    table = REAL / "profiles" / "lincs_A549_SQ00015054" / "SQ00015054_normalized_feature_select.csv.gz"
    rc, text, err = run_cli(capsys, "import", "profiles", str(table), "--out", str(tmp_path / "lincs"))
    assert rc == 0, err
    assert "found 384 wells (384 sites) on 1 plate in 1 batch" in text
    assert "perturbations: 58 compounds; 24 control sites (DMSO)" in text
    assert "moa (342 sites, 50 values)" in text
    assert "454 kept" in text
    _, res = embed_ok(tmp_path / "lincs", ["precomputed"])
    assert res["precomputed"].shape == (384, 455)


@needs_real
def test_real_pediatric_plates_with_plate_maps(tmp_path, capsys):
    d = REAL / "profiles" / "pediatric_cancer_atlas_bulk"
    tables = sorted(d.glob("BR*_bulk_feature_selected.parquet"))
    rc, text, err = run_cli(capsys, "import", "profiles", *map(str, tables),
                            "--annotate", str(d / "Barcode_platemap_pilot_data.csv"), "--on", "Plate=barcode",
                            "--annotate", str(d / "{platemap_file}.csv"), "--on", "Well=well",
                            "--perturbation", "cell_line", "--control", "none", "--out", str(tmp_path / "ped"))
    assert rc == 0, err
    assert "found 1120 wells (1120 sites) on 6 plates" in text
    assert "annotated 1120 of 1120 rows from {platemap_file}.csv" in text
    obs = read_screen(tmp_path / "ped").obs
    # Oracle: the seeding density joined from the plate maps is the one the profiles carry themselves.
    own = pd.concat([pd.read_parquet(t, columns=["Metadata_Plate", "Metadata_Well", "Metadata_seeding_density"])
                     for t in tables])
    own = own.set_index(own["Metadata_Plate"] + "_" + own["Metadata_Well"] + "_s1")["Metadata_seeding_density"]
    joined = obs.set_index("well_id")["seeding_density"].astype(int)
    assert (joined == own.loc[joined.index].astype(int)).all()
    assert sorted(obs["seeding_density"].astype(int).unique()) == [1000, 2000, 4000, 8000, 12000]
    assert sorted(obs["time_point"].astype(int).unique()) == [24, 48, 72]
    embed_ok(tmp_path / "ped", ["precomputed"])


@needs_real
def test_real_tiff_site_phenix_and_cellprofiler(tmp_path, capsys):
    s = REAL / "images" / "pediatric_cancer_atlas_BR00143976_C03_s3"
    rc, text, err = run_cli(capsys, "import", "images", "--root", str(s / "images" / "orig"), "--pattern", "phenix",
                            "--channels", "5=DNA,2=ER,6=RNA,3=AGP,4=Mito,1=Brightfield",
                            "--perturbations", str(s / "Assay_Plate1_platemap.csv"), "--perturbation", "cell_line",
                            "--control", "none", "--plate", "BR00143976", "--out", str(tmp_path / "site"))
    assert rc == 0, err
    assert "found 1 well (1 site) on 1 plate" in text
    screen, res = embed_ok(tmp_path / "site", ["pixel_stats"])
    assert screen.obs.loc[0, "well_id"] == "BR00143976_C03_s3" and screen.obs.loc[0, "seeding_density"] == 1000
    # CellProfiler's own table for the same site names the same files for the same channels.
    rc, text, err = run_cli(capsys, "import", "cellprofiler", "--image-csv", str(s / "BR00143976_shrunken.parquet"),
                            "--root", str(s / "images" / "orig"), "--control", "none", "--out", str(tmp_path / "cp"))
    assert rc == 0, err
    cp = read_screen(tmp_path / "cp")
    for ch in ("DNA", "ER", "RNA", "AGP", "Mito", "Brightfield"):
        assert cp.obs.loc[0, f"image_{ch}"] == screen.obs.loc[0, f"image_{ch}"]


@needs_real
def test_real_jump_zarr(tmp_path, capsys):
    j = REAL / "images" / "jump_rab30_mini"
    pd.DataFrame({"Plate": ["BR00123947", "CP-CC9-R1-05"], "Well": ["G01", "L07"], "gene": ["RAB30", "RAB30"]}).to_csv(
        tmp_path / "perts.csv", index=False)
    rc, text, err = run_cli(capsys, "import", "images", "--root", str(j / "images.zarr"), "--sites", str(j / "sites.csv"),
                            "--channels", str(j / "channels.csv"), "--perturbations", str(tmp_path / "perts.csv"),
                            "--control", "none", "--out", str(tmp_path / "jump"))
    assert rc == 0, err
    assert "found 2 wells (2 sites) on 2 plates in 2 batches" in text
    screen, res = embed_ok(tmp_path / "jump", ["pixel_stats"])
    assert screen.channels == ["AGP", "DNA", "ER", "Mito", "RNA"]
    import zarr

    arr = zarr.open_array(str(j / "images.zarr" / "images"), mode="r")
    np.testing.assert_array_equal(screen.load_site_raw("CP-CC9-R1-05_L07_s0"), arr[1])
    # The README's table: ORF site RNA max 65535, CRISPR site DNA max 1000.
    assert screen.load_site_raw("BR00123947_G01_s1")[4].max() == 65535


@pytest.mark.slow
def test_rxrx3_core_fixture_import_embed_benchmark(tmp_path, capsys):
    """import -> embed -> benchmark on an RxRx3-core-layout fixture with two planted CORUM complexes."""
    from bioviz.embed import embed
    from bioviz.relationships import corum_complexes

    complexes = corum_complexes()
    g1 = list(complexes["Ribosome, cytoplasmic"][:12])
    g2 = [g for g in complexes["39S ribosomal subunit, mitochondrial"] if g not in g1][:12]
    rows = []
    for exp in ("gene-001", "gene-002"):
        for k, (g, guide) in enumerate([(g, i) for g in g1 + g2 for i in (1, 2)], start=1):
            rows.append((f"{exp}_1_A{k:02d}", exp, 1, f"A{k:02d}", g, f"{g}_guide_{guide}", "", "", "CRISPR"))
        for j in range(1, 9):
            rows.append((f"{exp}_2_B{j:02d}", exp, 2, f"B{j:02d}", "EMPTY_control", "EMPTY_control", "", "", "CRISPR"))
    for p, conc in ((1, 0.25), (2, 2.5)):
        for j in range(1, 11):
            rows.append((f"compound-001_{p}_C{j:02d}", "compound-001", p, f"C{j:02d}", "", f"CPD-{j}", "CC", conc, "COMPOUND"))
    for j in range(1, 9):
        rows.append((f"compound-001_3_D{j:02d}", "compound-001", 3, f"D{j:02d}", "", "EMPTY_control", "", "", "COMPOUND"))
    meta = pd.DataFrame(rows, columns=["well_id", "experiment_name", "plate", "address", "gene", "treatment", "SMILES",
                                       "concentration", "perturbation_type"]).assign(cell_type="HUVEC")
    meta.to_csv(tmp_path / "metadata_rxrx3_core.csv", index=False)
    rng = np.random.default_rng(0)
    X = rng.normal(size=(len(meta), 384))
    for genes in (g1, g2):  # each complex shares a direction in the "OpenPhenom" space
        X[meta["gene"].isin(genes).to_numpy()] += 1.5 * rng.normal(size=384)
    emb = pd.DataFrame(X, columns=[f"feature_{i}" for i in range(384)]).assign(well_id=meta["well_id"])
    emb.to_parquet(tmp_path / "emb.parquet", index=False)
    out = tmp_path / "ds"
    rc, text, err = run_cli(capsys, "import", "rxrx3-core", "--metadata", str(tmp_path / "metadata_rxrx3_core.csv"),
                            "--embeddings", str(tmp_path / "emb.parquet"), "--out", str(out))
    assert rc == 0, err
    assert "perturbations: 24 genes, 10 compounds; 24 control sites (EMPTY_control)" in text
    embed(read_screen(out), ["precomputed", "random"], **KW)
    rc, _, err = run_cli(capsys, "benchmark", "--dataset", str(out), "--embedders", "precomputed,random", "--n-boot", "20")
    assert rc == 0, err
    rec = pd.read_csv(out / "results" / "recall.csv")
    corum = rec[(rec["source"] == "CORUM") & (rec["threshold"] == "0.05_0.95") & rec["adjusted_for"].isna()]
    corum = corum.set_index("embedder")
    assert corum.loc["precomputed", "recall"] > corum.loc["random", "ci_high"]

    # ... and through the dashboard: every page on the imported screen (embeddings, no images) runs
    # without an exception or error box, and Home's scorecard carries the benchmark's CORUM recall
    from test_app_pages import PAGES, app, df_with, no_error, texts

    at = app(out)
    no_error(at)
    card = df_with(at, "mean recall").set_index("embedder")
    assert card.loc["precomputed", "recall CORUM"] == pytest.approx(corum.loc["precomputed", "recall"])
    for page in PAGES:
        at.switch_page(page).run()
        no_error(at)
    at.switch_page("app_pages/4_Relationships.py").run()
    at.text_input(key="rel_pair_text").input(f"{g1[0]},{g1[1]}").run()
    no_error(at)
    assert "No images to show" in texts(at)  # embeddings only: said, not an empty gallery


def test_named_templates_match_instrument_names():
    from bioviz.importers.files import compile_template

    rx, _ = compile_template("imagexpress")
    m = rx.match("Week1_150607_B02_s3_w2A8B2C4D1-0E6F.tif")
    assert (m["well"], m["site"], m["channel"]) == ("B02", "3", "2")
    assert rx.match("AA14_s1_w5.tif")["well"] == "AA14"
    rx, _ = compile_template("phenix")
    m = rx.match("r16c24f09p03-ch5sk1fk1fl1.tiff")
    assert (m["row"], m["col"], m["site"], m["plane"], m["channel"]) == ("16", "24", "09", "03", "5")
    rx, _ = compile_template("rxrx1")
    m = rx.match("HUVEC-1/Plate1/M23_s2_w3.png")
    assert (m["experiment"], m["plate"], m["well"], m["site"], m["channel"]) == ("HUVEC-1", "1", "M23", "2", "3")


@needs_real
def test_real_jump_target_plate_maps_annotate_a_pycytominer_profile(tmp_path, capsys):
    """A per-well profile keyed by plate + well gets compound, target and SMILES from JUMP's own tables."""
    j = REAL / "metadata" / "jump_target"
    layout = pd.read_csv(j / "JUMP-Target-1_compound_platemap.tsv", sep="\t")
    rng = np.random.default_rng(0)
    prof = pd.DataFrame({"Metadata_Source": "source_4", "Metadata_Plate": "BR00117010",
                         "Metadata_Well": layout["well_position"]})
    for i in range(4):
        prof[f"Cells_Intensity_f{i}"] = rng.normal(size=len(prof))
    prof.to_parquet(tmp_path / "BR00117010.parquet", index=False)
    rc, text, err = run_cli(capsys, "import", "profiles", str(tmp_path / "BR00117010.parquet"),
                            "--annotate", str(j / "JUMP-Target-1_compound_platemap.tsv"), "--on", "Well=well_position",
                            "--annotate", str(j / "JUMP-Target-1_compound_metadata.tsv"), "--on", "broad_sample",
                            "--out", str(tmp_path / "ds"))
    assert rc == 0, err
    n_dmso = int(layout["broad_sample"].isna().sum())
    n_cpd = layout["broad_sample"].dropna().nunique()
    meta = pd.read_csv(j / "JUMP-Target-1_compound_metadata.tsv", sep="\t")
    n_names = meta.set_index("broad_sample").loc[layout["broad_sample"].dropna().unique(), "pert_iname"].nunique()
    assert f"found 384 wells (384 sites) on 1 plate" in text
    assert f"perturbations: {n_names} compounds; {n_dmso} control sites (DMSO)" in text, (text, n_cpd)
    obs = read_screen(tmp_path / "ds").obs.set_index("well")
    assert obs.loc["A01", "perturbation"] == "gabapentin-enacarbil"
    assert obs.loc["A01", "target"].startswith("CACNA1A|") and obs.loc["A01", "SMILES"].startswith("CC(OC(=O)")


def test_profiles_per_plate_maps_by_template_and_common_features(tmp_path, capsys):
    """Two plates with different layouts: a barcode table names each plate's map, '{platemap_file}' picks it."""
    rng = np.random.default_rng(2)
    wells = ["A01", "A02", "B01", "B02"]
    for plate, extra in (("P1", "f_only_p1"), ("P2", "f_only_p2")):
        df = pd.DataFrame({"Metadata_Plate": plate, "Metadata_Well": wells})
        for f in ("f_a", "f_b", extra):
            df[f] = rng.normal(size=4)
        df.to_parquet(tmp_path / f"{plate}.parquet", index=False)
    pd.DataFrame({"barcode": ["P1", "P2"], "platemap_file": ["mapA", "mapB"]}).to_csv(tmp_path / "barcodes.csv", index=False)
    pd.DataFrame({"well": wells, "compound": ["DMSO", "x", "y", "z"], "density": [1000, 2000, 1000, 2000]}).to_csv(
        tmp_path / "mapA.csv", index=False)
    pd.DataFrame({"well": wells, "compound": ["z", "DMSO", "x", "y"], "density": [4000, 8000, 4000, 8000]}).to_csv(
        tmp_path / "mapB.csv", index=False)
    rc, text, err = run_cli(capsys, "import", "profiles", str(tmp_path / "P1.parquet"), str(tmp_path / "P2.parquet"),
                            "--annotate", str(tmp_path / "barcodes.csv"), "--on", "Plate=barcode",
                            "--annotate", str(tmp_path / "{platemap_file}.csv"), "--on", "Well=well",
                            "--out", str(tmp_path / "ds"))
    assert rc == 0, err
    assert "2 tables: 2 features common to all kept, 2 present in only some dropped" in text
    obs = read_screen(tmp_path / "ds").obs.set_index("well_id")
    assert obs.loc["P1_A02_s1", "perturbation"] == "x" and obs.loc["P2_A02_s1", "perturbation"] == "DMSO"
    assert int(obs.loc["P2_B01_s1", "density"]) == 4000 and int(obs.loc["P1_B02_s1", "density"]) == 2000
    rc, _, err = run_cli(capsys, "import", "profiles", str(tmp_path / "P1.parquet"), "--annotate",
                         str(tmp_path / "{nope}.csv"), "--on", "Well=well", "--out", str(tmp_path / "o"))
    assert rc == 2 and "--annotate column 'nope' is not in the table" in err


def test_cell_lines_are_neither_genes_nor_compounds(tmp_path, capsys):
    """A profile whose perturbation column holds cell lines (the pediatric cancer atlas) is imported as
    perturbation_type 'other', not 'compound'; --perturbation-type still decides when given."""
    rng = np.random.default_rng(2)
    wells = [f"{r}{c:02d}" for r in "AB" for c in range(1, 5)]
    df = pd.DataFrame({"Metadata_Plate": "P1", "Metadata_Well": wells,
                       "Metadata_cell_line": ["A673", "SK-N-SH", "KP-N-YN", "A673"] * 2})
    for i in range(3):
        df[f"Cells_AreaShape_f{i}"] = rng.normal(size=len(df))
    df.to_csv(tmp_path / "p.csv", index=False)
    rc, text, err = run_cli(capsys, "import", "profiles", str(tmp_path / "p.csv"), "--perturbation", "cell_line",
                            "--control", "none", "--out", str(tmp_path / "ped"))
    assert rc == 0, err
    assert "treated as other (neither genes nor compounds) (--perturbation-type gene, compound to change)" in text
    assert "perturbations: 3 other (neither gene nor compound)" in text
    obs = read_screen(tmp_path / "ped").obs
    assert set(obs["perturbation_type"]) == {"other"}
    rc, text, err = run_cli(capsys, "import", "profiles", str(tmp_path / "p.csv"), "--perturbation", "cell_line",
                            "--perturbation-type", "compound", "--control", "none", "--out", str(tmp_path / "c"))
    assert rc == 0, err
    assert set(read_screen(tmp_path / "c").obs["perturbation_type"]) == {"compound"}


IMAGE_EMBEDDERS = ["pixel_stats", "cell_count", "morphology", "structure", "untrained_vit", "untrained_vit_per_channel",
                   "untrained_resnet", "untrained_resnet_per_channel"]


@needs_real
@pytest.mark.slow
@pytest.mark.parametrize("which", ["jump_zarr", "tiff_site"])
def test_real_images_every_image_embedder_and_the_pages_show_them(which, tmp_path, capsys):
    """issue 10's done-when on the real TIFF site and the JUMP Zarr: every image embedder runs (finite
    features for every site), and the dashboard shows their images (the Plates page's montage is
    drawn from the real files) with no exception or error box."""
    if which == "jump_zarr":
        j = REAL / "images" / "jump_rab30_mini"
        pd.DataFrame({"Plate": ["BR00123947", "CP-CC9-R1-05"], "Well": ["G01", "L07"],
                      "gene": ["RAB30", "RAB30"]}).to_csv(tmp_path / "perts.csv", index=False)
        args = ["import", "images", "--root", str(j / "images.zarr"), "--sites", str(j / "sites.csv"),
                "--channels", str(j / "channels.csv"), "--perturbations", str(tmp_path / "perts.csv")]
    else:
        s = REAL / "images" / "pediatric_cancer_atlas_BR00143976_C03_s3"
        args = ["import", "images", "--root", str(s / "images" / "orig"), "--pattern", "phenix",
                "--channels", "5=DNA,2=ER,6=RNA,3=AGP,4=Mito,1=Brightfield",
                "--perturbations", str(s / "Assay_Plate1_platemap.csv"), "--perturbation", "cell_line",
                "--plate", "BR00143976"]
    out = tmp_path / which
    rc, text, err = run_cli(capsys, *args, "--control", "none", "--out", str(out))
    assert rc == 0, err
    from bioviz.embed import embed

    screen = read_screen(out)
    res = embed(screen, IMAGE_EMBEDDERS, workers=0, batch_size=2)
    for name in IMAGE_EMBEDDERS:
        x = res[name].drop(columns="well_id").to_numpy()
        assert len(x) == len(screen.obs) and x.shape[1] > 0 and np.isfinite(x).all(), name
    from test_app_pages import app, no_error

    at = app(out, "app_pages/5_Plates.py")
    no_error(at)
    assert len(at.get("image")) >= 1  # the montage of real sites
