"""``bioviz recall``: EFAAR known-relationship recall of one map file, as efaar-benchmarking computes it."""
from __future__ import annotations

import sys
from pathlib import Path

import pandas as pd

from ..errors import BenchmarkError

HELP = "known-relationship recall of a map (one row per perturbation), identical to efaar-benchmarking"


def add_parser(subparsers):
    p = subparsers.add_parser("recall", help=HELP, description=HELP)
    p.add_argument("--map", required=True, metavar="FILE", help="parquet or CSV: perturbation column + numeric features")
    p.add_argument("--pert-col", required=True, metavar="COL", help="column holding the perturbation (gene) labels")
    p.add_argument("--sources", default=None, metavar="LIST",
                   help="comma-separated public sources (CORUM,HuMAP,Reactome,SIGNOR,StringDB); "
                        "default all five unless --relationships is given")
    p.add_argument("--relationships", default=None, metavar="PAIRS.csv", help="your own pairs: CSV entity1,entity2")
    p.add_argument("--thresholds", nargs="+", default=["0.05,0.95", "0.1,0.9"], metavar="L,R",
                   help="percentile threshold pairs (default: 0.05,0.95 0.1,0.9)")
    p.add_argument("--out", required=True, metavar="OUT.csv")
    p.set_defaults(func=run)
    return p


def _read_map(path: Path, pert_col: str) -> tuple[pd.DataFrame, pd.Series]:
    if not path.exists():
        raise BenchmarkError(f"map file {path} does not exist")
    try:
        df = pd.read_parquet(path) if path.suffix.lower() in (".parquet", ".pq") else pd.read_csv(path)
    except Exception as exc:
        raise BenchmarkError(f"map file {path} could not be read: {exc}") from exc
    if pert_col not in df.columns:
        raise BenchmarkError(f"map file {path} has no column {pert_col!r} (columns: {', '.join(map(str, df.columns[:6]))}...)")
    feats = df.drop(columns=[pert_col])
    non_numeric = [c for c in feats.columns if not pd.api.types.is_numeric_dtype(feats[c])]
    if non_numeric:
        # metadata columns beside the features are common in map files; say what was left out
        print(f"bioviz recall: ignoring non-numeric columns {', '.join(map(str, non_numeric[:5]))}", file=sys.stderr)
        feats = feats.drop(columns=non_numeric)
    return feats, df[pert_col]


def _thresholds(items) -> list[tuple[float, float]]:
    out = []
    for item in items:
        try:
            lo, hi = (float(v) for v in item.split(","))
        except ValueError:
            raise BenchmarkError(f"threshold pair {item!r} must be two numbers like 0.05,0.95") from None
        out.append((lo, hi))
    return out


def run(args) -> int:
    from .. import atomic
    from ..bench.recall import known_relationship_recall
    from ..relationships import read_relationship_csv

    feats, labels = _read_map(Path(args.map), args.pert_col)
    sources = [s.strip() for s in args.sources.split(",") if s.strip()] if args.sources else None
    rels = read_relationship_csv(args.relationships) if args.relationships else None
    if rels is not None and sources is None:
        sources = []
    res = known_relationship_recall(
        feats, labels, sources=sources, relationships={"custom": rels} if rels is not None else None,
        thresholds=_thresholds(args.thresholds), what=f"map {args.map}",
    )
    for why in res.skipped.values():
        print(f"bioviz recall: skipped {why}", file=sys.stderr)
    atomic.write_csv(res.table, args.out)
    print(res.table.to_string(index=False))
    return 0
