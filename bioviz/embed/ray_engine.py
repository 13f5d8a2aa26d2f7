"""The Ray engine: ``bioviz embed --engine ray``, the same caches from one machine to a cluster.

One Ray Data dataset over the screen's site list, read in blocks of ``batch_size`` sites:

1. decode + per-site features in CPU tasks: each task reads its sites' images and runs every
   per-site embedder on them, segmentation shared, through the local engine's own ``SiteDataset``;
2. one actor pool per network: GPU actors (``gpus_per_worker`` of a GPU each) where the cluster has
   GPUs, CPU actors otherwise; an actor builds its network once and embeds block after block;
3. the driver gathers the rows into the local engine's chunks (256 sites) and writes each finished
   chunk with ``bioviz.embed.cache.write_chunk`` under ``embeddings/.partial/<name>/``, keyed by the
   embedder config and the dataset fingerprint; at the end the chunks are merged by the same
   ``cache.write_cache`` the local engine uses. So the dashboard and the benchmark cannot tell which
   engine ran, and a run interrupted under either engine continues from its finished chunks.

Ray Data retries a task or actor call whose worker died (``max_retries``, default 2); when the
retries fail the run stops naming the block, keeping every finished chunk. Table embedders (plate
layout, random, precomputed) and the confounder table need no pixels and run in the driver.
"""
from __future__ import annotations

import logging
import math
import os
import time
import warnings

import numpy as np

from ..errors import BiovizError, EmbedderError
from . import cache
from .engine import CHUNK_SIZE, SiteDataset, _check_finite, build_embedders, channel_stats
from .registry import cpu_count

# The local Ray shares its machine: a small object store (a 32-site block of 128 px x 5 channel
# float32 images is 10 MB) and no dashboard. A cluster started with `ray start` sizes its own.
OBJECT_STORE_BYTES = 300 * 2**20
MAX_RETRIES = 2


class RayConnectError(EmbedderError):
    """The Ray cluster named by --ray-address cannot be reached."""


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return (text[0] if text else type(exc).__name__)[:300]


def _check_reachable(address: str) -> None:
    """One TCP connect before ray.init: given a dead HOST:PORT, ray.init retries for ever (measured:
    still retrying after 5 min), and a ray:// address needs the optional Ray Client package."""
    import socket

    target = address
    if address == "auto":
        try:
            from ray._private.services import canonicalize_bootstrap_address_or_die

            target = canonicalize_bootstrap_address_or_die("auto")
        except Exception as exc:
            raise RayConnectError(f"cannot reach the Ray cluster at {address} ({_first_line(exc)}); start one "
                                  "with `ray start --head` or omit --ray-address for a local Ray") from None
    host, _, port = target.removeprefix("ray://").rpartition(":")
    if not host or not port.isdigit():
        raise RayConnectError(f"--ray-address {address}: expected auto, HOST:PORT or ray://HOST:PORT")
    try:
        socket.create_connection((host, int(port)), timeout=5).close()
    except OSError as exc:
        raise RayConnectError(f"cannot reach the Ray cluster at {address} ({exc.strerror or exc}); start one "
                              "with `ray start --head` or omit --ray-address for a local Ray") from None
    if address.startswith("ray://"):
        try:
            import ray.util.client  # noqa: F401
            import grpc  # noqa: F401
        except ImportError:
            raise RayConnectError(f"--ray-address {address}: Ray Client is not installed here "
                                  '(pip install "ray[client]==2.60.0")') from None


def connect(address: str | None = None, num_cpus: int | None = None) -> bool:
    """Start a local Ray (``address`` None) or join a cluster; True when this call started Ray.

    A Ray already initialised in this process (a notebook, a test) is used as it is.
    """
    import ray

    if ray.is_initialized():
        return False
    quiet = dict(log_to_driver=False, logging_level=logging.ERROR)
    if address is None:
        # address="local": never attach to a cluster someone else started on this machine.
        # Under load the raylet gives up waiting for its metrics agent's port file (seen at a load of
        # 20 on 2 cores); allow it minutes instead of Ray's default.
        os.environ.setdefault("RAY_agent_register_timeout_ms", "300000")
        try:
            ray.init(address="local", num_cpus=int(num_cpus or cpu_count()), include_dashboard=False,
                     object_store_memory=OBJECT_STORE_BYTES, **quiet)
        except Exception as exc:  # e.g. the raylet not up within Ray's 30 s on an overloaded machine
            try:
                ray.shutdown()
            except Exception:
                pass
            raise EmbedderError(f"could not start a local Ray ({_first_line(exc)})") from None
        return True
    _check_reachable(address)
    try:
        ray.init(address=address, **quiet)
    except Exception as exc:  # ConnectionError, grpc errors, timeouts: all mean the same to a user
        try:
            ray.shutdown()
        except Exception:
            pass
        raise RayConnectError(f"cannot reach the Ray cluster at {address} ({_first_line(exc)}); start one "
                              "with `ray start --head` or omit --ray-address for a local Ray") from None
    return True


