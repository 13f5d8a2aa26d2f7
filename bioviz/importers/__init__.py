"""``bioviz import``: screens as they are distributed -> bioviz dataset folders (docs/datasets.md).

    from bioviz.importers import import_profiles
    import_profiles(["SQ00015054_normalized_feature_select.csv.gz"], "data/lincs")

Every importer writes ``metadata`` + ``dataset.json`` (docs/dataset-format.md), reads images in
place (never copies them) and reports what it found through ``log`` (print by default).
"""
from .common import ImportResult, summary_lines
from .files import NAMED_TEMPLATES, import_cellprofiler, import_images, import_zarr
from .profiles import import_profiles
from .rxrx import import_rxrx1, import_rxrx3_core

__all__ = ["ImportResult", "summary_lines", "NAMED_TEMPLATES", "import_cellprofiler", "import_images",
           "import_zarr", "import_profiles", "import_rxrx1", "import_rxrx3_core"]
