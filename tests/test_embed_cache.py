"""The cache: reused only when valid, recomputed when config or data change, resumable, atomic."""
import os
import shutil

import numpy as np
import pandas as pd
import pytest

from bioviz import atomic
from bioviz.demo import make_demo
from bioviz.embed import computed_embedders, embed, load_embedding
from bioviz.embed.cache import cache_path, partial_dir
from bioviz.errors import BiovizError, EmbedderError
from bioviz.screen import read_screen, write_screen

NAMES = ["pixel_stats", "cell_count", "structure", "untrained_resnet"]
CFG = {"untrained_resnet": {"img_size": 32}}
KW = dict(workers=0, batch_size=3, chunk_size=4, configs=CFG)


@pytest.fixture(scope="module")
def source(tmp_path_factory):
    import torch

    torch.set_num_threads(1)
    root = tmp_path_factory.mktemp("cache") / "tiny"
    make_demo(root, preset="tiny", seed=2)
    return root


@pytest.fixture
def screen(source, tmp_path):
    """A fresh 14-site copy (chunks 4+4+4+2, batches of 3 inside them) for each test."""
    src = read_screen(source)
    obs = src.obs.iloc[:14].copy()
    for ch in src.channels:
        for rel in obs[f"image_{ch}"]:
            (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source / rel, tmp_path / rel)
    write_screen(tmp_path, obs, channels=src.channels, control_label=src.control_label)
    return read_screen(tmp_path)


def _mtime(screen, name):
    return cache_path(screen, name).stat().st_mtime_ns


def test_second_run_reuses_cache(screen):
    first = embed(screen, NAMES, **KW)
    stamps = {n: _mtime(screen, n) for n in NAMES}
    calls = []
    again = embed(screen, NAMES, progress=lambda *a: calls.append(a), **KW)
    assert calls == []  # nothing recomputed
    assert {n: _mtime(screen, n) for n in NAMES} == stamps
    for n in NAMES:
        pd.testing.assert_frame_equal(first[n], again[n])
        pd.testing.assert_frame_equal(load_embedding(screen, n), first[n])
    assert set(NAMES) <= set(computed_embedders(screen))
    meta = atomic.read_parquet_metadata(cache_path(screen, "pixel_stats"))
    assert meta["embedder"] == "pixel_stats" and meta["fingerprint"] == screen.fingerprint()
    assert meta["version"] and meta["config"]["bins"] == 8
    assert list(first["pixel_stats"].columns[:3]) == ["well_id", "f0", "f1"]
    assert first["pixel_stats"]["f0"].dtype == np.float32


def test_changed_config_recomputes(screen):
    embed(screen, ["random"], **{**KW, "configs": {"random": {"dim": 4}}})
    assert load_embedding(screen, "random").shape == (14, 5)
    out = embed(screen, ["random"], **{**KW, "configs": {"random": {"dim": 6}}})["random"]
    assert out.shape == (14, 7) and load_embedding(screen, "random").shape == (14, 7)
    # The default config does not silently take the dim=6 cache either.
    assert embed(screen, ["random"], workers=0)["random"].shape == (14, 129)


def test_changed_image_recomputes(screen):
    before = embed(screen, ["pixel_stats"], **KW)["pixel_stats"]
    rel = screen.obs["image_DNA"].iloc[5]
    from PIL import Image

    img = np.asarray(Image.open(screen.root / rel)).copy()
    img[:8] = img.max()
    Image.fromarray(img).save(screen.root / rel)
    fresh = read_screen(screen.root)
    with pytest.raises(EmbedderError, match="out of date"):
        load_embedding(fresh, "pixel_stats")
    assert "pixel_stats" not in computed_embedders(fresh)
    after = embed(fresh, ["pixel_stats"], **KW)["pixel_stats"]
    changed = ~np.isclose(before.iloc[:, 1:].to_numpy(), after.iloc[:, 1:].to_numpy()).all(1)
    assert changed.tolist() == [i == 5 for i in range(14)]


