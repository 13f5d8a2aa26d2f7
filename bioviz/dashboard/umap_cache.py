"""The UMAP layout cache lives in ``bioviz.bench.umap_cache`` (below the dashboard, so ``bioviz umap``
computes layouts without importing the dashboard). This name is that same module object, so
``from bioviz.dashboard.umap_cache import ...`` and monkeypatches of it keep working."""
import sys

from ..bench import umap_cache as _owner

sys.modules[__name__] = _owner
