"""User-supplied models and tables: timm checkpoints, OpenPhenom (stand-in), precomputed features."""

import numpy as np
import pandas as pd
import pytest

from bioviz.embed import embed, load_embedding
from bioviz.errors import EmbedderError
from bioviz.screen import read_screen, write_screen

CHANNELS = ["DNA", "ER", "RNA"]


@pytest.fixture
def screen(tmp_path):
    """Six 2-site wells of 3-channel 32x32 16-bit images with different content."""
    from PIL import Image

    import torch

    torch.set_num_threads(1)
    rng = np.random.default_rng(0)
    rows = []
    for i in range(12):
        well = f"B{i // 2 + 1:02d}"
        wid = f"P1_{well}_s{i % 2 + 1}"
        row = {"well_id": wid, "batch": "b1", "plate": "P1", "well": well, "row": 1, "col": i // 2 + 1,
               "site": i % 2 + 1, "perturbation": "NT" if i < 4 else f"G{i}",
               "perturbation_type": "control" if i < 4 else "gene", "is_control": i < 4}
        for ch in CHANNELS:
            rel = f"images/{wid}_{ch}.png"
            (tmp_path / "images").mkdir(exist_ok=True)
            img = rng.integers(0, 4000 + 3000 * i, (32, 32)).astype(np.uint16)
            Image.fromarray(img).save(tmp_path / rel)
            row[f"image_{ch}"] = rel
        rows.append(row)
    write_screen(tmp_path, pd.DataFrame(rows), channels=CHANNELS, control_label="NT")
    return read_screen(tmp_path)


KW = dict(workers=0, batch_size=4, confounders=False)


# -- timm:<name> --------------------------------------------------------------------------------
@pytest.mark.parametrize("fmt", ["safetensors", "pt"])
def test_timm_checkpoint_round_trip(screen, tmp_path, fmt):
    import timm
    import torch

    from bioviz.embed import create_embedder
    from bioviz.embed.engine import channel_stats

    torch.manual_seed(123)
    model = timm.create_model("resnet18", pretrained=False, num_classes=10, in_chans=3).eval()
    path = tmp_path / f"ckpt.{fmt}"
    if fmt == "safetensors":
        from safetensors.torch import save_file

        save_file(model.state_dict(), str(path))
    else:
        torch.save({"state_dict": model.state_dict()}, path)
    name = "timm:resnet18"
    out = embed(screen, [name], configs={name: {"weights": str(path)}}, **KW)[name]
    assert out.shape == (12, 1 + 512)

    # The same pipeline around the in-memory model: the checkpoint must reproduce it exactly.
    emb = create_embedder(name, weights=str(path))
    emb.prepare(screen, "cpu", channel_stats=channel_stats(screen))
    model.reset_classifier(0)
    emb.model = model.to(memory_format=torch.channels_last)  # the layout the engine runs in
    imgs = np.stack([screen.load_site(w) for w in screen.obs["well_id"]])
    direct = np.concatenate([emb.batch_features(imgs[i:i + 4]) for i in range(0, 12, 4)])
    np.testing.assert_array_equal(out.iloc[:, 1:].to_numpy(), direct.astype(np.float32))
    assert load_embedding(screen, name).shape == (12, 513)
    assert (screen.embeddings_dir / "timm__resnet18.parquet").exists()

    # Other weights, other embeddings: the checkpoint is really what is used.
    torch.manual_seed(7)
    other = timm.create_model("resnet18", pretrained=False, num_classes=0, in_chans=3)
    torch.save(other.state_dict(), tmp_path / "other.pt")
    out2 = embed(screen, [name], configs={name: {"weights": str(tmp_path / "other.pt")}}, **KW)[name]
    assert not np.allclose(out.iloc[:, 1:].to_numpy(), out2.iloc[:, 1:].to_numpy())


def test_timm_checkpoint_errors(screen, tmp_path):
    import timm
    import torch

    name = "timm:resnet18"
    with pytest.raises(EmbedderError, match="needs a checkpoint"):
        embed(screen, [name], **KW)
    torch.save(timm.create_model("resnet18", num_classes=0, in_chans=5).state_dict(), tmp_path / "c5.pt")
    with pytest.raises(EmbedderError, match=r"conv1.weight.*shape"):
        embed(screen, [name], configs={name: {"weights": str(tmp_path / "c5.pt")}}, **KW)
    torch.save(timm.create_model("resnet10t", num_classes=0, in_chans=3).state_dict(), tmp_path / "r10.pt")
    with pytest.raises(EmbedderError, match="lacks"):
        embed(screen, [name], configs={name: {"weights": str(tmp_path / "r10.pt")}}, **KW)
    (tmp_path / "junk.pt").write_bytes(b"junk")
    with pytest.raises(EmbedderError, match="could not be loaded"):
        embed(screen, [name], configs={name: {"weights": str(tmp_path / "junk.pt")}}, **KW)


