"""The Ray engine gives the local engine's caches: same numbers, same metadata and fingerprints.

One local Ray (2 CPUs, small object store) is started for the module; the tiny demo runs through
both engines. Marked slow: Ray's start-up alone is seconds on a quiet machine.
"""
from __future__ import annotations

import shutil
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

pytest.importorskip("ray")

pytestmark = pytest.mark.slow

# morphology and untrained_resnet run through the same task/actor code paths as cell_count and
# untrained_vit; left out to keep the test near a minute (506 s with them at a load average of 25).
DETERMINISTIC = ["pixel_stats", "cell_count"]
NETWORKS = ["untrained_vit"]
IDENTITY = ("embedder", "config", "user_config", "version", "fingerprint", "n_features", "feature_names")


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    from bioviz.demo import make_demo

    root = tmp_path_factory.mktemp("ray") / "tiny"
    make_demo(root, preset="tiny", seed=1)
    return root


@pytest.fixture(scope="module")
def local_ray():
    import ray

    from bioviz.embed.ray_engine import connect

    started = connect(None, num_cpus=2)
    yield
    if started:
        ray.shutdown()


def _copy(src, dst):
    shutil.copytree(src, dst, copy_function=shutil.copy2)  # keeps mtimes: the fingerprint is unchanged
    return dst


def _meta(path):
    from bioviz import atomic

    return atomic.read_parquet_metadata(path)


def test_ray_caches_equal_local(tiny, tmp_path, local_ray):
    from bioviz.embed import embed
    from bioviz.embed.ray_engine import embed_ray
    from bioviz.screen import read_screen

    a = read_screen(_copy(tiny, tmp_path / "local"))
    b = read_screen(_copy(tiny, tmp_path / "ray"))
    names = DETERMINISTIC + NETWORKS + ["plate_layout"]
    embed(a, names, device="cpu", workers=2)
    # chunk_size 64: the tiny demo's 170 sites in three chunks, so gathering rows that arrive
    # out of order into chunks is exercised.
    out = embed_ray(b, names, batch_size=16, chunk_size=64)
    assert set(out) == set(names)
    files = sorted(p.name for p in a.embeddings_dir.glob("*.parquet"))
    assert files == sorted(p.name for p in b.embeddings_dir.glob("*.parquet"))
    assert "confounders.parquet" in files and "focus.parquet" in files
    assert not (b.embeddings_dir / ".partial").exists()
    for name in files:
        pa, pb = a.embeddings_dir / name, b.embeddings_dir / name
        ma, mb = _meta(pa), _meta(pb)
        for key in IDENTITY:
            assert ma.get(key) == mb.get(key), (name, key)
        da, db = pd.read_parquet(pa), pd.read_parquet(pb)
        assert da["well_id"].tolist() == db["well_id"].tolist() == a.obs["well_id"].tolist()
        if name.removesuffix(".parquet") in NETWORKS:
            np.testing.assert_allclose(db.iloc[:, 1:].to_numpy(), da.iloc[:, 1:].to_numpy(), rtol=1e-4, atol=1e-5)
        else:
            pd.testing.assert_frame_equal(da, db)
    # The dashboard/benchmark reader sees valid caches.
    from bioviz.embed import computed_embedders

    assert set(names) <= set(computed_embedders(b))


