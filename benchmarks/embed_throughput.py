"""Embedding throughput: sites/s per embedder on the default demo, and the untrained_vit pipeline
against its own physical limit (the bare ``model(x)`` forward on the same batches).

    python benchmarks/embed_throughput.py [--dataset data/demo] [--sites 512] [--embedders ...]
                                          [--device cpu|cuda] [--ray]

A site is one field of view with all its channels (5 x 128 x 128 on the default demo). Each
embedder is run alone through ``bioviz.embed.embed`` (force, no cache) on the first ``--sites``
sites, so the time includes reading PNGs, segmentation where needed and writing the parquet.
The ratio for untrained_vit is pipeline wall time / bare forward time over identical batches;
the target is at most 1.15.
"""
from __future__ import annotations

import argparse
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np


def subset_screen(src, n: int, where: Path):
    """The first n sites of ``src`` as their own dataset folder (images linked, not copied)."""
    from bioviz.screen import read_screen, write_screen

    obs = src.obs.iloc[:n].copy()
    (where / "images").symlink_to(Path(src.root).resolve() / "images")  # absolute: a relative --dataset must work
    write_screen(where, obs, channels=src.channels, colors=src.colors, control_label=src.control_label)
    return read_screen(where)


def machine() -> str:
    import torch

    cpu = platform.processor() or platform.machine()
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "no GPU"
    return f"{cpu}, {cores} cores, {gpu}; torch {torch.__version__}, {torch.get_num_threads()} threads"


def _sync(device: str) -> None:
    import torch

    if device.startswith("cuda"):
        torch.cuda.synchronize()


