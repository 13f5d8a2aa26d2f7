import numpy as np
import pandas as pd
import pytest

from bioviz.cli import main
from bioviz.errors import DatasetError
from bioviz.images import read_image, to_float
from bioviz.screen import read_screen

from conftest import REAL


def _meta(root):
    return pd.read_csv(root / "metadata.csv", keep_default_na=False)


def test_reads_valid_screen(small_screen):
    s = read_screen(small_screen)
    assert s.channels == ["DNA", "RNA"] and s.control_label == "NT"
    assert s.obs["is_control"].sum() == 4
    site = s.load_site("P1_A02_s1")
    raw = s.load_site_raw("P1_A02_s1")
    assert site.shape == (2, 32, 32) and site.dtype == np.float32 and raw.dtype == np.uint16
    np.testing.assert_allclose(site, raw / 65535.0, rtol=1e-6)
    summ = s.summary()
    assert summ["plates"] == 2 and summ["batches"] == 2 and summ["perturbations_by_type"] == {"control": 1, "gene": 2}


@pytest.mark.parametrize("column", ["plate", "perturbation", "is_control", "well_id"])
def test_missing_column_is_named(small_screen, column):
    _meta(small_screen).drop(columns=[column]).to_csv(small_screen / "metadata.csv", index=False)
    with pytest.raises(DatasetError, match=f"required column '{column}'"):
        read_screen(small_screen)


def test_missing_image_names_file_and_well(small_screen):
    (small_screen / "images/P2/B01_RNA.png").unlink()
    with pytest.raises(DatasetError, match=r"images/P2/B01_RNA.png.*P2_B01_s1.*RNA"):
        read_screen(small_screen)


def test_duplicated_well_id_is_named(small_screen):
    m = _meta(small_screen)
    m.loc[3, "well_id"] = m.loc[0, "well_id"]
    m.to_csv(small_screen / "metadata.csv", index=False)
    with pytest.raises(DatasetError, match="well_id 'P1_A01_s1' appears more than once"):
        read_screen(small_screen)


def test_channel_absent_for_some_wells(small_screen):
    m = _meta(small_screen)
    m.loc[5, "image_RNA"] = ""
    m.to_csv(small_screen / "metadata.csv", index=False)
    with pytest.raises(DatasetError, match="channel RNA has no image for well 'P2_A02_s1'"):
        read_screen(small_screen)


def test_channel_column_absent(small_screen):
    _meta(small_screen).drop(columns=["image_RNA"]).to_csv(small_screen / "metadata.csv", index=False)
    with pytest.raises(DatasetError, match="image_RNA"):
        read_screen(small_screen)


def test_bad_json_and_missing_folder(small_screen, tmp_path):
    with pytest.raises(DatasetError, match="does not exist"):
        read_screen(tmp_path / "nope")
    (small_screen / "dataset.json").write_text("{oops")
    with pytest.raises(DatasetError, match="not valid JSON"):
        read_screen(small_screen)


def test_wrong_bit_depth_and_shape(tmp_path):
    import tifffile

    tifffile.imwrite(tmp_path / "f.tif", np.zeros((4, 4), np.float32))
    with pytest.raises(DatasetError, match="bit depth float32"):
        read_image(tmp_path / "f.tif")
    tifffile.imwrite(tmp_path / "s.tif", np.zeros((3, 4, 4), np.uint16))
    with pytest.raises(DatasetError, match="shape"):
        read_image(tmp_path / "s.tif")
    (tmp_path / "bad.png").write_bytes(b"not a png")
    with pytest.raises(DatasetError, match="could not be read"):
        read_image(tmp_path / "bad.png")


def test_cli_info_ok_and_one_line_error(small_screen, capsys):
    assert main(["info", "--dataset", str(small_screen)]) == 0
    out = capsys.readouterr().out
    assert "2 plates" in out and "DNA, RNA" in out and "1 control" in out
    (small_screen / "images/P1/A01_DNA.png").unlink()
    assert main(["info", "--dataset", str(small_screen)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "A01_DNA.png" in err[0] and "Traceback" not in err[0]


def test_fingerprint_changes_with_images(small_screen):
    import os

    before = read_screen(small_screen).fingerprint()
    assert read_screen(small_screen).fingerprint() == before
    p = small_screen / "images/P1/A01_DNA.png"
    st = p.stat()
    os.utime(p, ns=(st.st_atime_ns, st.st_mtime_ns + 10_000_000))
    assert read_screen(small_screen).fingerprint() != before


REAL_SITE = REAL / "images" / "pediatric_cancer_atlas_BR00143976_C03_s3" / "images" / "orig"


@pytest.mark.skipif(not REAL_SITE.exists(), reason="../shared/data/real is absent (a fresh clone has no ../shared)")
def test_real_six_channel_tiff_site_reads_through_the_same_reader():
    files = sorted(REAL_SITE.glob("r03c03f03p01-ch*sk1fk1fl1.tiff"))
    assert len(files) == 6
    planes = [read_image(f) for f in files]
    assert all(p.shape == (1080, 1080) and p.dtype == np.uint16 for p in planes)
    dna = to_float(planes[4])
    assert 0 < dna.mean() < 1 and dna.std() > 0


def test_atomic_writes_leave_no_temp_files_and_honour_umask(tmp_path):
    import os

    from bioviz import atomic

    atomic.write_text(tmp_path / "a.txt", "x")
    umask = os.umask(0)
    os.umask(umask)
    assert (tmp_path / "a.txt").stat().st_mode & 0o777 == 0o666 & ~umask
    with pytest.raises(RuntimeError):
        with atomic.atomic_path(tmp_path / "a.txt") as tmp:
            tmp.write_text("half")
            raise RuntimeError("interrupted")
    assert (tmp_path / "a.txt").read_text() == "x" and sorted(p.name for p in tmp_path.iterdir()) == ["a.txt"]
