"""Tools (scanpy-style ``tl``): embed a screen, score maps, and diagnose confounders."""
from .bench import run_benchmark  # noqa: F401
from .bench.bootstrap import bootstrap_ci, paired_bootstrap_pvalue  # noqa: F401
from .bench.cka import linear_cka  # noqa: F401
from .bench.probes import confounder_probes  # noqa: F401
from .bench.recall import known_relationship_recall, recall_table  # noqa: F401
from .embed import (compute_confounders, computed_embedders, create_embedder, embed,  # noqa: F401
                    list_embedders, load_confounders, load_embedding, register_embedder)
from .relationships import load_relationships, read_relationship_csv  # noqa: F401
from .segment import count_nuclei, segment_nuclei  # noqa: F401
