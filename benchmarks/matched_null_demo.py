"""Matched nulls on a demo seed never used for tuning: planted recall, all pairs -> matched null.

    python benchmarks/matched_null_demo.py --dataset DIR [--run] [--embedders a,b,...]

``DIR``: a default-preset demo (``bioviz demo --preset default --seed 11``) with its embeddings
(``bioviz embed``; the trained model needs ``models/weakly_supervised.pt`` from ``bioviz train`` on a
train split). ``--run`` first runs ``bioviz benchmark --matched-null density,intensity,...``.
Prints, per embedder and planted mechanism, recall at 0.05/0.95 under each null and checks the
issue's bars (exit 1 when one fails):

- planted-density pairs within 0.05 of chance (0.10) under matched:density for cell_count,
  pixel_stats and the untrained networks;
- planted-morphology pairs keep >= 80% of their all-pairs recall under matched:density for the
  morphology features and the trained model (weakly_supervised);
- planted-intensity pairs within 0.05 of chance under matched:intensity for confounder:intensity;
- random within its interval of 0.10 under every null.

The trained-model check lives here rather than in the test suite because training and embedding
it takes minutes (tests/test_matched_null.py checks the rest on the same seed).
"""
from __future__ import annotations

import argparse
import subprocess
import sys

import pandas as pd

NULLS = "density,intensity,focus,plate,density+intensity"
CHANCE = 0.10


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--dataset", required=True)
    ap.add_argument("--run", action="store_true", help="run bioviz benchmark with the matched nulls first")
    ap.add_argument("--embedders", default=None)
    ap.add_argument("--out", default=None, help="results folder (default <dataset>/results)")
    args = ap.parse_args(argv)
    if args.run:
        cmd = [sys.executable, "-m", "bioviz", "benchmark", "--dataset", args.dataset, "--matched-null", NULLS,
               "--adjust", "density", "--n-boot", "200", "--quiet"]
        if args.embedders:
            cmd += ["--embedders", args.embedders]
        if args.out:
            cmd += ["--out", args.out]
        subprocess.run(cmd, check=True)

    from bioviz.bench.results import read_results
    from bioviz.screen import read_screen

    screen = read_screen(args.dataset, check_images=False)
    rec = read_results(screen, out=args.out, tables=["recall"], null_model=None)["recall"]
    rec = rec[(rec.source == "planted") & (rec.threshold == "0.05_0.95")]
    raw = rec[rec.adjusted_for == ""]
    table = raw.pivot_table(index=["mechanism", "embedder"], columns="null_model", values="recall").round(3)
    adj = rec[(rec.adjusted_for == "density") & (rec.null_model == "all")]
    table["adjusted for density"] = adj.set_index(["mechanism", "embedder"])["recall"].round(3)
    with pd.option_context("display.width", 200, "display.max_rows", 200):
        print(table.to_string())
    r = raw.set_index(["embedder", "mechanism", "null_model"])
    fails, checks = [], []

    def check(ok, what):
        checks.append(("ok  " if ok else "FAIL") + " " + what)
        if not ok:
            fails.append(what)

    names = set(raw.embedder)
    for emb in [n for n in names if n in ("cell_count", "pixel_stats") or n.startswith("untrained_")]:
        a, m = r.loc[(emb, "density", "all"), "recall"], r.loc[(emb, "density", "matched:density"), "recall"]
        check(abs(m - CHANCE) <= 0.05, f"{emb}: planted density {a:.3f} -> {m:.3f} under matched:density (chance 0.10)")
    for emb in [n for n in names if n in ("morphology", "weakly_supervised")]:
        a, m = r.loc[(emb, "morphology", "all"), "recall"], r.loc[(emb, "morphology", "matched:density"), "recall"]
        check(m >= 0.8 * a, f"{emb}: planted morphology {a:.3f} -> {m:.3f} under matched:density (keeps >= 80%)")
    if "confounder:intensity" in names:
        a = r.loc[("confounder:intensity", "intensity", "all"), "recall"]
        m = r.loc[("confounder:intensity", "intensity", "matched:intensity"), "recall"]
        check(abs(m - CHANCE) <= 0.05, f"confounder:intensity: planted intensity {a:.3f} -> {m:.3f} under "
                                       "matched:intensity")
    if "random" in names:
        for nm, row in r.loc["random"].xs("", level="mechanism").iterrows():
            if row["reason"]:
                continue
            check(row["ci_low"] <= CHANCE <= row["ci_high"],
                  f"random under {nm}: {row['recall']:.3f} [{row['ci_low']:.3f}, {row['ci_high']:.3f}] holds 0.10")
    print()
    print("\n".join(checks))
    return 1 if fails else 0


if __name__ == "__main__":
    raise SystemExit(main())