def test_worker_death_retried_then_named_and_resumed(tiny, tmp_path, local_ray):
    """A worker killed on one site: the task is retried, then the run stops naming that block with
    the other blocks kept; once the cause is gone the rerun computes only what is missing."""
    import os

    from bioviz.embed import registry
    from bioviz.embed.ray_engine import embed_ray
    from bioviz.errors import EmbedderError
    from bioviz.screen import read_screen

    scr = read_screen(_copy(tiny, tmp_path / "crash"))
    flag = tmp_path / "kill"
    flag.write_text("")
    means = np.array([scr.load_site(w).mean() for w in scr.obs["well_id"]])
    victim = float(means[150])  # site 150 is in block 150 // 32 = 4 of 6
    assert (means == victim).sum() == 1

    class Crashing(registry.SiteEmbedder):  # defined here: Ray pickles it by value
        def site_features(self, img, seg):
            if self.flag.exists() and float(img.mean()) == self.victim:
                os._exit(1)  # a dead worker, not an exception
            return np.array([float(img.mean())])

    Crashing.flag, Crashing.victim = flag, victim
    registry.register_embedder("ray_test_crash", description="test only")(Crashing)
    try:
        with pytest.raises(EmbedderError) as err:
            embed_ray(scr, ["ray_test_crash"], batch_size=8, chunk_size=32, confounders=False, max_retries=1)
        msg = str(err.value)
        assert "\n" not in msg
        assert "block 4 (sites 128-159" in msg and "after 1 retries" in msg, msg
        kept = sorted(p.name for p in (scr.embeddings_dir / ".partial" / "ray_test_crash").glob("chunk_*"))
        assert "chunk_0004.parquet" not in kept and kept, kept
        assert not (scr.embeddings_dir / "ray_test_crash.parquet").exists()
        flag.unlink()
        seen = []
        out = embed_ray(scr, ["ray_test_crash"], batch_size=8, chunk_size=32, confounders=False,
                        progress=lambda d, t, m: seen.append(t))
        sizes = [min(scr.n_sites, (k + 1) * 32) - k * 32 for k in range(6)]
        todo = sum(sz for k, sz in enumerate(sizes) if f"chunk_{k:04d}.parquet" not in kept)
        assert seen and seen[-1] == todo < scr.n_sites
        X = out["ray_test_crash"]["f0"].to_numpy()
        np.testing.assert_array_equal(X, means.astype(np.float32))
    finally:
        registry._REGISTRY.pop("ray_test_crash", None)


def test_gpus_per_worker_without_gpu(tiny, tmp_path, local_ray):
    from bioviz.embed.ray_engine import embed_ray
    from bioviz.errors import EmbedderError
    from bioviz.screen import read_screen

    scr = read_screen(_copy(tiny, tmp_path / "gpu"))
    with pytest.raises(EmbedderError, match=r"--gpus-per-worker 0.5: the Ray cluster has no GPU"):
        embed_ray(scr, ["untrained_vit"], gpus_per_worker=0.5, confounders=False)
    assert not list(scr.embeddings_dir.glob("*.parquet")) if scr.embeddings_dir.exists() else True


def test_unreachable_address_one_line_nothing_written(tiny, tmp_path):
    import socket

    root = _copy(tiny, tmp_path / "addr")
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    for address in (f"127.0.0.1:{port}", f"ray://127.0.0.1:{port}"):
        r = subprocess.run([sys.executable, "-m", "bioviz", "embed", "--dataset", str(root), "--embedders",
                            "pixel_stats", "--engine", "ray", "--ray-address", address],
                           capture_output=True, text=True, timeout=120)
        assert r.returncode == 2, r.stderr
        lines = r.stderr.strip().splitlines()
        assert len(lines) == 1 and address in lines[0] and "cannot reach" in lines[0], r.stderr
    assert not (root / "embeddings").exists()


def test_corrupt_image_same_one_line_error(tiny, tmp_path, local_ray):
    from bioviz.embed.ray_engine import embed_ray
    from bioviz.errors import BiovizError
    from bioviz.screen import read_screen

    root = _copy(tiny, tmp_path / "bad")
    scr = read_screen(root)
    bad = scr.image_path(scr.obs["well_id"].iloc[100], scr.channels[0])
    bad.write_bytes(b"not a png")
    scr = read_screen(root)
    with pytest.raises(BiovizError) as err:
        embed_ray(scr, ["pixel_stats"], confounders=False)
    msg = str(err.value)
    assert "\n" not in msg and bad.name in msg and "could not be read" in msg, msg
    assert not (scr.embeddings_dir / "pixel_stats.parquet").exists()


def test_native_stderr_goes_to_the_log_python_stderr_stays(tmp_path, capfd):
    """`bioviz embed --engine ray` routes descriptor 2 (Ray's C++ core worker prints an alarming but
    harmless 'E ... core_worker.cc' line there on every run) to a log; bioviz's own stderr, the
    progress bar and errors, still reaches the terminal, and descriptor 2 is restored after."""
    import os
    import sys

    from bioviz.commands.embed import native_stderr_to

    log = tmp_path / "ray.log"
    with native_stderr_to(log):
        os.write(2, b"E core_worker.cc: native noise\n")
        print("progress 50%", file=sys.stderr)
    os.write(2, b"after\n")
    err = capfd.readouterr().err
    assert "progress 50%" in err and "after" in err and "native noise" not in err
    assert "native noise" in log.read_text()
