"""A scale table calculated from measured stage costs, not guessed.

    python benchmarks/scale.py [--sites 48] [--nodes 1,4,16,64] [--cores-per-node 32]
                               [--gpu-sites-per-s R] [--ray]
                               [--ratio-dataset data/demo --ratio-sites 1520 --ratio-repeats 3]
    python benchmarks/scale.py --umap 222601        # one UMAP layout at RxRx3-core size

1. Stage costs per image on this machine, on synthetic RxRx3-core-like sites (6 channels of
   512 x 512 8-bit PNG with cell-like blobs): read (the file's bytes), decode (PNG -> array),
   forward (untrained_vit and untrained_resnet on one core, at their default input size), write
   (the parquet chunk of one site's features). One core each, the median of the sites.
2. Projection: hours to embed RxRx3-core (222,601 wells x 6 channels, one site each) and a
   JUMP-sized screen (about 1.2 M wells x 5 channels x 9 sites) on N CPU nodes and N GPUs.
   Assumptions (printed with the table): stages are CPU-bound and scale linearly over cores and
   nodes (the Ray engine shares nothing between blocks); storage delivers the bytes (a site is
   ~1.2 MB of PNG; 1,000 sites/s need ~1.2 GB/s from object storage); a GPU node's rate is the
   smaller of the GPU's forward rate (``--gpu-sites-per-s``, measured by
   ``embed_throughput.py --device cuda``; "not measured" without it) and its host cores' decode
   rate.
3. Check: the Ray engine (``bioviz.embed.ray_engine``) on the same synthetic sites at 1 and 2
   local workers (``--ray``), against the projection for one node with 1 and 2 cores: steady
   rates (first to last batch), and the local engine on the same sites for reference.
4. ``--ratio-dataset``: Ray engine vs local engine throughput on the default demo (goal >= 0.9),
   both on the same first ``--ratio-sites`` sites with the same embedders, wall time of the whole
   command (Ray's start-up included) and of the pipeline alone; ``--ratio-repeats N`` runs N
   pairs, the order alternating, and reports the median (one pair varies by up to 0.15 here).
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

RXRX3 = dict(name="RxRx3-core", wells=222_601, channels=6, sites=1, px=512)
JUMP = dict(name="JUMP-sized", wells=1_200_000, channels=5, sites=9, px=1080)  # JUMP fields are 1080 x 1080
NETS = ("untrained_vit", "untrained_resnet")


def synthetic_screen(root: Path, n: int, channels: int = 6, px: int = 512, seed: int = 0):
    """n sites of ``channels`` x px x px 8-bit PNG with ~60 Gaussian blobs each (compresses like
    a real field: flat background, textured cells)."""
    import pandas as pd
    from PIL import Image

    from bioviz.screen import read_screen, write_screen

    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:px, 0:px]
    chans = [f"ch{c + 1}" for c in range(channels)]
    rows = []
    for i in range(n):
        base = np.zeros((px, px), np.float32)
        for _ in range(60):
            cy, cx, r = rng.uniform(0, px), rng.uniform(0, px), rng.uniform(6, 14)
            y0, y1, x0, x1 = int(max(0, cy - 3 * r)), int(min(px, cy + 3 * r)), int(max(0, cx - 3 * r)), int(min(px, cx + 3 * r))
            base[y0:y1, x0:x1] += np.exp(-((yy[y0:y1, x0:x1] - cy) ** 2 + (xx[y0:y1, x0:x1] - cx) ** 2) / (2 * r * r))
        well = f"{chr(65 + (i // 24) % 16)}{i % 24 + 1:02d}"
        rec = dict(well_id=f"P{i // 384}_{well}", batch="b0", plate=f"P{i // 384}", well=well, row=(i // 24) % 16,
                   col=i % 24 + 1, site=1, perturbation="NT" if i % 5 == 0 else f"G{i % 7}",
                   perturbation_type="control" if i % 5 == 0 else "gene", is_control=i % 5 == 0)
        for c, ch in enumerate(chans):
            img = np.clip(base * rng.uniform(60, 200) + rng.normal(12, 4, base.shape), 0, 255).astype(np.uint8)
            rel = f"images/{rec['plate']}/{well}_{ch}.png"
            (root / rel).parent.mkdir(parents=True, exist_ok=True)
            Image.fromarray(img).save(root / rel)
            rec[f"image_{ch}"] = rel
        rows.append(rec)
    write_screen(root, pd.DataFrame(rows), channels=chans, control_label="NT", name="synthetic-rxrx3")
    return read_screen(root)


def stage_costs(screen) -> dict:
    """Seconds per channel image (read, decode) and per site (forward per network, write), one core."""
    import torch

    from bioviz.embed import cache, create_embedder
    from bioviz.images import read_image

    torch.set_num_threads(1)
    wids = screen.obs["well_id"].tolist()
    read, decode = [], []
    for w in wids:
        for ch in screen.channels:
            p = screen.image_path(w, ch)
            t0 = time.perf_counter()
            p.read_bytes()
            t1 = time.perf_counter()
            read_image(p)  # reads again (from the page cache) and decodes
            t2 = time.perf_counter()
            read.append(t1 - t0)
            decode.append(max(0.0, (t2 - t1) - (t1 - t0)))
    imgs = np.stack([screen.load_site(w) for w in wids[:16]])
    out = {"read_s_per_image": float(np.median(read)), "decode_s_per_image": float(np.median(decode)),
           "png_bytes_per_site": float(np.mean([sum(screen.image_path(w, c).stat().st_size
                                                    for c in screen.channels) for w in wids]))}
    for name in NETS:
        e = create_embedder(name)
        e.resolve(screen)
        e.prepare(screen, "cpu")
        e.batch_features(imgs[:2])  # warm-up
        t0 = time.perf_counter()
        X = e.batch_features(imgs)
        out[f"forward_s_per_site[{name}]"] = (time.perf_counter() - t0) / len(imgs)
        out[f"features[{name}]"] = int(X.shape[1])
    e = create_embedder("untrained_vit")
    X = np.random.default_rng(0).normal(size=(256, 384)).astype(np.float32)
    t0 = time.perf_counter()
    for k in range(4):
        cache.write_chunk(screen, "untrained_vit", 9000 + k, "bench", cache.features_frame([f"w{i}" for i in range(256)], X))
    out["write_s_per_site"] = (time.perf_counter() - t0) / (4 * 256)
    cache.clear_partials(screen, "untrained_vit")
    return out


def per_site_cpu_seconds(costs: dict, channels: int, net: str, px_scale: float = 1.0) -> float:
    """One core's seconds for one site: read + decode every channel, forward, write."""
    return (channels * (costs["read_s_per_image"] + costs["decode_s_per_image"]) * px_scale
            + costs[f"forward_s_per_site[{net}]"] + costs["write_s_per_site"])