def _quiet_data():
    import ray.data

    ctx = ray.data.DataContext.get_current()
    ctx.enable_progress_bars = False  # bioviz draws its own bar; Ray's would interleave with it
    ctx.enable_operator_progress_bars = False
    for name in ("ray.data", "ray"):
        logging.getLogger(name).setLevel(logging.ERROR)
    return ctx


def _resolve(x):
    import ray

    return ray.get(x) if isinstance(x, ray.ObjectRef) else x


def _make_tracker():
    import ray

    @ray.remote(num_cpus=0)
    class BlockTracker:
        """Counts starts and ends of work per chunk: a chunk whose worker died shows unmatched
        starts (one per try), which names the block when the retries run out."""

        def __init__(self):
            self.starts, self.ends = {}, {}

        def start(self, chunks):
            for k in chunks:
                self.starts[k] = self.starts.get(k, 0) + 1

        def end(self, chunks):
            for k in chunks:
                self.ends[k] = self.ends.get(k, 0) + 1

        def open(self):
            return {k: n - self.ends.get(k, 0) for k, n in self.starts.items() if n > self.ends.get(k, 0)}

    return BlockTracker.remote()


def _decode_and_site_features(batch, *, screen, plan, chunk_size, shape, site_cols, tracker):
    """CPU task: read the block's sites, run the per-site embedders (the local engine's code)."""
    import ray

    scr = _resolve(screen)
    idx = [int(i) for i in batch["i"]]
    chunks = sorted({i // chunk_size for i in idx})
    ray.get(tracker.start.remote(chunks))
    ds = SiteDataset(scr, plan, chunk_size, shape)
    items = [ds[i] for i in idx]
    for it in items:
        if it["error"] is not None:
            raise it["error"]
    out = {"i": np.asarray(idx, dtype=np.int64)}
    if items[0]["img"] is not None:
        out["img"] = np.stack([it["img"] for it in items])
    for name, col in site_cols.items():
        out[col] = np.stack([np.asarray(it["feats"][name], dtype=np.float64) for it in items])
        out[col + "_s"] = np.asarray([it["secs"][name] for it in items], dtype=np.float64)
    ray.get(tracker.end.remote(chunks))
    return out


class _NetworkActor:
    """One network, built once per actor, applied to block after block (GPU or CPU)."""

    def __init__(self, *, screen, emb, device, stats, threads, col, chunk_size, tracker, last=False):
        import torch

        if device == "cpu":
            torch.set_num_threads(max(1, int(threads)))
        self.emb, self.col, self.chunk_size, self.tracker, self.last = emb, col, chunk_size, tracker, last
        emb.prepare(_resolve(screen), device, channel_stats=stats)

    def __call__(self, batch):
        import ray

        chunks = sorted({int(i) // self.chunk_size for i in batch["i"]})
        ray.get(self.tracker.start.remote(chunks))
        t0 = time.perf_counter()
        X = np.asarray(self.emb.batch_features(batch["img"]), dtype=np.float64)
        n = len(batch["i"])
        if X.shape[0] != n:
            raise EmbedderError(f"embedder {self.emb.name} returned {X.shape[0]} rows for {n} sites")
        batch[self.col] = X.reshape(n, -1)
        batch[self.col + "_s"] = np.full(n, (time.perf_counter() - t0) / n)
        if self.last:  # the images stop here (a separate drop_columns step would ask for a whole CPU)
            batch.pop("img")
        ray.get(self.tracker.end.remote(chunks))
        return batch


def _user_error(exc: BaseException) -> BiovizError | None:
    """The BiovizError a task raised, unwrapped from Ray's task/user-code wrappers."""
    seen, todo, fallback = set(), [exc], None
    while todo:
        e = todo.pop()
        if e is None or id(e) in seen:
            continue
        seen.add(id(e))
        if isinstance(e, BiovizError):
            # Ray's as_instanceof_cause() objects are BiovizErrors too, but print a traceback:
            # hand back the original exception they carry.
            cause = getattr(e, "cause", None)
            if isinstance(cause, BiovizError):
                return cause
            if "\n" not in str(e).strip():
                return e
            fallback = fallback or e
            todo.append(cause)
            continue
        todo += [getattr(e, "cause", None), e.__cause__, e.__context__]
        try:
            as_cause = e.as_instanceof_cause() if hasattr(e, "as_instanceof_cause") else None
        except Exception:
            as_cause = None
        if isinstance(as_cause, BiovizError):
            todo.append(as_cause)
    if fallback is not None:
        lines = [ln for ln in str(fallback).splitlines() if ln.strip()]
        return EmbedderError(lines[-1].split(": ", 1)[-1] if lines else type(fallback).__name__)
    # Ray pickles a task's exception without its __cause__ (Ray Data wraps user errors in
    # UserCodeException), so the error often survives only as the last line of the traceback text.
    import re

    from .. import errors

    found = re.findall(r"bioviz\.errors\.(\w+): ([^\n]+)", str(exc))
    if found:
        name, msg = found[-1]
        cls = getattr(errors, name, None)
        cls = cls if isinstance(cls, type) and issubclass(cls, BiovizError) else EmbedderError
        return cls(msg.strip())
    return None


def _resources(n_networks: int, gpus_per_worker, device: str):
    """(device, CPU share per network actor, GPU share, torch threads per actor, actors per network)."""
    import ray

    res = ray.cluster_resources()
    n_cpu, n_gpu = float(res.get("CPU", 1)), float(res.get("GPU", 0))
    if gpus_per_worker is not None:
        if gpus_per_worker <= 0:
            raise EmbedderError(f"--gpus-per-worker {gpus_per_worker:g}: must be a positive share of a GPU")
        if n_gpu == 0:
            raise EmbedderError(f"--gpus-per-worker {gpus_per_worker:g}: the Ray cluster has no GPU "
                                "(omit the option to run the networks on CPU actors)")
    if device.startswith("cuda") and n_gpu == 0:
        raise EmbedderError("--device cuda: the Ray cluster has no GPU (use --device cpu or auto)")
    if n_networks and n_gpu > 0 and device != "cpu":
        share = float(gpus_per_worker) if gpus_per_worker is not None else min(1.0, n_gpu / n_networks)
        if share * n_networks > n_gpu + 1e-9:
            raise EmbedderError(f"--gpus-per-worker {share:g} x {n_networks} network(s) needs {share * n_networks:g} "
                                f"GPUs for one actor each; the Ray cluster has {n_gpu:g} "
                                f"(use --gpus-per-worker {n_gpu / n_networks:g})")
        # Each network's pool grows to as many actors as its share of the GPUs allows.
        return "cuda", 1.0, share, 1, max(1, int(n_gpu / n_networks / share))
    # CPU actors: networks take at most half the cores between them, so the decode/per-site
    # tasks always find room (a pool that reserves every CPU starves its own input).
    cpu_share = min(1.0, n_cpu / (2 * max(1, n_networks)))
    actors = max(1, int(n_cpu / (2 * max(1, n_networks)) / cpu_share))
    # torch threads: the actors' cores plus the decode half, as the local engine lets torch use every
    # core beside its decode workers. A decode task that waits on the network leaves its core idle;
    # on 2 cores (1 network) 2 threads took 480 demo sites in 21.5 s against 26.7 s with 1 thread.
    threads = max(1, int(n_cpu // (max(1, n_networks) * actors)))
    return "cpu", cpu_share, 0.0, threads, actors


def _task_cpus() -> float:
    """CPUs a decode/per-site task asks for: one, or half the cluster on a one-core Ray (the other
    half is the network actors'), so the two stages can always run side by side."""
    import ray

    return min(1.0, float(ray.cluster_resources().get("CPU", 1)) / 2)


def _run_images(screen, embs, fingerprint, *, device, gpus_per_worker, batch_size, chunk_size,
                max_retries, progress):
    import ray

    n = screen.n_sites
    n_chunks = math.ceil(n / chunk_size)
    wids = screen.obs["well_id"].tolist()
    keys = {e.name: cache.chunk_key(e, fingerprint, chunk_size, n) for e in embs}
    pending: dict[str, list[int]] = {}
    for e in embs:
        cache.drop_stale_chunks(screen, e.name, keys[e.name])
        pending[e.name] = [k for k in range(n_chunks) if not cache.chunk_valid(screen, e.name, k, keys[e.name])]
    work = sorted({k for ks in pending.values() for k in ks})
    site_embs = [e for e in embs if e.kind == "site" and pending[e.name]]
    nets = [e for e in embs if e.kind == "batch" and pending[e.name]]
    dev, cpu_share, gpu_share, threads, n_actors = _resources(len(nets), gpus_per_worker, device)
    t0 = time.perf_counter()
    busy = dict.fromkeys(pending, 0.0)
    if work:
        _quiet_data()
        shape = screen.load_site(wids[0]).shape
        stats = channel_stats(screen) if nets else None
        for e in site_embs:
            e.prepare(screen, "cpu")
        # Every chunk of this run computes the same embedders (a block's columns must agree);
        # chunks an embedder already has are computed again but not rewritten.
        plan = {k: (site_embs, bool(nets)) for k in work}
        screen_ref = ray.put(screen)
        tracker = _make_tracker()
        site_cols = {e.name: f"s{j}" for j, e in enumerate(site_embs)}
        net_cols = {e.name: f"n{j}" for j, e in enumerate(nets)}
        idx = [i for k in work for i in range(k * chunk_size, min(n, (k + 1) * chunk_size))]
        # Ray 2.60 flags retry settings passed as remote args as deprecated, but names no other
        # way to bound retries per operator (its default is to retry a dead worker forever).
        warnings.filterwarnings("ignore", message=".*ray_remote_args.*deprecated", category=Warning)
        ds = ray.data.from_items([{"i": i} for i in idx], override_num_blocks=max(1, math.ceil(len(idx) / batch_size)))
        ds = ds.map_batches(_decode_and_site_features, batch_size=batch_size, batch_format="numpy", num_cpus=_task_cpus() if nets else 1,
                            max_retries=max_retries,
                            fn_kwargs=dict(screen=screen_ref, plan=plan, chunk_size=chunk_size, shape=shape,
                                           site_cols=site_cols, tracker=tracker))
        for j, e in enumerate(nets):
            ds = ds.map_batches(_NetworkActor, batch_size=batch_size, batch_format="numpy",
                                fn_constructor_kwargs=dict(screen=screen_ref, emb=e, device=dev, stats=stats,
                                                           threads=threads, col=net_cols[e.name],
                                                           chunk_size=chunk_size, tracker=tracker,
                                                           last=j == len(nets) - 1),
                                concurrency=(1, n_actors), num_cpus=cpu_share, num_gpus=gpu_share or None,
                                max_restarts=max_retries, max_task_retries=max_retries)
        cols = {**site_cols, **net_cols}
        size = {k: min(n, (k + 1) * chunk_size) - k * chunk_size for k in work}
        acc: dict[int, dict[str, np.ndarray]] = {}
        got = dict.fromkeys(work, 0)
        done, total = 0, len(idx)
        label = "embedding (ray) " + ", ".join(e.name for e in embs if pending[e.name])
        try:
            for batch in ds.iter_batches(batch_size=None, batch_format="numpy"):
                rows = np.asarray(batch["i"], dtype=np.int64)
                for name, col in cols.items():
                    busy[name] += float(np.sum(batch[col + "_s"]))
                for k in np.unique(rows // chunk_size):
                    m = rows // chunk_size == k
                    pos = rows[m] - k * chunk_size
                    slot = acc.setdefault(int(k), {})
                    for name, col in cols.items():
                        X = np.asarray(batch[col])[m]
                        if name not in slot:
                            slot[name] = np.full((size[k], X.shape[1]), np.nan)
                        slot[name][pos] = X
                    got[k] += int(m.sum())
                    if got[k] == size[k]:
                        lo, hi = k * chunk_size, k * chunk_size + size[k]
                        for name, X in acc.pop(int(k)).items():
                            if k in pending[name]:
                                _check_finite(name, X, wids[lo:hi])
                                cache.write_chunk(screen, name, int(k), keys[name],
                                                  cache.features_frame(wids[lo:hi], X))
                done += len(rows)
                if progress:
                    progress(done, total, label)
        except (KeyboardInterrupt, BiovizError):
            raise
        except Exception as exc:
            user = _user_error(exc)
            if user is not None:
                raise user from None
            finished = [k for k in work if got[k] == size[k]]
            try:
                open_ = ray.get(tracker.open.remote(), timeout=10)
            except Exception:
                open_ = {}
            unfinished = [k for k in work if got[k] < size[k]]
            k = max(open_, key=lambda c: (open_[c], -c)) if open_ else (unfinished[0] if unfinished else work[0])
            lo, hi = k * chunk_size, k * chunk_size + size[k]
            raise EmbedderError(
                f"Ray worker failed on block {k} (sites {lo}-{hi - 1}: {wids[lo]} .. {wids[hi - 1]}) after "
                f"{max_retries} retries ({type(exc).__name__}: {_first_line(exc)}); {len(finished)} of "
                f"{len(work)} block(s) finished and kept in {screen.embeddings_dir / '.partial'}; run the "
                "same command again to continue") from None
    out = {}
    wall = round(time.perf_counter() - t0, 3)
    for e in embs:
        df = cache.read_chunks(screen, e.name, n_chunks)
        names = e.feature_names(screen.channels) if hasattr(e, "feature_names") else None
        cache.write_cache(screen, e, df, fingerprint, feature_names=names, device=dev,
                          seconds=round(busy.get(e.name, 0.0), 3), run_wall_seconds=wall,
                          sites_computed=len(pending[e.name]) and sum(
                              min(n, (k + 1) * chunk_size) - k * chunk_size for k in pending[e.name]))
        cache.clear_partials(screen, e.name)
        out[e.name] = df
    return out


def embed_ray(screen, names, *, address: str | None = None, gpus_per_worker: float | None = None,
              device: str = "auto", batch_size: int = 32, configs: dict | None = None, force: bool = False,
              confounders: bool = True, chunk_size: int = CHUNK_SIZE, num_cpus: int | None = None,
              max_retries: int = MAX_RETRIES, progress=None) -> dict:
    """``bioviz.embed.embed`` on Ray: same arguments, same caches, same return value.

    address: None starts a local Ray with this machine's cores (``num_cpus``), "auto" joins the
    cluster started on this node by ``ray start``, "ray://HOST:PORT" a remote one (Ray Client).
    gpus_per_worker: the share of a GPU each network actor takes (default: the cluster's GPUs
    split between the networks; CPU actors where it has none).
    """
    from .confounders import confounder_sources, confounders_valid
    from .engine import embed

    if batch_size < 1:
        raise EmbedderError("--batch-size must be at least 1")
    if device not in ("auto", "cpu") and not str(device).startswith("cuda"):
        raise EmbedderError(f"device {device!r}: use auto, cpu or cuda")
    embs = build_embedders(screen, names, configs)
    fingerprint = screen.fingerprint()
    todo = [e for e in embs if force or not cache.is_valid(screen, e, fingerprint)]
    images = [e for e in todo if e.kind != "table"]
    if confounders and not confounders_valid(screen, fingerprint):
        have = {e.name for e in embs}
        images += [s for s in confounder_sources(screen)
                   if s.name not in have and not cache.is_valid(screen, s, fingerprint)]
    started = False
    if images:
        started = connect(address, num_cpus)  # before anything is written: an unreachable cluster writes nothing
    try:
        if images:
            _run_images(screen, images, fingerprint, device=device, gpus_per_worker=gpus_per_worker,
                        batch_size=batch_size, chunk_size=chunk_size, max_retries=max_retries, progress=progress)
    finally:
        if started:
            import ray

            ray.shutdown()
    tables = [e.name for e in todo if e.kind == "table"]
    if tables:  # no pixels: computed in this process by the local engine
        embed(screen, tables, device="cpu", configs=configs, force=force, confounders=False, progress=progress)
    # Every cache is now valid: the local engine reads them back and builds the confounder table.
    return embed(screen, [e.name for e in embs], device="cpu", configs=configs, confounders=confounders,
                 progress=progress)
