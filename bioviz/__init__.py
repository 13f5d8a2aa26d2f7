"""bioviz: what has a microscopy model actually learned?

Embeddings of a Cell Painting screen next to diagnostic baselines, on known-biology
benchmarks, with the confounders (cell density, stain intensity, plate) that drive a score.
"""
__version__ = "0.1.0"