def test_resume_after_interruption_equals_uninterrupted(screen, tmp_path_factory):
    reference = embed(screen, NAMES, **KW)
    for n in NAMES:
        cache_path(screen, n).unlink()

    class Stop(Exception):
        pass

    def stop_after_two_chunks(done, total, msg):
        if done >= 8:
            raise Stop

    with pytest.raises(Stop):
        embed(screen, NAMES, progress=stop_after_two_chunks, **KW)
    for n in NAMES:
        assert not cache_path(screen, n).exists()
        assert sorted(p.name for p in partial_dir(screen, n).glob("chunk_*")) == ["chunk_0000.parquet",
                                                                                   "chunk_0001.parquet"]
    seen = []
    resumed = embed(screen, NAMES, progress=lambda d, t, m: seen.append((d, t)), **KW)
    assert seen[-1] == (6, 6)  # only the 6 sites of the last two chunks were computed
    for n in NAMES:
        pd.testing.assert_frame_equal(resumed[n], reference[n], check_exact=True)
        assert not partial_dir(screen, n).exists()


def test_partials_from_another_config_are_not_reused(screen):
    class Stop(Exception):
        pass

    def stop(done, total, msg):
        raise Stop

    with pytest.raises(Stop):
        embed(screen, ["pixel_stats"], progress=stop, **{**KW, "configs": {"pixel_stats": {"bins": 4}}})
    out = embed(screen, ["pixel_stats"], **KW)["pixel_stats"]
    assert out.shape[1] - 1 == 5 * (2 + 7 + 8)


def test_bad_image_shape_is_one_line_and_keeps_caches(screen):
    good = embed(screen, ["pixel_stats"], **KW)["pixel_stats"]
    from PIL import Image

    rel = screen.obs["image_ER"].iloc[9]
    Image.fromarray(np.zeros((32, 32), np.uint16)).save(screen.root / rel)
    fresh = read_screen(screen.root)
    with pytest.raises(BiovizError) as err:
        embed(fresh, ["pixel_stats"], **{**KW, "configs": {}})
    msg = str(err.value)
    assert "\n" not in msg and screen.obs["well_id"].iloc[9] in msg and "shape" in msg
    # The previous complete cache is untouched, and finished chunks of this run are kept.
    pd.testing.assert_frame_equal(pd.read_parquet(cache_path(fresh, "pixel_stats")), good)
    assert (partial_dir(fresh, "pixel_stats") / "chunk_0001.parquet").exists()


def test_wrong_bit_depth_and_unreadable_file(screen):
    from PIL import Image

    rel = screen.obs["image_RNA"].iloc[2]
    Image.fromarray(np.zeros((64, 64), np.float32)).save(screen.root / rel.replace(".png", ".tiff"))
    os.replace(screen.root / rel.replace(".png", ".tiff"), screen.root / rel)  # a float TIFF named .png
    with pytest.raises(BiovizError, match="could not be read|bit depth"):
        embed(read_screen(screen.root), ["pixel_stats"], **KW)
    (screen.root / rel).write_bytes(b"not a png")
    with pytest.raises(BiovizError, match=f"{rel}.*could not be read") as err:
        embed(read_screen(screen.root), ["pixel_stats"], **KW)
    assert "\n" not in str(err.value)


def test_nan_features_are_refused(screen, monkeypatch):
    from bioviz.embed.pixel_stats import PixelStats

    real = PixelStats.site_features

    def poisoned(self, img, seg=None):
        out = real(self, img, seg)
        if img[0, 0, 0] == img[0, 0, 0]:
            out[3] = np.nan
        return out

    monkeypatch.setattr(PixelStats, "site_features", poisoned)
    with pytest.raises(EmbedderError, match="NaN/inf features"):
        embed(screen, ["pixel_stats"], **KW)
    assert not cache_path(screen, "pixel_stats").exists()


def test_corrupt_cache_is_recomputed(screen):
    embed(screen, ["cell_count"], **KW)
    cache_path(screen, "cell_count").write_bytes(b"truncated")
    assert "cell_count" not in computed_embedders(screen)
    out = embed(screen, ["cell_count"], **KW)["cell_count"]
    assert out.shape == (14, 4)  # well_id + cell_count, border_nuclei, crowded_nuclei
