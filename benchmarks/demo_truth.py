"""The default demo's findings on seeds never used to tune anything, as mean +- sd.

The simulator's density parameters and the weakly supervised recipe were chosen looking at
seed 0, so seed 0 cannot confirm them.  This script builds the default demo on other seeds
(11, 12, ... by default), trains the weakly supervised model on each seed's training split with
the unchanged recipe, embeds everything, benchmarks with --adjust density, and prints every
number the README states about the demo.  The README's numbers are copied from its output.

    python benchmarks/demo_truth.py --seeds 2            # seeds 11 and 12 (~10 min each on 2 cores)
    python benchmarks/demo_truth.py --seed-list 11 --work /tmp/truth

Built folders are kept under --work and reused (delete one to rebuild it).
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd

FIRST_UNSEEN_SEED = 11
TH = "0.05_0.95"


def _bioviz(*args):
    r = subprocess.run([sys.executable, "-m", "bioviz", *args], capture_output=True, text=True)
    if r.returncode != 0:
        raise SystemExit(f"bioviz {' '.join(args)} failed:\n{r.stderr[-2000:]}")


def build(work: Path, seed: int, embedders: str = "all", n_boot: int = 1000) -> Path:
    """The default demo of ``seed`` with its weakly supervised model, embeddings and results."""
    root, train = work / f"demo{seed}", work / f"train{seed}"
    model = root / "models" / "weakly_supervised.pt"
    if not (root / "dataset.json").exists():
        _bioviz("demo", "--preset", "default", "--out", str(root), "--seed", str(seed))
    if "weakly_supervised" in embedders or embedders == "all":
        if not model.exists():
            if not (train / "dataset.json").exists():
                _bioviz("demo", "--preset", "default", "--split", "train", "--out", str(train), "--seed", str(seed))
            _bioviz("train", "--dataset", str(train), "--out", str(model), "--seed", str(seed))
    _bioviz("embed", "--dataset", str(root), "--embedders", embedders)
    summary = root / "results" / "summary.json"
    newest = max((p.stat().st_mtime for p in (root / "embeddings").glob("*.parquet")), default=0.0)
    if not summary.exists() or summary.stat().st_mtime < newest:  # an embedding changed: benchmark again
        _bioviz("benchmark", "--dataset", str(root), "--adjust", "density", "--n-boot", str(n_boot))
    return root


def findings(root: Path) -> dict[str, float]:
    """Every number the README states about the demo, from one benchmarked demo folder."""
    res = Path(root) / "results"
    recall = pd.read_csv(res / "recall.csv", keep_default_na=False)
    pairs = pd.read_parquet(res / "pairs.parquet")
    summary = json.loads((res / "summary.json").read_text())
    flag, also = f"recalled_{TH}", f"also_recalled_{TH}"
    out: dict[str, float] = {}

    def rec(emb, source="planted", mech="", adj=""):
        r = recall[(recall.embedder == emb) & (recall.source == source) & (recall.mechanism == mech)
                   & (recall.adjusted_for == adj) & (recall.threshold == TH)]
        if r.empty:
            return np.nan
        v = r.recall.iloc[0]
        return np.nan if v == "" else float(v)

    def gone(emb, adj="density"):
        r = recall[(recall.embedder == emb) & (recall.adjusted_for == adj) & (recall.threshold == TH)]
        return float(len(r) > 0 and (r.reason == f"explained by {adj}").all())

    raw = pairs[(pairs.adjusted_for == "") & pairs[flag]]
    corum = raw[raw.source == "CORUM"]
    embs = set(recall.embedder)
    out["planted pairs with mechanism none"] = float((pairs[pairs.source == "planted"].mechanism == "none").sum())
    out["planted pairs"] = float(recall[(recall.source == "planted") & (recall.mechanism == "")].n_pairs.iloc[0])
    out["random: planted-density recall"] = rec("random", mech="density")
    for e in ("cell_count", "untrained_resnet", "pixel_stats"):
        if e in embs:
            c = corum[corum.embedder == e]
            out[f"{e}: share of recalled CORUM pairs that are planted density"] = float((c.mechanism == "density").mean())
    if "cell_count" in embs:
        out["cell_count: planted-density recall"] = rec("cell_count", mech="density")
        out["cell_count: adjusted for density, nothing left (1 = yes)"] = gone("cell_count")
        out["cell_count: planted-density recall adjusted (nan = nothing left)"] = rec("cell_count", mech="density",
                                                                                       adj="density")
    if "pixel_stats" in embs:
        out["pixel_stats: planted-density recall"] = rec("pixel_stats", mech="density")
        out["pixel_stats: planted-density recall adjusted"] = rec("pixel_stats", mech="density", adj="density")
        r = recall[(recall.embedder == "pixel_stats") & (recall.adjusted_for == "density")]
        out["pixel_stats: density probe R2 after adjustment"] = float(r.probe_r2.astype(float).iloc[0])
    if "morphology" in embs:
        out["morphology: planted-morphology recall"] = rec("morphology", mech="morphology")
        out["morphology: planted-morphology recall adjusted"] = rec("morphology", mech="morphology", adj="density")
    if "weakly_supervised" in embs:
        w = raw[(raw.embedder == "weakly_supervised") & (raw.source == "planted")]
        out["weakly_supervised: planted-morphology recall"] = rec("weakly_supervised", mech="morphology")
        out["weakly_supervised: planted-morphology pairs recalled"] = float((w.mechanism == "morphology").sum())
        out["weakly_supervised: mean recall, five public sources"] = float(np.mean(
            [rec("weakly_supervised", s) for s in ("CORUM", "HuMAP", "Reactome", "SIGNOR", "StringDB")]))
        mo = pd.DataFrame(summary.get("model_only", []))
        if len(mo):
            m = mo[(mo.embedder == "weakly_supervised") & (mo.source == "planted") & (mo.threshold == TH)]
            if len(m):
                out["weakly_supervised: planted pairs recalled by no baseline"] = float(m["count"].iloc[0])
                out["weakly_supervised: ... expected by chance (mean)"] = float(m.chance_mean.iloc[0])
                out["weakly_supervised: ... expected by chance (97.5% point)"] = float(m.chance_high.iloc[0])
        out["weakly_supervised: planted-morphology pairs recalled by no baseline"] = float(
            ((w.mechanism == "morphology") & (w[also] == "alone")).sum())
    for e in ("morphology", "pixel_stats", "cell_count", "random"):
        if e in embs:
            out[f"{e}: mean recall, five public sources"] = float(np.mean(
                [rec(e, s) for s in ("CORUM", "HuMAP", "Reactome", "SIGNOR", "StringDB")]))
    return out


def table(per_seed: dict[int, dict[str, float]]) -> pd.DataFrame:
    df = pd.DataFrame(per_seed)
    out = pd.DataFrame({"mean": df.mean(axis=1), "sd": df.std(axis=1, ddof=1) if df.shape[1] > 1 else np.nan})
    for s in df.columns:
        out[f"seed {s}"] = df[s]
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, default=2, help=f"how many unseen seeds, from {FIRST_UNSEEN_SEED} (default 2)")
    ap.add_argument("--seed-list", type=int, nargs="+", default=None, help="explicit seeds instead")
    ap.add_argument("--work", default="data/demo-truth", help="where the demos are built and kept")
    ap.add_argument("--embedders", default="all", help="embedders to compute (default all; weakly_supervised "
                    "trains a model per seed first)")
    ap.add_argument("--n-boot", type=int, default=1000, help="bootstrap resamples of the benchmark")
    args = ap.parse_args(argv)
    seeds = args.seed_list or list(range(FIRST_UNSEEN_SEED, FIRST_UNSEEN_SEED + args.seeds))
    if 0 in seeds:
        print("warning: seed 0 tuned the simulator and the training recipe; it confirms nothing", file=sys.stderr)
    work = Path(args.work)
    per_seed = {}
    for s in seeds:
        print(f"seed {s}: building/benchmarking under {work}", file=sys.stderr)
        per_seed[s] = findings(build(work, s, args.embedders, args.n_boot))
    t = table(per_seed)
    print(f"Findings of the default demo at threshold {TH.replace('_', '/')}, seeds {', '.join(map(str, seeds))} "
          f"(mean +- sd over seeds)")
    print(f"command: python benchmarks/demo_truth.py --seed-list {' '.join(map(str, seeds))} "
          f"--embedders {args.embedders} --n-boot {args.n_boot}")
    for name, row in t.iterrows():
        vals = "  ".join(f"{row[f'seed {s}']:.3g}" for s in seeds)
        sd = "" if not np.isfinite(row["sd"]) else f" +- {row['sd']:.3g}"
        print(f"  {name:<72} {row['mean']:.3g}{sd}   [{vals}]")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
