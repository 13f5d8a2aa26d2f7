"""openphenom: Recursion's OpenPhenom (CA-MAE-S/16) from a local Hugging Face snapshot.

The snapshot (``huggingface-cli download recursionpharma/OpenPhenom --local-dir DIR``) carries its
own model code (``huggingface_mae.py`` and siblings). That code is imported, and so executed, only
when the user names the snapshot with ``--config openphenom.snapshot=DIR``: naming it is the
user's statement that they trust it. The model takes uint8 (B, C, 256, 256) images with any
channel count and normalises each image itself; the embedding is the mean of its patch tokens
(384-d), what its ``predict`` returns with ``return_channelwise_embeddings = False``.

No weights are reachable where bioviz is developed: the glue is tested with a stand-in module
of the same interface (tests/test_embed_models.py), not with the real network.
"""
from __future__ import annotations

import hashlib
import importlib.util
import sys
from pathlib import Path

import numpy as np

from ..errors import EmbedderError
from .networks import autocast
from .registry import BatchEmbedder, file_signature, register_embedder

ENTRY = "huggingface_mae.py"


def to_uint8(imgs: np.ndarray, size: int, fit: str) -> np.ndarray:
    """(B, C, H, W) float -> (B, C, size, size) uint8, each channel stretched to its 99.9th percentile.

    The model standardises every image channel itself, so a per-site stretch loses nothing and
    keeps dim 16-bit stains from collapsing into a few grey levels.
    """
    import torch
    import torch.nn.functional as F

    x = torch.from_numpy(np.ascontiguousarray(imgs, dtype=np.float32))
    h, w = x.shape[-2:]
    if fit == "center_crop" and h >= size and w >= size:
        t, l = (h - size) // 2, (w - size) // 2
        x = x[..., t: t + size, l: l + size]
    elif (h, w) != (size, size):
        x = F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False, antialias=h > size)
    hi = torch.quantile(x.flatten(2), 0.999, dim=2).clamp_min(1e-8)[..., None, None]
    return (x / hi * 255.0).round().clamp(0, 255).to(torch.uint8).numpy()


@register_embedder("openphenom", needs_files=True,
                   description="Recursion OpenPhenom CA-MAE-S/16 from a local HF snapshot (--config openphenom.snapshot=DIR)")
class OpenPhenom(BatchEmbedder):
    def defaults(self):
        return {"snapshot": None, "size": 256, "fit": "resize", "snapshot_files": None}

    def __init__(self, **cfg):
        super().__init__(**cfg)
        snap = self.config["snapshot"]
        if not snap:
            raise EmbedderError("embedder openphenom needs the model: download recursionpharma/OpenPhenom "
                                "and pass --config openphenom.snapshot=DIR")
        if not (Path(snap).expanduser() / ENTRY).is_file():
            raise EmbedderError(f"{snap} is not an OpenPhenom snapshot: {ENTRY} is missing")
        if self.config["fit"] not in ("resize", "center_crop"):
            raise EmbedderError("openphenom.fit must be 'resize' or 'center_crop'")
        self.config["snapshot_files"] = file_signature(snap)

    def prepare(self, screen, device="cpu", channel_stats=None):
        snap = Path(self.config["snapshot"]).expanduser().resolve()
        modname = "bioviz_openphenom_" + hashlib.sha1(str(snap).encode()).hexdigest()[:8]
        # The snapshot's code imports its siblings by bare name, so its folder must be importable.
        sys.path.insert(0, str(snap))
        try:
            spec = importlib.util.spec_from_file_location(modname, snap / ENTRY)
            module = importlib.util.module_from_spec(spec)
            sys.modules[modname] = module
            spec.loader.exec_module(module)
            if not hasattr(module, "MAEModel"):
                raise EmbedderError(f"{snap / ENTRY} defines no MAEModel")
            model = module.MAEModel.from_pretrained(str(snap))
        except EmbedderError:
            raise
        except Exception as exc:
            raise EmbedderError(f"OpenPhenom snapshot {snap} could not be loaded "
                                f"({type(exc).__name__}: {str(exc).splitlines()[0][:200]})") from exc
        finally:
            if sys.path and sys.path[0] == str(snap):
                sys.path.pop(0)
        model.return_channelwise_embeddings = False
        self.model = model.to(device).eval()
        self.device = device

    def batch_features(self, imgs):
        import torch

        x = torch.from_numpy(to_uint8(imgs, int(self.config["size"]), self.config["fit"])).to(self.device)
        with torch.inference_mode(), autocast(self.device):
            out = self.model.predict(x)
        return out.float().cpu().numpy().reshape(len(imgs), -1)
