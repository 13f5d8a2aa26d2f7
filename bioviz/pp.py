"""Preprocessing (scanpy-style ``pp``): get a screen and turn well embeddings into a map.

    import bioviz as bv
    screen = bv.pp.read_screen("data/demo")
    X = bv.tl.load_embedding(screen, "morphology")
    X = bv.pp.adjust_embedding(X, bv.tl.load_confounders(screen), ["density"])
"""
from .bench.adjust import adjust_embedding, parse_adjust, regress_out  # noqa: F401
from .bench.maps import aggregate, build_map, normalize_embedding, pca_centerscale, tvn  # noqa: F401
from .demo import make_demo  # noqa: F401
from .screen import Screen, read_screen, write_screen  # noqa: F401
