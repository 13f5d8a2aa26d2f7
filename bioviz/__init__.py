"""bioviz: what has a microscopy model actually learned?

Embeddings of a Cell Painting screen next to diagnostic baselines, on known-biology
benchmarks, with the confounders (cell density, stain intensity, plate) that drive a score.
"""
__version__ = "0.1.0"


def __getattr__(name):
    # pp/tl/pl load torch, copairs and plotly: import them only when asked for.
    if name in ("pp", "tl", "pl"):
        import importlib

        return importlib.import_module(f"bioviz.{name}")
    if name == "read_screen":
        from .screen import read_screen

        return read_screen
    raise AttributeError(name)
