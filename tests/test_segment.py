"""The nucleus counter: known synthetic counts and a real field against CellProfiler."""
from pathlib import Path

import numpy as np
import pytest
from scipy import ndimage as ndi

from bioviz.segment import count_nuclei, estimate_nucleus_diameter, segment_nuclei
from conftest import cellprofiler_nucleus_count

SHARED = Path(__file__).resolve().parents[1].parent / "shared"
REAL = SHARED / "data/real/images/pediatric_cancer_atlas_BR00143976_C03_s3/images"


def _disks(centers, radius, shape=(128, 128), noise=0.02, seed=0):
    yy, xx = np.mgrid[: shape[0], : shape[1]]
    img = np.zeros(shape, dtype=np.float32)
    for cy, cx in centers:
        img[(yy - cy) ** 2 + (xx - cx) ** 2 <= radius**2] = 0.6
    rng = np.random.default_rng(seed)
    return np.clip(img + rng.normal(0, noise, shape), 0, 1).astype(np.float32)


def test_separate_disks_counted_exactly():
    centers = [(20 + 30 * i, 20 + 30 * j) for i in range(4) for j in range(4)]
    img = _disks(centers, 7)
    assert count_nuclei(img) == 16
    assert abs(estimate_nucleus_diameter(img) - 14) < 3


def test_uint16_and_float_agree():
    img = _disks([(30, 30), (30, 90), (90, 60)], 9)
    as16 = (img * 65535).astype(np.uint16)
    assert count_nuclei(img) == count_nuclei(as16) == 3


def test_touching_pair_is_split():
    img = _disks([(64, 52), (64, 75)], 12, noise=0.0)
    labels, n = ndi.label(img > 0.3)
    assert n == 1  # one blob: only the watershed can separate them
    assert count_nuclei(img, nucleus_diameter=24) == 2


def test_debris_and_blank_images():
    img = _disks([(40, 40)], 10)
    img[100, 100] = 1.0  # a hot pixel is not a nucleus
    assert count_nuclei(img) == 1
    assert count_nuclei(np.zeros((32, 32), np.float32)) == 0
    assert segment_nuclei(np.zeros((32, 32), np.uint16)).dtype == np.int32


def test_border_nuclei_can_be_excluded():
    img = _disks([(2, 60), (64, 64)], 8)
    assert count_nuclei(img) == 2
    assert count_nuclei(img, exclude_border=True) == 1


@pytest.mark.skipif(not REAL.exists(), reason="../shared (real Cell Painting field) is absent")
def test_real_field_within_15_percent_of_cellprofiler():
    import tifffile

    dna = tifffile.imread(REAL / "orig/r03c03f03p01-ch5sk1fk1fl1.tiff")
    reference = cellprofiler_nucleus_count(tifffile.imread(REAL / "outlines/NucleiOutlines_BR00143976_C03_3.tiff"))
    assert 30 <= reference <= 45  # the outline file holds ~36 nuclei
    ours = count_nuclei(dna)
    assert abs(ours - reference) / reference <= 0.15, (ours, reference)