def projection(costs: dict, nodes: list[int], cores: int, gpu_rate: float | None, gpu_host_cores: int) -> list[str]:
    lines = ["| screen | network | hardware | N=" + " | N=".join(map(str, nodes)) + " |",
             "| --- | --- | --- |" + " ---: |" * len(nodes)]
    for scr in (RXRX3, JUMP):
        n_sites = scr["wells"] * scr["sites"]
        # Decoding scales with pixels; the networks see their fixed default input size whatever the
        # field size (the engine resizes), so only read+decode grow with a JUMP field.
        px_scale = (scr["px"] / RXRX3["px"]) ** 2
        for net in NETS:
            t_site = per_site_cpu_seconds(costs, scr["channels"], net, px_scale)
            cpu = [n_sites * t_site / (n * cores) / 3600 for n in nodes]
            lines.append(f"| {scr['name']} ({n_sites:,} sites) | {net} | CPU nodes x {cores} cores | "
                         + " | ".join(f"{h:,.2f} h" for h in cpu) + " |")
            if gpu_rate:
                t_dec = scr["channels"] * (costs["read_s_per_image"] + costs["decode_s_per_image"]) * px_scale
                per_gpu = min(gpu_rate, gpu_host_cores / t_dec)
                lines.append(f"| {scr['name']} ({n_sites:,} sites) | {net} | GPUs ({gpu_host_cores} host cores each) | "
                             + " | ".join(f"{n_sites / (n * per_gpu) / 3600:,.2f} h" for n in nodes) + " |")
            else:
                lines.append(f"| {scr['name']} ({n_sites:,} sites) | {net} | GPUs | "
                             + " | ".join("not measured" for _ in nodes) + " |")
    return lines


