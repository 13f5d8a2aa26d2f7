"""The scanpy-style facade reaches the same functions the CLI uses."""
import numpy as np

import bioviz as bv


def test_pp_tl_pl_facade_on_a_small_screen(small_screen):
    screen = bv.pp.read_screen(small_screen)
    assert screen.n_sites == 8
    assert "pixel_stats" in bv.tl.list_embedders()
    # A structured map: recall through the facade equals the library function it re-exports.
    from bioviz.bench.recall import recall_table

    rng = np.random.default_rng(0)
    genes = ["PSMA1", "PSMA2", "PSMA3", "PSMB1", "PSMB2"] + [f"G{i}" for i in range(40)]
    x = rng.normal(size=(len(genes), 8))
    x[:5] += 5  # the proteasome genes point the same way
    a = bv.tl.recall_table(x, genes, sources=["CORUM"])
    b = recall_table(x, genes, sources=["CORUM"])
    assert a.equals(b) and a["recall_0.05_0.95"].iloc[0] == 1.0
    assert callable(bv.pl.recall_bars)
