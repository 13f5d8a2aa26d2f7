"""What an embedder is, for colours, legends and attribution: ``model``, ``handcrafted``,
``baseline`` or ``null``.

* ``model``: a learned representation under test (weakly_supervised, OpenPhenom, timm:...).
* ``handcrafted``: engineered cell features (morphology; CellProfiler profiles via precomputed).
* ``baseline``: a diagnostic that knows no biology by design (pixel statistics, cell count,
  untrained networks, structure, plate layout, confounder-only maps).
* ``null``: pure noise (random); it calibrates chance and is never a baseline a pair is
  "explained" by.

``precomputed`` tables take the kind as an option (``--config precomputed.kind=handcrafted``);
its default is ``model``.
"""
from __future__ import annotations

KINDS = ("model", "handcrafted", "baseline", "null")

BUILTIN = {
    "pixel_stats": "baseline", "cell_count": "baseline", "structure": "baseline", "plate_layout": "baseline",
    "morphology": "handcrafted", "random": "null",
    "weakly_supervised": "model", "openphenom": "model", "precomputed": "model",
}


def kind_of(name: str, config: dict | None = None) -> str:
    """The kind of embedder ``name`` (``config``: its cache config, read for ``precomputed``)."""
    if config and config.get("kind") in KINDS:
        return config["kind"]
    if name in BUILTIN:
        return BUILTIN[name]
    if name.startswith(("untrained_", "confounder:")):
        return "baseline"
    if name.startswith("precomputed"):
        return "model"
    return "model"  # timm:<model> and anything registered by a user
