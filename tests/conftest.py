from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"
REAL = SHARED / "data" / "real"


def write_png(path: Path, arr: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(arr).save(path)


@pytest.fixture
def small_screen(tmp_path):
    """A 2-plate, 8-well, 2-channel screen written by hand in the documented format."""
    from bioviz.screen import write_screen

    rng = np.random.default_rng(0)
    rows = []
    for p, plate in enumerate(["P1", "P2"]):
        for i, (well, pert) in enumerate([("A01", "NT"), ("A02", "TP53"), ("B01", "MDM2"), ("B02", "NT")]):
            wid = f"{plate}_{well}_s1"
            rec = dict(well_id=wid, batch=f"b{p}", plate=plate, well=well, row=ord(well[0]) - 65,
                       col=int(well[1:]), site=1, perturbation=pert,
                       perturbation_type="control" if pert == "NT" else "gene", is_control=pert == "NT")
            for ch in ("DNA", "RNA"):
                rel = f"images/{plate}/{well}_{ch}.png"
                write_png(tmp_path / rel, rng.integers(0, 65535, (32, 32), dtype=np.uint16))
                rec[f"image_{ch}"] = rel
            rows.append(rec)
    write_screen(tmp_path, pd.DataFrame(rows), channels=["DNA", "RNA"], control_label="NT", name="small")
    return tmp_path


def cellprofiler_nucleus_count(outlines: np.ndarray) -> int:
    """Nuclei CellProfiler outlined: closed regions inside its outline drawing (the reference count)."""
    from scipy import ndimage as ndi

    line = outlines.reshape(outlines.shape[0], outlines.shape[1], -1).max(-1) > 0
    lab, n = ndi.label(~line)
    areas = np.bincount(lab.ravel())
    background = int(np.argmax(areas[1:])) + 1
    return int(sum(1 for k in range(1, n + 1) if k != background and areas[k] >= 50))


@pytest.fixture(scope="session")
def standin(tmp_path_factory):
    """The synthetic dashboard dataset (tests/standin_dataset.py), written through the product's own
    writers, built once per session (~20 s on 2 shared cores). Read-only: a test that changes files
    works on a copy (``standin_copy``)."""
    from standin_dataset import make_standin

    return make_standin(tmp_path_factory.mktemp("standin") / "standin")


@pytest.fixture
def standin_copy(standin, tmp_path):
    import shutil

    d = tmp_path / "standin"
    shutil.copytree(standin, d)
    return d