# openphenom: tests/test_openphenom.py (stand-in snapshot package in tests/openphenom_snapshot/)


# -- precomputed ------------------------------------------------------------------------------------
def test_precomputed_round_trip_parquet_and_csv(screen, tmp_path):
    rng = np.random.default_rng(1)
    X = rng.normal(size=(12, 7)).astype(np.float32)
    table = pd.DataFrame(X, columns=[f"feature_{i}" for i in range(7)])
    table.insert(0, "well_id", screen.obs["well_id"])
    table = table.sample(frac=1, random_state=0)  # row order must not matter
    for fname in ("feats.parquet", "feats.csv"):
        path = tmp_path / fname
        table.to_parquet(path) if fname.endswith("parquet") else table.to_csv(path, index=False)
        out = embed(screen, ["precomputed"], configs={"precomputed": {"path": str(path)}}, **KW)["precomputed"]
        assert out["well_id"].tolist() == screen.obs["well_id"].tolist()
        np.testing.assert_allclose(out.iloc[:, 1:].to_numpy(), X, rtol=1e-6)


def test_precomputed_cellprofiler_profile_per_well(screen, tmp_path):
    wells = screen.obs[["plate", "well"]].drop_duplicates()
    prof = pd.DataFrame({"Metadata_Plate": wells["plate"], "Metadata_Well": wells["well"],
                         "Metadata_Treatment": "x", "Cells_AreaShape_Area": np.arange(len(wells), dtype=float),
                         "Nuclei_Intensity_MeanIntensity_DNA": np.arange(len(wells)) * 0.5})
    prof.to_csv(tmp_path / "profile.csv", index=False)
    out = embed(screen, ["precomputed"], configs={"precomputed": {"path": str(tmp_path / "profile.csv")}},
                **KW)["precomputed"]
    assert out.shape == (12, 3)  # metadata columns are not features
    # Both sites of a well get that well's profile.
    np.testing.assert_array_equal(out["f0"].to_numpy(), np.repeat(np.arange(6), 2))


def test_precomputed_mismatched_wells_and_nan(screen, tmp_path):
    table = pd.DataFrame({"well_id": [f"other_{i}" for i in range(10)] + list(screen.obs["well_id"][:2]),
                          "feature_0": np.arange(12.0)})
    table.to_csv(tmp_path / "t.csv", index=False)
    with pytest.raises(EmbedderError, match=r"only 2 of 12 screen sites match"):
        embed(screen, ["precomputed"], configs={"precomputed": {"path": str(tmp_path / "t.csv")}}, **KW)
    good = pd.DataFrame({"well_id": screen.obs["well_id"], "a": np.arange(12.0), "b": np.arange(12.0)})
    good.loc[3, "b"] = np.inf
    good.to_csv(tmp_path / "n.csv", index=False)
    with pytest.raises(EmbedderError, match=r"1 NaN/inf values in 1 feature columns \(first 'b'\)"):
        embed(screen, ["precomputed"], configs={"precomputed": {"path": str(tmp_path / "n.csv")}}, **KW)
    out = embed(screen, ["precomputed"], configs={"precomputed": {"path": str(tmp_path / "n.csv"),
                                                                   "nan": "drop_columns"}}, **KW)["precomputed"]
    assert out.shape == (12, 2)


def test_precomputed_changed_file_is_recomputed(screen, tmp_path):
    import os

    path = tmp_path / "t.csv"
    pd.DataFrame({"well_id": screen.obs["well_id"], "a": np.arange(12.0)}).to_csv(path, index=False)
    cfg = {"precomputed": {"path": str(path)}}
    assert embed(screen, ["precomputed"], configs=cfg, **KW)["precomputed"]["f0"].iloc[1] == 1.0
    pd.DataFrame({"well_id": screen.obs["well_id"], "a": np.arange(12.0) * 10}).to_csv(path, index=False)
    os.utime(path, ns=(path.stat().st_atime_ns, path.stat().st_mtime_ns + 10**9))
    assert embed(screen, ["precomputed"], configs=cfg, **KW)["precomputed"]["f0"].iloc[1] == 10.0
