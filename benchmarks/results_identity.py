"""Behaviour check for refactors: does `bioviz benchmark` write the same results/ as before?

    python benchmarks/results_identity.py --dataset data/demo --baseline /work/coord/results_before_issue8
    python benchmarks/results_identity.py --dataset /tmp/tiny --old-src /tmp/old   # old = `git archive REV bioviz`

The dataset folder is copied with modification times kept (its embeddings/ stay valid: cache
fingerprints use relative image paths and their size/mtime; copy a folder for it with `cp -a`, not
`cp -r`), ``bioviz benchmark --adjust density`` runs on the copy with this checkout's code, and every
``results/*.csv`` is compared byte for byte with the baseline folder, or with the same command run
on a second copy under an older source tree (``--old-src``, put first on PYTHONPATH).
``pairs.parquet`` is compared by content (its footer records the writer's library versions).
A feature may add columns (e.g. ``null_model``) or rows of a new null model: every old row must
then be found unchanged, digit for digit. ``summary.json`` may gain keys (a new field is not a changed number); every key the baseline has must
hold the same value, except timings. Exit 0 when identical, 1 otherwise.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
VOLATILE = {"seconds"}  # wall-clock time, never equal between runs


def run_benchmark(dataset: Path, out: Path, src: Path | None, extra) -> Path:
    work = out / "dataset"
    shutil.copytree(dataset, work, ignore=shutil.ignore_patterns("results"))
    env = dict(os.environ)
    if src is not None:
        env["PYTHONPATH"] = str(src) + os.pathsep + env.get("PYTHONPATH", "")
    cmd = [sys.executable, "-m", "bioviz", "benchmark", "--dataset", str(work), "--adjust", "density", *extra]
    r = subprocess.run(cmd, cwd=str(out), env=env, capture_output=True, text=True)
    if r.returncode:
        raise SystemExit(f"{' '.join(cmd)} failed ({'old' if src else 'this'} code):\n{r.stderr[-2000:]}")
    return work / "results"


notes: list[str] = []


def compare(base: Path, new: Path) -> list[str]:
    import pandas as pd

    problems = []
    for f in sorted(p.name for p in base.iterdir() if p.is_file()):
        a, b = base / f, new / f
        if not b.is_file():
            problems.append(f"{f}: missing in the new run")
        elif f.endswith(".csv"):
            if a.read_bytes() != b.read_bytes():
                # a feature may add columns (or rows of a new kind); the old ones must be unchanged
                da = pd.read_csv(a, keep_default_na=False, dtype=str)
                db = pd.read_csv(b, keep_default_na=False, dtype=str)
                new_cols = [c for c in db.columns if c not in da.columns]
                if [c for c in da.columns if c not in db.columns]:
                    problems.append(f"{f}: columns missing in the new run")
                    continue
                merged = da.merge(db[list(da.columns)].drop_duplicates(), how="left", indicator=True)
                lost = int((merged["_merge"] == "left_only").sum())
                if lost:
                    problems.append(f"{f}: {lost} of {len(da)} rows changed or missing")
                else:
                    notes.append(f"{f}: every old row identical to the last digit; new columns {new_cols}, "
                                 f"{len(db) - len(da)} new rows")
        elif f.endswith(".parquet"):
            da, db = pd.read_parquet(a), pd.read_parquet(b)
            shared = [c for c in da.columns if c in db.columns]
            if len(shared) < len(da.columns):
                problems.append(f"{f}: columns missing in the new run")
                continue
            if "null_model" in db.columns and "null_model" not in da.columns:  # rows of a newer null model
                db = db[db["null_model"] == "all"]
            try:
                pd.testing.assert_frame_equal(da.reset_index(drop=True), db[shared].reset_index(drop=True),
                                              check_exact=True)
            except AssertionError as exc:
                problems.append(f"{f}: differs ({str(exc).splitlines()[0]})")
        elif f.endswith(".json"):
            ja, jb = json.loads(a.read_text()), json.loads(b.read_text())
            for k, v in ja.items():
                if k not in VOLATILE and jb.get(k) != v:
                    problems.append(f"{f}: key {k!r} differs")
    return problems


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--dataset", type=Path, required=True, help="dataset folder with embeddings/")
    g = p.add_mutually_exclusive_group(required=True)
    g.add_argument("--baseline", type=Path, help="results/ folder written before the change")
    g.add_argument("--old-src", type=Path, help="folder holding the old bioviz package (git archive REV bioviz)")
    p.add_argument("--extra", nargs=argparse.REMAINDER, default=[], help="more `bioviz benchmark` options")
    args = p.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="bioviz-identity-") as tmp:
        tmp = Path(tmp)
        (tmp / "new").mkdir()
        new = run_benchmark(args.dataset, tmp / "new", None, args.extra)
        if args.old_src:
            (tmp / "old").mkdir()
            base = run_benchmark(args.dataset, tmp / "old", args.old_src.resolve(), args.extra)
        else:
            base = args.baseline
        problems = compare(base, new)
        files = sorted(p.name for p in base.iterdir() if p.is_file())
    for n in notes:
        print(n)
    if problems:
        print("DIFFERENT:\n  " + "\n  ".join(problems))
        return 1
    print(f"identical: {', '.join(files)} (csv byte for byte, parquet by content, json by value)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
