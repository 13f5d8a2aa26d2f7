"""Maps, known-relationship recall (EFAAR), bootstrap, activity, probes, CKA and attribution."""
from .maps import aggregate, build_map, pca_centerscale, tvn  # noqa: F401
from .recall import DEFAULT_THRESHOLDS, known_relationship_recall, recall_table  # noqa: F401


def run_benchmark(screen, embedders=None, adjust=None, **kwargs):
    """See :func:`bioviz.bench.run.run_benchmark` (imported lazily: it pulls in copairs)."""
    from .run import run_benchmark as _run

    return _run(screen, embedders, adjust, **kwargs)
