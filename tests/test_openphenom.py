"""openphenom: the snapshot loaded the way it loads itself (package import, its from_pretrained,
tensors-only weights), only when trusted; fields tiled into 256 px crops, not resized.

The stand-in snapshot (tests/openphenom_snapshot/) has the real snapshot's files and loading
path at toy size; its weights are random and written by its own save_pretrained.
"""
import shutil
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from bioviz.errors import EmbedderError

STAND_IN = Path(__file__).resolve().parent / "openphenom_snapshot"
pytestmark = pytest.mark.slow  # importing transformers takes 5-40 s on a shared CPU


def make_snapshot(root: Path, seed: int = 0) -> Path:
    """Copy the stand-in's code + config.json, then write random weights with its save_pretrained."""
    import torch

    from bioviz.embed.openphenom import import_snapshot

    snap = root / "OpenPhenom"
    snap.mkdir(parents=True)
    for f in list(STAND_IN.glob("*.py")) + [STAND_IN / "config.json"]:
        shutil.copy(f, snap / f.name)
    mod = import_snapshot(snap)
    torch.manual_seed(seed)
    model = mod.MAEModel(mod.MAEConfig.from_pretrained(str(snap)))
    with torch.no_grad():  # the stand-in's zero-initialised tokens get random values too
        for p in model.parameters():
            if p.requires_grad and float(p.abs().sum()) == 0:
                p.normal_(0, 0.5)
    model.save_pretrained(str(snap))
    return snap


@pytest.fixture(scope="module")
def snapshot(tmp_path_factory):
    import torch

    torch.set_num_threads(1)
    return make_snapshot(tmp_path_factory.mktemp("snap"))


@pytest.fixture(scope="module")
def emb(snapshot):
    from bioviz.embed import create_embedder

    e = create_embedder("openphenom", snapshot=str(snapshot), trust_snapshot_code=True)
    e.prepare(None, "cpu")
    return e


def test_loads_as_a_package_through_its_own_from_pretrained(snapshot, emb):
    import torch
    from transformers import PreTrainedModel

    model = emb.model
    assert isinstance(model, PreTrainedModel) and type(model).__name__ == "MAEModel"
    pkg = type(model).__module__.rsplit(".", 1)[0]
    assert pkg.startswith("bioviz_openphenom_") and type(model).__module__ == pkg + ".huggingface_mae"
    # relative (huggingface_mae.py) and package-absolute (mae_modules.py: maes_microscopy.vit) imports
    # resolve to one copy of each module, and the alias is gone once the code is imported
    vit = sys.modules[pkg + ".vit"]
    assert sys.modules[pkg + ".mae_modules"].channel_agnostic_vit is vit.channel_agnostic_vit
    assert sys.modules[pkg + ".huggingface_mae"].vit_small_patch16_256 is vit.vit_small_patch16_256
    assert not [k for k in sys.modules if k.split(".")[0] == "maes_microscopy"]
    assert type(model.encoder).__module__ == pkg + ".mae_modules"
    assert str(snapshot) not in sys.path and "vit" not in sys.modules
    # the weights are the file's: a torch pickle named model.safetensors
    with open(snapshot / "model.safetensors", "rb") as fh:  # by path, torch 2.14 would call safetensors
        saved = torch.load(fh, weights_only=True)["state_dict"]
    state = model.state_dict()
    assert set(saved) == set(state)
    assert all(torch.equal(saved[k], state[k]) for k in saved)
    assert model.return_channelwise_embeddings is False


def test_weights_with_pickled_code_are_refused(tmp_path):
    from bioviz.embed.openphenom import load_snapshot

    snap = make_snapshot(tmp_path)
    marker = tmp_path / "code_ran"

    class Payload:
        def __reduce__(self):
            return (Path.touch, (marker,))

    import pickle

    (snap / "model.safetensors").write_bytes(pickle.dumps({"state_dict": Payload()}))
    with pytest.raises(EmbedderError, match="could not be loaded .*UnpicklingError"):
        load_snapshot(snap)
    assert not marker.exists()


def test_running_snapshot_code_needs_the_explicit_option(snapshot, tmp_path):
    from bioviz.embed import create_embedder

    with pytest.raises(EmbedderError, match="openphenom.trust_snapshot_code=true") as err:
        create_embedder("openphenom", snapshot=str(snapshot))
    assert "\n" not in str(err.value)
    with pytest.raises(EmbedderError, match="needs the model"):
        create_embedder("openphenom", trust_snapshot_code=True)
    (tmp_path / "huggingface_mae.py").write_text("")
    with pytest.raises(EmbedderError, match="not an OpenPhenom snapshot: config.json, model.safetensors missing"):
        create_embedder("openphenom", snapshot=str(tmp_path), trust_snapshot_code=True)
    with pytest.raises(EmbedderError, match="^embedder openphenom: unknown option"):
        create_embedder("openphenom", snapshot=str(snapshot), trust_snapshot_code=True, size=512)


