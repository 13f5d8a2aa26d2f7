"""Tools (scanpy-style ``tl``): embed a screen, benchmark it, score one map.

    bv.tl.embed(screen, embedders=["pixel_stats", "cell_count"])     # -> one row per embedder
    recall = bv.tl.benchmark(screen, adjust=["density"])           # -> results/recall.csv
    bv.tl.recall(screen, embedder="cell_count")                    # -> efaar's table, one map

Each takes the Screen first and keyword-only options and returns a table. They run the same code
as the CLI (``bioviz embed`` / ``bioviz benchmark``) and write to the same dataset folder.
"""
from __future__ import annotations

import pandas as pd

__all__ = ["embedders", "embed", "benchmark", "recall"]


def embedders(screen) -> pd.DataFrame:
    """Every registered embedder and every cache in ``embeddings/``: ``embedder, kind, status``
    (up to date, stale: recompute, foreign, missing), models first."""
    from .bench.attribution import embedder_kind
    from .embed import embedding_status, list_embedders

    st = embedding_status(screen, list_embedders())
    return pd.DataFrame({"embedder": list(st), "kind": [embedder_kind(n) for n in st],
                         "status": list(st.values())})


def embed(screen, *, embedders="all", device: str = "auto", batch_size: int = 32, workers: int | None = None,
          configs: dict | None = None, force: bool = False, progress=None) -> pd.DataFrame:
    """Compute (or reuse the caches of) ``embedders`` ("all", "a,b" or a list) and the confounder
    table; returns ``embedder, kind, n_sites, n_features, device, seconds`` per embedder."""
    from .bench.attribution import embedder_kind
    from .embed import embed as _embed
    from .embed import embedding_info

    out = _embed(screen, embedders, device=device, batch_size=batch_size, workers=workers, configs=configs,
                 force=force, progress=progress)
    rows = []
    for name, df in out.items():
        info = embedding_info(screen, name) or {}
        rows.append(dict(embedder=name, kind=embedder_kind(name), n_sites=len(df), n_features=df.shape[1] - 1,
                         device=info.get("device", ""), seconds=info.get("seconds")))
    return pd.DataFrame(rows, columns=["embedder", "kind", "n_sites", "n_features", "device", "seconds"])


def benchmark(screen, *, embedders=None, adjust=None, matched_null=None, out=None, **options) -> pd.DataFrame:
    """Run the benchmark (``bioviz benchmark``: every up-to-date embedding unless ``embedders``),
    write ``results/``, and return its recall table as written (read back through
    ``bioviz.bench.results``). ``adjust``: confounders regressed out for the adjusted rows.
    ``matched_null``: confounder-matched nulls (``["density", "density+intensity"]``); the table
    then has every null's rows, told apart by ``null_model`` (``all``, ``matched:density``, ...).
    ``options``: the rest of :func:`bioviz.bench.run.run_benchmark` (sources, thresholds, method,
    aggregation, n_boot, seed, ...)."""
    from .bench.results import read_results
    from .bench.run import run_benchmark

    run_benchmark(screen, embedders, adjust, out=out, matched_null=matched_null, **options)
    return read_results(screen, out=out, tables=["recall"], null_model=None)["recall"]


def recall(screen, *, embedder: str, adjust=None, sources=None, thresholds=None, method: str | None = None,
           aggregation: str | None = None) -> pd.DataFrame:
    """Known-relationship recall of one embedder's map, live (nothing written): efaar's table
    (``source, null_size, query_size, recall_<l>_<r>``). The map is
    :func:`bioviz.pp.perturbation_map` (the benchmark's recipe unless ``method``/``aggregation``).
    A map whose cosines tie everywhere raises BenchmarkError with the reason ("not applicable: ...")."""
    from .bench.recall import DEFAULT_THRESHOLDS, recall_table
    from .pp import perturbation_map

    from .bench.recall import degenerate_map
    from .errors import BenchmarkError

    m = perturbation_map(screen, embedder=embedder, adjust=adjust, method=method, aggregation=aggregation)
    feats = m.drop(columns="perturbation")
    why = degenerate_map(feats.to_numpy(dtype=float))
    if why:  # as the benchmark: ties everywhere get the reason, never a number
        adj = [adjust] if isinstance(adjust, str) else list(adjust or [])
        raise BenchmarkError(f"recall of {embedder}{' adjusted for ' + '+'.join(adj) if adj else ''}: {why}")
    return recall_table(feats, m["perturbation"], sources=sources, thresholds=thresholds or DEFAULT_THRESHOLDS,
                        what=f"map of {embedder}")
