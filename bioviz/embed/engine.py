"""The extraction engine: one pass over the sites feeds every requested embedder.

Sites are processed in chunks (default 256) in metadata order. Within a run each site's images
are read once and segmented once (shared by cell_count, morphology, structure and the
confounders); per-site CPU features are computed inside DataLoader workers, networks run on
batches in the main process (bf16 autocast on a GPU). Each finished chunk is written atomically
to ``embeddings/.partial/<name>/``, tagged with the embedder config and dataset fingerprint, so
an interrupted run resumes where it stopped; batches never straddle chunks, which makes a resumed
result identical to an uninterrupted one.
"""
from __future__ import annotations

import math
import time
from typing import Callable

import numpy as np
import pandas as pd

from ..errors import BiovizError, EmbedderError
from . import cache
from .confounders import assemble_confounders, confounder_sources, confounders_valid, missing_sources
from .registry import cpu_count, create_embedder, nuclear_channel, resolve_names
from .seg import seg_key, segment_site

CHUNK_SIZE = 256
Progress = Callable[[int, int, str], None]


class SiteDataset:
    """Item i: site i's image, its per-site features and any error, computed in a worker."""

    def __init__(self, screen, plan: dict[int, tuple[list, bool]], chunk_size: int, shape):
        self.screen, self.plan, self.chunk_size, self.shape = screen, plan, chunk_size, shape
        self.well_ids = screen.obs["well_id"].tolist()

    def __len__(self):
        return len(self.well_ids)

    def __getitem__(self, i):
        site_embs, need_image = self.plan[i // self.chunk_size]
        wid = self.well_ids[i]
        try:
            img = self.screen.load_site(wid)
            if self.shape is not None and tuple(img.shape) != tuple(self.shape):
                raise EmbedderError(f"well {wid}: image shape {tuple(img.shape[1:])} x {img.shape[0]} channels "
                                    f"differs from {tuple(self.shape[1:])} x {self.shape[0]} of the other sites")
            segs, feats, secs = {}, {}, {}
            for emb in site_embs:
                t0 = time.perf_counter()
                seg = None
                if emb.needs_segmentation:
                    key = seg_key(emb.config)
                    if key not in segs:
                        nuc = nuclear_channel(self.screen.channels, emb.config.get("nuclear_channel"))
                        segs[key] = segment_site(img, nuc, emb.config.get("nucleus_diameter"))
                    seg = segs[key]
                feats[emb.name] = np.asarray(emb.site_features(img, seg), dtype=np.float64)
                secs[emb.name] = time.perf_counter() - t0
            return {"i": i, "img": img if need_image else None, "feats": feats, "secs": secs, "error": None}
        except BiovizError as exc:
            # Raised in the main process instead: DataLoader would wrap it in a multi-line traceback.
            return {"i": i, "img": None, "feats": {}, "secs": {}, "error": exc}


def _collate(items):
    return items


def _worker_init(_):
    import torch

    torch.set_num_threads(1)


def channel_stats(screen, n: int = 64) -> tuple[np.ndarray, np.ndarray]:
    """Per-channel mean and std over up to ``n`` evenly spaced sites: the networks' input scaling."""
    idx = np.unique(np.linspace(0, screen.n_sites - 1, min(n, screen.n_sites)).round().astype(int))
    s = s2 = 0.0
    count = 0
    for i in idx:
        img = screen.load_site(screen.obs["well_id"].iloc[i]).astype(np.float64)
        s = s + img.sum((1, 2))
        s2 = s2 + (img**2).sum((1, 2))
        count += img.shape[1] * img.shape[2]
    mean = s / count
    return mean, np.sqrt(np.maximum(s2 / count - mean**2, 0))


def _check_finite(name: str, X: np.ndarray, well_ids) -> None:
    bad = ~np.isfinite(X)
    if bad.any():
        rows = np.flatnonzero(bad.any(1))
        raise EmbedderError(f"embedder {name} produced NaN/inf features for {len(rows)} site(s), "
                            f"first well {well_ids[rows[0]]!r}; nothing was cached for them")


def _run_tables(screen, embs, fingerprint, progress):
    out = {}
    wids = screen.obs["well_id"].tolist()
    for emb in embs:
        t0 = time.perf_counter()
        X = np.asarray(emb.table_features(screen), dtype=np.float64)
        if X.ndim != 2 or X.shape[0] != screen.n_sites:
            raise EmbedderError(f"embedder {emb.name} returned shape {X.shape}; expected ({screen.n_sites}, D)")
        _check_finite(emb.name, X, wids)
        df = cache.features_frame(wids, X)
        names = emb.feature_names(screen.channels) if hasattr(emb, "feature_names") else None
        cache.write_cache(screen, emb, df, fingerprint, feature_names=names, device="cpu",
                          seconds=round(time.perf_counter() - t0, 3))
        out[emb.name] = df
        if progress:
            progress(screen.n_sites, screen.n_sites, f"{emb.name}")
    return out


def _run_images(screen, embs, fingerprint, *, device, batch_size, workers, chunk_size, progress):
    import torch

    n = screen.n_sites
    n_chunks = math.ceil(n / chunk_size)
    wids = screen.obs["well_id"].tolist()
    keys = {e.name: cache.chunk_key(e, fingerprint, chunk_size, n) for e in embs}
    pending: dict[str, list[int]] = {}
    for e in embs:
        cache.drop_stale_chunks(screen, e.name, keys[e.name])
        pending[e.name] = [k for k in range(n_chunks) if not cache.chunk_valid(screen, e.name, k, keys[e.name])]
    work = sorted({k for ks in pending.values() for k in ks})
    t0 = time.perf_counter()

    if work:
        shape = screen.load_site(wids[0]).shape
        batch_embs = [e for e in embs if e.kind == "batch" and pending[e.name]]
        if batch_embs:
            stats = channel_stats(screen)
            for e in batch_embs:
                e.prepare(screen, device, channel_stats=stats)
        for e in embs:
            if e.kind == "site":
                e.prepare(screen, device)
        plan = {}
        for k in work:
            site = [e for e in embs if e.kind == "site" and k in pending[e.name]]
            plan[k] = (site, any(k in pending[e.name] for e in batch_embs))
        batches = []
        for k in work:
            lo, hi = k * chunk_size, min(n, (k + 1) * chunk_size)
            batches += [list(range(s, min(hi, s + batch_size))) for s in range(lo, hi, batch_size)]
        if device == "cpu" and not any(site for site, _ in plan.values()):
            # Networks alone on a CPU: the forward pass already uses every core, and a reader
            # process preempting one of its threads stalls them all at the next barrier;
            # decoding in between batches costs only the decoding itself.
            workers = 0
        ds = SiteDataset(screen, plan, chunk_size, shape)
        loader = torch.utils.data.DataLoader(ds, batch_sampler=batches, num_workers=workers,
                                             collate_fn=_collate, worker_init_fn=_worker_init if workers else None,
                                             pin_memory=False, prefetch_factor=4 if workers else None)
        total = sum(min(n, (k + 1) * chunk_size) - k * chunk_size for k in work)
        names = ", ".join(e.name for e in embs if pending[e.name])
        acc: dict[int, dict[str, list]] = {}
        busy = dict.fromkeys(pending, 0.0)  # compute seconds per embedder (segmentation goes to the first user)
        done = 0
        for items in loader:
            for it in items:
                if it["error"] is not None:
                    raise it["error"]
            k = items[0]["i"] // chunk_size
            slot = acc.setdefault(k, {})
            for e, _ in ((e, None) for e in embs if k in pending[e.name]):
                if e.kind == "site":
                    slot.setdefault(e.name, []).append(np.stack([it["feats"][e.name] for it in items]))
                    busy[e.name] += sum(it["secs"][e.name] for it in items)
                elif e.kind == "batch":
                    t1 = time.perf_counter()
                    imgs = np.stack([it["img"] for it in items])
                    slot.setdefault(e.name, []).append(np.asarray(e.batch_features(imgs), dtype=np.float64))
                    busy[e.name] += time.perf_counter() - t1
            done += len(items)
            lo, hi = k * chunk_size, min(n, (k + 1) * chunk_size)
            if items[-1]["i"] == hi - 1:  # batches run in order, so the chunk is complete
                for name, parts in acc.pop(k).items():
                    X = np.concatenate(parts)
                    _check_finite(name, X, wids[lo:hi])
                    cache.write_chunk(screen, name, k, keys[name], cache.features_frame(wids[lo:hi], X))
            if progress:
                progress(done, total, f"embedding {names}")
    else:
        busy = {}
    out = {}
    wall = round(time.perf_counter() - t0, 3)
    for e in embs:
        df = cache.read_chunks(screen, e.name, n_chunks)
        names = e.feature_names(screen.channels) if hasattr(e, "feature_names") else None
        cache.write_cache(screen, e, df, fingerprint, feature_names=names, device=device, notes=getattr(e, "notes", ""),
                          seconds=round(busy.get(e.name, 0.0), 3), run_wall_seconds=wall,
                          sites_computed=len(pending[e.name]) and sum(
                              min(n, (k + 1) * chunk_size) - k * chunk_size for k in pending[e.name]))
        cache.clear_partials(screen, e.name)
        out[e.name] = df
    return out


def build_embedders(screen, names, configs=None):
    return plan_embedders(screen, names, configs)[0]


def plan_embedders(screen, names, configs=None) -> tuple[list, dict[str, str]]:
    """(embedders to run, {name: why not applicable}) for ``names`` on ``screen``.

    ``all`` means the embedders that apply: image embedders on a profiles-only screen and
    ``weakly_supervised`` without a trained model are left out with their reason, and the table
    ``bioviz import`` recorded in dataset.json joins as ``precomputed``. An embedder named
    explicitly that cannot run is an error carrying the same reason.
    """
    configs = configs or {}
    raw = [n.strip() for n in (names.split(",") if isinstance(names, str) else names)]
    from_all = "all" in raw
    explicit = set(resolve_names([n for n in raw if n and n != "all"])) if any(n and n != "all" for n in raw) else set()
    names = resolve_names(names)
    if from_all and "precomputed" not in names and ((getattr(screen, "config", None) or {}).get("precomputed") or {}).get("path"):
        names.append("precomputed")
    embs, skipped = [], {}
    for name in names:
        e = create_embedder(name, **configs.get(name, {}))
        why = e.not_applicable(screen)
        if why:
            if name in explicit:
                raise EmbedderError(f"embedder {name} does not apply to {screen.name}: {why}")
            skipped[name] = why
            continue
        e.resolve(screen)
        embs.append(e)
    if not embs:
        raise EmbedderError(f"no embedder applies to {screen.name}: "
                            + "; ".join(f"{n}: {w}" for n, w in skipped.items()))
    return embs, skipped


def embed(screen, names, *, device: str = "auto", batch_size: int = 32, workers: int | None = None,
          progress: Progress | None = None, configs: dict | None = None, force: bool = False,
          chunk_size: int = CHUNK_SIZE, confounders: bool = True) -> dict[str, pd.DataFrame]:
    """Compute (or load from cache) each named embedder; returns {name: DataFrame(well_id, f0..)}.

    names: "all", "a,b" or a list. configs: {name: {option: value}}. progress(done, total, msg)
    is called after every batch; raising from it stops the run with finished chunks kept.
    confounders: also bring embeddings/confounders.parquet up to date.
    """
    embs = build_embedders(screen, names, configs)
    fingerprint = screen.fingerprint()
    extra = []
    if confounders and not confounders_valid(screen, fingerprint):
        # The sources ride along in the same pass over the images (one read, one segmentation).
        have = {e.name for e in embs}
        extra = [src for src in confounder_sources(screen)
                 if src.name not in have and not cache.is_valid(screen, src, fingerprint)]
    results = _compute(screen, embs, extra, fingerprint, device=device, batch_size=batch_size, workers=workers,
                       progress=progress, force=force, chunk_size=chunk_size)
    if confounders:
        assemble_confounders(screen, fingerprint)
    return {e.name: results[e.name] for e in embs}


def compute_confounders(screen, *, device: str = "cpu", batch_size: int = 32, workers: int | None = None,
                        progress: Progress | None = None) -> pd.DataFrame:
    """Build (or reuse) the confounder table; computes missing cheap embedders first.

    A source cache computed with other options still counts (it matches the data), unlike
    ``embed(..., confounders=True)``, which brings the sources to their default options.
    """
    fingerprint = screen.fingerprint()
    if not confounders_valid(screen, fingerprint):
        missing = set(missing_sources(screen, fingerprint))
        extra = [src for src in confounder_sources(screen) if src.name in missing]
        if extra:
            _compute(screen, [], extra, fingerprint, device=device, batch_size=batch_size, workers=workers,
                     progress=progress, force=False, chunk_size=CHUNK_SIZE)
    return assemble_confounders(screen, fingerprint)


def _compute(screen, embs, extra, fingerprint, *, device, batch_size, workers, progress, force, chunk_size):
    """Run ``embs`` (cached results reused unless ``force``) and ``extra`` (always run) in one pass."""
    from .networks import pick_device

    if device not in (None, "", "auto", "cpu") and not str(device).startswith("cuda"):
        raise EmbedderError(f"device {device!r}: use auto, cpu or cuda")
    workers = min(4, cpu_count()) if workers is None else int(workers)
    if batch_size < 1:
        raise EmbedderError("--batch-size must be at least 1")
    results, todo = {}, []
    for e in embs:
        if not force and cache.is_valid(screen, e, fingerprint):
            results[e.name] = pd.read_parquet(cache.cache_path(screen, e.name))
        else:
            todo.append(e)
    table = [e for e in todo if e.kind == "table"]
    images = [e for e in todo + extra if e.kind != "table"]
    results.update(_run_tables(screen, table, fingerprint, progress))
    if images:
        # only now: picking a device imports torch (4 s on 2 cores), which a call that finds every
        # cache valid (the Ray engine's final read-back, the dashboard) never needs
        device = pick_device(device)
        results.update(_run_images(screen, images, fingerprint, device=device, batch_size=batch_size,
                                   workers=workers, chunk_size=chunk_size, progress=progress))
    return results