def ray_check(screen, workers: list[int], names: list[str]) -> dict:
    """Sites/s of the Ray engine's pipeline (first to last progress call, Ray's start-up excluded)
    and of the whole call, at each local worker count."""
    import ray

    from bioviz.embed.ray_engine import connect, embed_ray

    out = {}
    for w in workers:
        stamps = []
        connect(None, num_cpus=w)
        try:
            t0 = time.perf_counter()
            embed_ray(screen, names, force=True, confounders=False, batch_size=8, chunk_size=64,
                      progress=lambda d, t, m: stamps.append((time.perf_counter(), d)))
            wall = time.perf_counter() - t0
        finally:
            ray.shutdown()
        # From the call's start to the last site: actor start-up (building the network) included,
        # Ray's own start-up (connect above) not. Progress stamps come per batch, so a rate between
        # the first and last stamp would miss the first batch entirely.
        tb, db = stamps[-1]
        ta, da = stamps[0]
        # steady state: from the first finished batch to the last, once actors are built and warm;
        # this is what the projection (dedicated cores, no start-up) predicts
        out[w] = {"pipeline_sites_per_s": db / max(tb - t0, 1e-9), "call_s": wall, "sites": screen.n_sites,
                  "steady_sites_per_s": (db - da) / max(tb - ta, 1e-9) if db > da else float("nan")}
    return out


def engine_ratio(dataset: Path, n: int, names: list[str], repeats: int = 1) -> dict:
    """Local engine vs Ray engine on the same sites: the whole call (fresh caches each). With
    ``repeats`` > 1 the pair is run again, the order alternating (local first, then Ray first), and
    the median ratio is reported: one pair moved from 0.94 to 0.80 between two quiet runs here."""
    if repeats > 1:
        runs = [_engine_ratio_once(dataset, n, names, order=("local", "ray") if k % 2 == 0 else ("ray", "local"))
                for k in range(repeats)]
        out = dict(runs[0])
        out["runs"] = runs
        out["ratio_call"] = float(np.median([r["ratio_call"] for r in runs]))
        out["ratio_pipeline"] = float(np.median([r["ratio_pipeline"] for r in runs]))
        out["local"] = {k: float(np.median([r["local"][k] for r in runs])) for k in runs[0]["local"]}
        out["ray"] = {k: float(np.median([r["ray"][k] for r in runs])) for k in runs[0]["ray"]}
        return out
    return _engine_ratio_once(dataset, n, names)


def _engine_ratio_once(dataset: Path, n: int, names: list[str], order=("local", "ray")) -> dict:
    import shutil

    sys.path.insert(0, str(Path(__file__).parent))
    from embed_throughput import subset_screen

    from bioviz.embed import embed
    from bioviz.embed.ray_engine import embed_ray
    from bioviz.screen import read_screen

    full = read_screen(dataset)
    res = {}
    with tempfile.TemporaryDirectory() as tmp:
        screen = subset_screen(full, min(n, full.n_sites), Path(tmp))
        for engine in order:
            shutil.rmtree(screen.embeddings_dir, ignore_errors=True)
            stamps = []
            t0 = time.perf_counter()
            fn = embed if engine == "local" else embed_ray
            fn(screen, names, force=True, confounders=False,
               progress=lambda d, t, m: stamps.append((time.perf_counter(), d)))
            wall = time.perf_counter() - t0
            (ta, _), (tb, db) = stamps[0], stamps[-1]
            res[engine] = {"call_s": wall, "sites_per_s": screen.n_sites / wall, "pipeline_s": tb - t0}
        res["sites"] = screen.n_sites
    res["ratio_call"] = res["ray"]["sites_per_s"] / res["local"]["sites_per_s"]
    res["ratio_pipeline"] = res["local"]["pipeline_s"] / res["ray"]["pipeline_s"]
    return res