def bare_forward_ratio(screen, batch_size: int, workers: int, repeats: int, device: str = "cpu",
                       name: str = "untrained_vit") -> dict:
    """untrained_vit: pipeline time / bare forward time on the same batches.

    Both are timed ``repeats`` times, alternating, and the fastest of each kept: on a shared
    machine the minimum is the estimate least disturbed by other jobs.
    """
    import torch

    from bioviz.embed import create_embedder, embed
    from bioviz.embed.engine import channel_stats

    from bioviz.embed.networks import autocast

    emb = create_embedder(name)
    emb.prepare(screen, device, channel_stats=channel_stats(screen))
    wids = screen.obs["well_id"].tolist()
    chunk = 256  # the engine's batches never straddle its chunks; time the same batches
    batches = []
    for lo in range(0, len(wids), chunk):
        hi = min(len(wids), lo + chunk)
        for s in range(lo, hi, batch_size):
            imgs = np.stack([screen.load_site(w) for w in wids[s:min(hi, s + batch_size)]])
            with torch.inference_mode(), autocast(device):
                x = emb.preprocess(torch.from_numpy(imgs).to(device))
                batches.append(x.contiguous(memory_format=torch.channels_last))
    pipes, bares = [], []
    for _ in range(repeats):
        t0 = time.perf_counter()
        embed(screen, [name], force=True, batch_size=batch_size, workers=workers, confounders=False, device=device)
        pipes.append(time.perf_counter() - t0)
        with torch.inference_mode(), autocast(device):
            emb.model(batches[0])  # warm-up, as the pipeline's first batch also pays it
            _sync(device)
            t0 = time.perf_counter()
            for x in batches:
                emb.model(x)
            _sync(device)
            bares.append(time.perf_counter() - t0)
    # On a CPU-only machine the forward already uses every core, so decoding the PNGs cannot hide
    # behind it: time that unavoidable work too, to tell pipeline overhead from decoding.
    decodes = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        for w in wids:
            screen.load_site(w)
        decodes.append(time.perf_counter() - t0)
    return {"pipeline_s": min(pipes), "bare_forward_s": min(bares), "ratio": min(pipes) / min(bares),
            "decode_s": min(decodes), "ratio_with_decode": min(pipes) / (min(bares) + min(decodes)),
            "all_pipeline_s": pipes, "all_bare_s": bares}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dataset", default="data/demo", help="default demo folder (made with seed 0 if missing)")
    ap.add_argument("--sites", type=int, default=512, help="sites per embedder (default: %(default)s)")
    ap.add_argument("--embedders", default="all")
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--workers", type=int, default=None)
    ap.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"],
                    help="cuda: the GPU path (bf16 autocast); on a machine without one the GPU rows read "
                         "'not measured' (default: %(default)s)")
    ap.add_argument("--ray", action="store_true",
                    help="also the Ray engine's throughput (bioviz embed --engine ray) for the networks")
    ap.add_argument("--repeats", type=int, default=3, help="timings of the untrained_vit ratio (default: %(default)s)")
    ap.add_argument("--ratio-only", action="store_true", help="only the untrained_vit pipeline/forward ratio")
    args = ap.parse_args(argv)

    from bioviz.embed import resolve_names
    from bioviz.embed.registry import cpu_count
    from bioviz.screen import read_screen

    root = Path(args.dataset)
    if not (root / "dataset.json").exists():
        from bioviz.demo import make_demo

        print(f"making the default demo at {root} ...", file=sys.stderr)
        make_demo(root, preset="default", seed=0)
    full = read_screen(root)
    import torch

    if args.device == "cuda" and not torch.cuda.is_available():
        print(f"machine: {machine()}")
        print("| embedder | device | sites/s | pipeline / bare forward |")
        print("| --- | --- | ---: | ---: |")
        for name in ("untrained_vit", "untrained_resnet"):
            print(f"| {name} | cuda | not measured (no GPU) | not measured (no GPU) |")
        print("| Ray engine | cuda | not measured (no GPU) | |")
        return 0
    device = "cuda" if args.device == "cuda" or (args.device == "auto" and torch.cuda.is_available()) else "cpu"
    workers = min(4, cpu_count()) if args.workers is None else args.workers
    names = resolve_names(args.embedders)
    print(f"machine: {machine()}")
    print(f"dataset: {full.name}, first {min(args.sites, full.n_sites)} of {full.n_sites} sites, "
          f"channels {len(full.channels)}, batch {args.batch_size}, workers {workers}\n")
    from bioviz.embed import embed

    with tempfile.TemporaryDirectory() as tmp:
        screen = subset_screen(full, min(args.sites, full.n_sites), Path(tmp))
        weights = Path(full.root).resolve() / "models/weakly_supervised.pt"
        if "weakly_supervised" in names and weights.exists():
            (Path(tmp) / "models").mkdir()
            (Path(tmp) / "models/weakly_supervised.pt").symlink_to(weights)
        elif "weakly_supervised" in names:
            print(f"weakly_supervised skipped: no {weights} (bioviz train first)")
            names.remove("weakly_supervised")
        print("| embedder | features | sites/s | channel images/s | seconds |")
        print("| --- | ---: | ---: | ---: | ---: |")
        for name in ([] if args.ratio_only else names):
            t0 = time.perf_counter()
            df = embed(screen, [name], force=True, batch_size=args.batch_size, workers=workers,
                       device=device, confounders=False)[name]
            dt = time.perf_counter() - t0
            n = screen.n_sites
            print(f"| {name} | {df.shape[1] - 1} | {n / dt:,.1f} | {n * len(screen.channels) / dt:,.0f} | {dt:.1f} |",
                  flush=True)
        for net in [n for n in ("untrained_vit", "untrained_resnet") if n in names]:
            if net == "untrained_resnet" and device == "cpu":
                continue  # the CPU figure recorded is the ViT's; on a GPU both are the rows
            r = bare_forward_ratio(screen, args.batch_size, workers, args.repeats, device=device, name=net)
            print(f"\n{net} on {screen.n_sites} sites ({device}): pipeline {r['pipeline_s']:.2f} s "
                  f"({screen.n_sites / r['pipeline_s']:,.1f} sites/s), bare model(x) "
                  f"{r['bare_forward_s']:.2f} s (fastest of {args.repeats}), ratio {r['ratio']:.3f} "
                  f"(target <= {1.1 if device == 'cuda' else 1.15})")
            print("  all pipeline runs: " + ", ".join(f"{t:.2f}" for t in r["all_pipeline_s"])
                  + "; all bare runs: " + ", ".join(f"{t:.2f}" for t in r["all_bare_s"]))
            print(f"  decoding the same sites serially: {r['decode_s']:.2f} s; pipeline / (forward + decode) "
                  f"= {r['ratio_with_decode']:.3f}")
        if args.ray:
            from bioviz.embed.ray_engine import embed_ray

            for net in [n for n in ("untrained_vit", "untrained_resnet") if n in names]:
                t0 = time.perf_counter()
                embed_ray(screen, [net], force=True, batch_size=args.batch_size, device=device, confounders=False)
                dt = time.perf_counter() - t0
                print(f"Ray engine {net} ({device}): {screen.n_sites / dt:,.1f} sites/s "
                      f"({dt:.1f} s, local Ray start-up included)", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
