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