def umap_scale(n: int, dim: int = 384, seed: int = 0) -> dict:
    """Wall time and peak memory of one ``bioviz umap`` layout of n x dim (the UMAP cache's own
    compute_layout, same settings), on 50 Gaussian clusters so the graph has structure."""
    import resource

    from bioviz.bench.umap_cache import compute_layout

    rng = np.random.default_rng(seed)
    centres = rng.normal(0, 4, size=(50, dim)).astype(np.float32)
    x = centres[rng.integers(0, 50, n)] + rng.normal(0, 1, size=(n, dim)).astype(np.float32)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
    t0, c0 = time.perf_counter(), time.process_time()
    xy = compute_layout(x, 15, 0.1, 0, tqdm_kwds={"desc": "umap epochs", "file": sys.stderr, "mininterval": 30})
    out = {"n": n, "dim": dim, "wall_s": time.perf_counter() - t0, "cpu_s": time.process_time() - c0,
           "peak_rss_gb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20,
           "rss_before_gb": before, "input_gb": x.nbytes / 2**30, "finite": bool(np.isfinite(xy).all())}
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sites", type=int, default=48, help="synthetic 512 px sites to time (default: %(default)s)")
    ap.add_argument("--nodes", default="1,4,16,64", help="N for the projection (default: %(default)s)")
    ap.add_argument("--cores-per-node", type=int, default=32, help="cores per CPU node (default: %(default)s)")
    ap.add_argument("--gpu-sites-per-s", type=float, default=None,
                    help="one GPU's forward rate in sites/s, from embed_throughput.py --device cuda")
    ap.add_argument("--gpu-host-cores", type=int, default=8, help="decode cores per GPU (default: %(default)s)")
    ap.add_argument("--ray", action="store_true", help="check against the Ray engine at 1 and 2 local workers")
    ap.add_argument("--ratio-dataset", default=None, help="Ray vs local engine on this dataset (e.g. data/demo)")
    ap.add_argument("--ratio-sites", type=int, default=256)
    ap.add_argument("--ratio-repeats", type=int, default=1,
                    help="run the local/Ray pair this many times, alternating the order; median reported")
    ap.add_argument("--ratio-embedders", default="pixel_stats,cell_count,untrained_vit")
    ap.add_argument("--json", default=None, help="also write the numbers here")
    ap.add_argument("--umap", type=int, default=None, metavar="N",
                    help="only: time one UMAP layout of N x 384 (e.g. 222601), wall time and peak memory")
    args = ap.parse_args(argv)
    if args.umap:
        r = umap_scale(args.umap)
        print(f"UMAP of {r['n']:,} x {r['dim']} (n_neighbors 15, min_dist 0.1, low_memory): wall {r['wall_s']:.0f} s, "
              f"CPU {r['cpu_s']:.0f} s, peak RSS {r['peak_rss_gb']:.2f} GB (input {r['input_gb']:.2f} GB, "
              f"process before UMAP {r['rss_before_gb']:.2f} GB)")
        if args.json:
            Path(args.json).write_text(json.dumps(r, indent=1))
        return 0
    sys.path.insert(0, str(Path(__file__).parent))
    from embed_throughput import machine

    print(f"machine: {machine()}")
    nodes = [int(x) for x in args.nodes.split(",")]
    res: dict = {}
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        screen = synthetic_screen(Path(tmp) / "syn", args.sites)
        print(f"synthetic sites: {screen.n_sites} x {len(screen.channels)} channels of 512 x 512 8-bit PNG "
              f"({time.perf_counter() - t0:.0f} s to write)")
        costs = stage_costs(screen)
        res["costs"] = costs
        print("\nper-image stage costs, one core (median):")
        print(f"  read   {costs['read_s_per_image'] * 1e3:8.2f} ms per channel image ({costs['png_bytes_per_site'] / 6 / 1e3:.0f} kB)")
        print(f"  decode {costs['decode_s_per_image'] * 1e3:8.2f} ms per channel image")
        for net in NETS:
            print(f"  forward {net:<17} {costs[f'forward_s_per_site[{net}]'] * 1e3:8.1f} ms per site (CPU, 1 thread)")
        print(f"  write  {costs['write_s_per_site'] * 1e3:8.3f} ms per site (384 float32 features)")
        print(f"\nprojected hours (N nodes of {args.cores_per_node} cores, or N GPUs):")
        lines = projection(costs, nodes, args.cores_per_node, args.gpu_sites_per_s, args.gpu_host_cores)
        print("\n".join(lines))
        res["projection"] = lines
        print("\nassumptions: linear scaling over cores and nodes (blocks share nothing); CPU-bound stages, storage "
              f"delivering ~{costs['png_bytes_per_site'] / 1e6:.1f} MB per RxRx3 site; networks at their default input "
              "size (untrained_vit 128 px, untrained_resnet 128 px) whatever the field size; JUMP decode scaled by "
              "pixels (1080 px fields); no per-site segmentation features (add them with embed_throughput.py's "
              "morphology rate); GPU rows need --gpu-sites-per-s.")
        if args.ray:
            names = ["untrained_vit"]
            chk = ray_check(screen, [1, 2], names)
            res["ray_check"] = chk
            # the local engine on the same sites and cores: what the machine gives without Ray
            from bioviz.embed import embed

            stamps = []
            embed(screen, names, force=True, confounders=False, batch_size=8, chunk_size=64,
                  progress=lambda d, t, m: stamps.append((time.perf_counter(), d)))
            (ta, da), (tb, db) = stamps[0], stamps[-1]
            res["local_steady_sites_per_s"] = (db - da) / max(tb - ta, 1e-9)
            print("\ncheck: Ray engine on the synthetic sites (untrained_vit), local workers:")
            for w, r in chk.items():
                pred = w / per_site_cpu_seconds(costs, len(screen.channels), "untrained_vit")
                print(f"  {w} worker(s): projected {pred:.2f} sites/s; measured steady {r['steady_sites_per_s']:.2f} "
                      f"sites/s (first to last batch), measured/projected {r['steady_sites_per_s'] / pred:.2f}; "
                      f"with actor start-up {r['pipeline_sites_per_s']:.2f} sites/s; whole call "
                      f"{r['call_s']:.1f} s for {r['sites']} sites")
            print(f"  local engine, same sites, all cores: steady {res['local_steady_sites_per_s']:.2f} sites/s")
    if args.ratio_dataset:
        names = [n for n in args.ratio_embedders.split(",") if n]
        r = engine_ratio(Path(args.ratio_dataset), args.ratio_sites, names, repeats=args.ratio_repeats)
        for k, run in enumerate(r.get("runs", [])):
            print(f"  pair {k + 1}: local {run['local']['call_s']:.1f} s, ray {run['ray']['call_s']:.1f} s, "
                  f"ratio {run['ratio_call']:.2f}")
        res["engine_ratio"] = r
        print(f"\nRay vs local engine on {args.ratio_dataset}, first {r['sites']} sites, {', '.join(names)}:")
        print(f"  local {r['local']['call_s']:.1f} s, ray {r['ray']['call_s']:.1f} s (Ray start-up included): "
              f"throughput ratio ray/local {r['ratio_call']:.2f} (goal >= 0.9)")
        print(f"  to the last site: local {r['local']['pipeline_s']:.1f} s, ray {r['ray']['pipeline_s']:.1f} s: "
              f"ratio {r['ratio_pipeline']:.2f}")
    if args.json:
        Path(args.json).write_text(json.dumps(res, indent=1, default=str))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