def _field(size, channels=3, seed=0):
    """Blobby 16-bit-like field in [0, 1]: different content in every 256 px quadrant."""
    from scipy import ndimage as ndi

    rng = np.random.default_rng(seed)
    x = ndi.gaussian_filter(rng.random((channels, size, size)), (0, 4, 4))
    return ((x - x.min()) / (x.max() - x.min())).astype(np.float32)


def test_a_field_is_the_mean_of_its_256px_crops_not_a_resized_field(emb):
    import torch

    from bioviz.embed.openphenom import _resize, to_uint8

    field = _field(512)[None]  # (1, 3, 512, 512)
    got = emb.batch_features(field)[0]
    u = to_uint8(field)
    crops = np.concatenate([u[:, :, t: t + 256, l: l + 256] for t in (0, 256) for l in (0, 256)])
    with torch.inference_mode():
        per_crop = emb.model.predict(torch.from_numpy(crops)).numpy()
    assert per_crop.shape == (4, 32)
    np.testing.assert_allclose(got, per_crop.mean(0), rtol=1e-5, atol=1e-6)
    assert np.abs(per_crop - per_crop.mean(0)).max() > 1e-3  # the four crops really differ
    # The old path (the whole field squeezed into one crop) gives another embedding.
    with torch.inference_mode():
        resized = emb.model.predict(torch.from_numpy(to_uint8(_resize(field, 256, 256)))).numpy()[0]
    from bioviz.embed import create_embedder

    old = create_embedder("openphenom", snapshot=emb.config["snapshot"], trust_snapshot_code=True, fit="resize")
    old.model, old.device = emb.model, "cpu"
    np.testing.assert_allclose(old.batch_features(field)[0], resized, rtol=1e-5, atol=1e-6)
    # float noise between the two paths would be ~1e-6 of the norm; the toy model's tokens share a
    # large constant part (position + channel embeddings), so content moves it by ~1-2% (0.09 of 5.3)
    assert np.linalg.norm(got - resized) > 1e-3 * np.linalg.norm(got)


def test_crop_grid_of_a_1080px_field():
    from bioviz.embed.openphenom import crop_grid, fit_fields

    grid = crop_grid(1080, 1080)
    assert len(grid) == 16 and grid[0] == (28, 28) and grid[-1] == (28 + 768, 28 + 768)
    crops, per = fit_fields(np.random.default_rng(0).random((2, 2, 1080, 1080), dtype=np.float32))
    assert per == 16 and crops.shape == (32, 2, 256, 256) and crops.dtype == np.uint8
    small, per = fit_fields(np.random.default_rng(0).random((1, 2, 64, 96), dtype=np.float32))
    assert per == 1 and small.shape == (1, 2, 256, 256)  # enlarged to one crop (short side 256)


def test_cli_embeds_a_screen_with_the_trusted_snapshot(snapshot, tmp_path, capsys):
    from PIL import Image

    from bioviz.cli import main
    from bioviz.embed import embedding_info, load_embedding
    from bioviz.screen import read_screen, write_screen

    rng = np.random.default_rng(0)
    rows = []
    for i in range(4):
        wid = f"P1_A0{i + 1}_s1"
        row = {"well_id": wid, "batch": "b", "plate": "P1", "well": f"A0{i + 1}", "row": 0, "col": i + 1,
               "site": 1, "perturbation": "NT" if i < 2 else f"G{i}", "perturbation_type": "gene",
               "is_control": i < 2}
        for ch in ("DNA", "RNA"):
            rel = f"images/{wid}_{ch}.png"
            (tmp_path / "images").mkdir(exist_ok=True)
            Image.fromarray(rng.integers(0, 65535, (300, 300), dtype=np.uint16)).save(tmp_path / rel)
            row[f"image_{ch}"] = rel
        rows.append(row)
    write_screen(tmp_path, pd.DataFrame(rows), channels=["DNA", "RNA"], control_label="NT")
    base = ["embed", "--dataset", str(tmp_path), "--embedders", "openphenom", "--no-confounders",
            "--config", f"openphenom.snapshot={snapshot}"]
    assert main(base) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "trust_snapshot_code=true" in err[0]
    assert main(base + ["--config", "openphenom.trust_snapshot_code=true"]) == 0
    screen = read_screen(tmp_path)
    X = load_embedding(screen, "openphenom").iloc[:, 1:].to_numpy()
    assert X.shape == (4, 32) and np.isfinite(X).all() and np.ptp(X, 0).max() > 0
    assert embedding_info(screen, "openphenom")["config"]["fit"] == "tile"
