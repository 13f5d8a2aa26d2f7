"""bioviz train: the weakly supervised CNN trains deterministically and becomes an embedder."""
import numpy as np
import pandas as pd
import pytest
import torch

from bioviz.cli import main
from bioviz.demo import make_demo
from bioviz.embed import embed
from bioviz.embed.weakly_supervised import read_checkpoint, train
from bioviz.errors import EmbedderError
from bioviz.screen import read_screen


@pytest.fixture(scope="module")
def screens(tmp_path_factory):
    root = tmp_path_factory.mktemp("train")
    make_demo(root / "bench", preset="tiny", seed=3)
    make_demo(root / "train", preset="tiny", seed=3, split="train")
    return read_screen(root / "bench"), read_screen(root / "train")


def test_train_is_deterministic_and_learns(screens, tmp_path):
    _, tr = screens
    a = train(tr, tmp_path / "a.pt", epochs=3, seed=5, workers=0, threads=1)
    b = train(tr, tmp_path / "b.pt", epochs=3, seed=5, workers=0, threads=1)
    sa, _ = read_checkpoint(tmp_path / "a.pt")
    sb, _ = read_checkpoint(tmp_path / "b.pt")
    assert sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)
    assert a["history"] == b["history"]
    c = train(tr, tmp_path / "c.pt", epochs=3, seed=6, workers=0, threads=1)
    sc, _ = read_checkpoint(tmp_path / "c.pt")
    assert not torch.equal(sa["head.weight"], sc["head.weight"])
    losses = [h["loss"] for h in a["history"]]
    assert losses[-1] < losses[0]  # it learns something about the perturbations
    assert a["classes"] == sorted(tr.obs["perturbation"].unique())


def test_trained_model_embeds_the_benchmark_screen(screens, tmp_path):
    bench, tr = screens
    with pytest.raises(EmbedderError, match="bioviz train"):
        embed(bench, ["weakly_supervised"], workers=0, confounders=False)
    assert main(["train", "--dataset", str(tr.root), "--out", str(bench.root / "models/weakly_supervised.pt"),
                 "--epochs", "2", "--workers", "0", "--threads", "1"]) == 0
    out = embed(bench, ["weakly_supervised"], workers=0, batch_size=16, confounders=False)["weakly_supervised"]
    assert out.shape == (bench.n_sites, 129)
    X = out.iloc[:, 1:].to_numpy()
    assert np.isfinite(X).all() and np.ptp(X, 0).max() > 0
    again = embed(bench, ["weakly_supervised"], workers=0, batch_size=7, confounders=False,
                  force=True)["weakly_supervised"]
    np.testing.assert_allclose(again.iloc[:, 1:].to_numpy(), X, rtol=1e-5, atol=1e-6)


def test_cli_embed_errors_are_one_line(screens, capsys):
    bench, _ = screens
    assert main(["embed", "--dataset", str(bench.root), "--embedders", "pixel_stats,bogus"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "unknown embedder 'bogus'; known:" in err
    assert main(["embed", "--dataset", str(bench.root), "--embedders", "random",
                 "--config", "randm.dim=3"]) == 2
    assert "'randm'" in capsys.readouterr().err
    assert main(["embed", "--dataset", str(bench.root), "--embedders", "random", "--config", "random.dim=3",
                 "--no-confounders", "--workers", "0"]) == 0
    assert "random" in capsys.readouterr().out
    df = pd.read_parquet(bench.embeddings_dir / "random.parquet")
    assert df.shape == (bench.n_sites, 4)


def test_cell_crops_one_per_nucleus_centred_on_it(screens):
    from bioviz.embed.weakly_supervised import cell_crops, crop_size_for
    from bioviz.segment import count_nuclei

    bench, _ = screens
    img = bench.load_site(bench.obs["well_id"].iloc[3])
    crop = crop_size_for(7.0)
    assert crop % 8 == 0 and 16 <= crop <= 96
    crops = cell_crops(img, 0, crop, nucleus_diameter=7.0)
    assert len(crops) == count_nuclei(img[0], nucleus_diameter=7.0) > 0
    assert crops.shape[1:] == (img.shape[0], crop, crop)
    # the DNA stain is brightest at the centre of a crop: each crop sits on its nucleus
    centre = crops[:, 0, crop // 2 - 1:crop // 2 + 2, crop // 2 - 1:crop // 2 + 2].mean((1, 2))
    assert (centre > crops[:, 0].mean((1, 2))).all()


def test_self_standardised_model_ignores_stain_intensity(screens, tmp_path):
    """norm='image': a site imaged 1.6x brighter embeds the same (intensity is not learnable)."""
    from bioviz.embed import create_embedder

    bench, tr = screens
    train(tr, tmp_path / "m.pt", epochs=1, seed=0, workers=0, threads=1)
    emb = create_embedder("weakly_supervised", weights=str(tmp_path / "m.pt"))
    emb.resolve(bench)
    emb.prepare(bench)
    imgs = np.stack([bench.load_site(w) for w in bench.obs["well_id"].iloc[:4]])
    a = emb.batch_features(imgs)
    b = emb.batch_features(imgs * 1.6)
    assert np.abs(a).max() > 0
    np.testing.assert_allclose(a, b, rtol=1e-3, atol=1e-4)


def test_old_whole_site_checkpoint_is_refused_with_a_hint(tmp_path):
    torch.save({"state_dict": {}, "meta": {"arch": "bioviz_small_cnn_v1"}}, tmp_path / "old.pt")
    with pytest.raises(EmbedderError, match="retrain"):
        read_checkpoint(tmp_path / "old.pt")


def test_training_guard_refuses_training_images_and_notes_shared_perturbations(screens, tmp_path):
    """weakly_supervised never embeds an image it was trained on (by file fingerprint, so a copy
    under another name is caught too); a shared perturbation with new images is only noted."""
    import shutil

    from bioviz.embed.weakly_supervised import check_training_overlap, image_fingerprints

    bench, tr = screens
    path = tmp_path / "m.pt"
    meta = train(tr, path, epochs=1, seed=0, workers=0, threads=1)
    assert sorted(set(image_fingerprints(tr).values())) == meta["image_fingerprints"]
    assert check_training_overlap(bench, meta) == ""  # the demo's splits share no image, no gene
    # the benchmark screen with one training image copied over one of its sites
    leak = tmp_path / "leak"
    shutil.copytree(bench.root, leak)
    leaky = read_screen(leak)
    wid = leaky.obs["well_id"].iloc[5]
    src = tr.obs["well_id"].iloc[0]
    for ch in leaky.channels:
        shutil.copyfile(tr.image_path(src, ch), leaky.image_path(wid, ch))
    with pytest.raises(EmbedderError, match=rf"trained on 1 of the {leaky.n_sites} images .*{wid}"):
        check_training_overlap(read_screen(leak), meta)
    # a perturbation of the training screen, imaged anew: allowed, and said
    shared = dict(meta, classes=meta["classes"] + [str(bench.obs["perturbation"].iloc[0])])
    assert "shares 1 perturbations" in check_training_overlap(bench, shared)
