"""openphenom: Recursion's OpenPhenom (CA-MAE-S/16) from a local Hugging Face snapshot, loaded as it loads itself.

``huggingface-cli download recursionpharma/OpenPhenom --local-dir DIR`` gives ``config.json``, the
model code (``huggingface_mae.py``, ``mae_modules.py``, ``vit.py``, ``normalizer.py``, ``loss.py``,
``mae_utils.py``, ...) and the weights in ``model.safetensors``, which despite its name is a torch
pickle (``{"state_dict": ...}``) that the snapshot's own ``MAEModel.from_pretrained`` reads with
``torch.load``. The code is a package: ``huggingface_mae.py`` imports its siblings relatively
(``from .vit import ...``, which Hugging Face's ``trust_remote_code`` requires) and the GitHub
package (``recursionpharma/maes_microscopy``) imports them package-absolutely
(``from maes_microscopy.vit import ...``). ``MAEModel`` subclasses transformers' ``PreTrainedModel``.

bioviz therefore imports the snapshot folder as a package under a private name (both import
styles resolve to the same modules; the folder itself never goes on ``sys.path``, so its
``vit``/``loss`` modules cannot shadow anything), calls its ``from_pretrained`` with every
``torch.load`` forced to ``weights_only=True`` (the pickle can hold tensors only, no code), and
runs it only when the user sets ``trust_snapshot_code=true``: the snapshot's Python runs on their
machine.

The model was trained on 256 x 256 crops of 2,048 px RxRx3 fields at native resolution, so a
field is not resized (that shrank a 1,080 px field's cells about 4x): it is cut into 256 px
crops, ``predict`` embeds each, and the site's embedding is the mean of its crops' embeddings.
``predict`` takes uint8 (N, C, 256, 256), any C, and standardises each crop channel itself
(``input_norm``); the embedding is the mean of its patch tokens (384-d).
"""
from __future__ import annotations

import contextlib
import hashlib
import importlib
import importlib.abc
import importlib.machinery
import importlib.util
import os
import re
import sys
import warnings
from pathlib import Path

import numpy as np

from ..errors import EmbedderError
from .networks import autocast
from .registry import BatchEmbedder, file_signature, register_embedder

ENTRY = "huggingface_mae"
WEIGHTS = "model.safetensors"
CROP = 256            # the model's input: 16 x 16 patches of 16 px, 256 tokens per channel
CROPS_PER_CALL = 32   # crops per forward pass (6-channel crops: 1,537 tokens each for ViT-S)
FITS = ("tile", "resize", "center_crop")


# -- the snapshot as a package -----------------------------------------------------------------
class _AliasFinder(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Serves ``ALIAS`` and ``ALIAS.x`` as the already-imported private package and its modules.

    The GitHub code imports its siblings as ``maes_microscopy.x``; loading the same files a second
    time under that name would give two copies of every class, so the alias maps onto one copy.
    """

    def __init__(self, alias: str, target: str):
        self.alias, self.target = alias, target

    def find_spec(self, fullname, path=None, target=None):
        if fullname == self.alias or fullname.startswith(self.alias + "."):
            return importlib.util.spec_from_loader(fullname, self, is_package=fullname == self.alias)
        return None

    def create_module(self, spec):
        return importlib.import_module(self.target + spec.name[len(self.alias):])

    def exec_module(self, module):
        pass


def _absolute_package_names(snap: Path, modules: set[str]) -> set[str]:
    """Names X that the snapshot's code uses as ``X.<sibling module>`` (package-absolute imports)."""
    pat = re.compile(r"^\s*(?:from|import)\s+([A-Za-z_]\w*)\.([A-Za-z_]\w*)", re.M)
    names = set()
    for f in snap.glob("*.py"):
        for pkg, mod in pat.findall(f.read_text(errors="replace")):
            if mod in modules and pkg not in modules:
                names.add(pkg)
    return names


def import_snapshot(snap: Path):
    """Import ``snap/huggingface_mae.py`` as a module of a package made of the snapshot folder.

    The package gets a private name per snapshot path. Package-absolute imports
    (``maes_microscopy.x``) are served by an alias that exists only while the snapshot's modules
    are imported; whatever ``sys.modules`` held under that name before is put back after, so two
    snapshots, or an installed maes_microscopy, never see each other.
    """
    snap = snap.resolve()
    # Named by path and code files, so a long-lived process (the dashboard) picks up edited code.
    code = sorted((f.name, f.stat().st_size, f.stat().st_mtime_ns) for f in snap.glob("*.py"))
    pkg = "bioviz_openphenom_" + hashlib.sha1(repr((str(snap), code)).encode()).hexdigest()[:10]
    if pkg not in sys.modules:
        init = snap / "__init__.py"
        spec = importlib.util.spec_from_file_location(pkg, init if init.is_file() else None,
                                                      submodule_search_locations=[str(snap)])
        if spec is None or spec.loader is None:  # no __init__.py (the snapshot has none)
            spec = importlib.machinery.ModuleSpec(pkg, None, is_package=True)
            spec.submodule_search_locations = [str(snap)]
        module = importlib.util.module_from_spec(spec)
        sys.modules[pkg] = module
        if spec.loader is not None:
            spec.loader.exec_module(module)
    aliases = _absolute_package_names(snap, {p.stem for p in snap.glob("*.py")})

    def aliased(name: str) -> bool:
        return any(name == a or name.startswith(a + ".") for a in aliases)

    saved = {k: v for k, v in sys.modules.items() if aliased(k)}
    for k in saved:
        del sys.modules[k]
    finders = [_AliasFinder(a, pkg) for a in sorted(aliases)]
    sys.meta_path[:0] = finders
    try:
        return importlib.import_module(f"{pkg}.{ENTRY}")
    finally:
        for f in finders:
            sys.meta_path.remove(f)
        for k in [k for k in sys.modules if aliased(k)]:
            del sys.modules[k]
        sys.modules.update(saved)


def _is_torch_pickle(path) -> bool:
    """A torch.save file (zip archive, or the legacy bare pickle), whatever its name says."""
    with open(path, "rb") as fh:
        head = fh.read(4)
    return head == b"PK\x03\x04" or head[:1] == b"\x80"


@contextlib.contextmanager
def weights_only_loads():
    """Every ``torch.load`` inside (the snapshot's own included) refuses pickled code.

    torch 2.14 also hands any path ending in ``.safetensors`` to ``safetensors.load_file``, which
    fails on the snapshot's torch pickle of that name ("header too large"); given an open file
    instead, torch reads it as what it is.
    """
    import torch

    real = torch.load

    def load(f, *args, **kwargs):
        kwargs["weights_only"] = True
        if isinstance(f, (str, os.PathLike)) and os.fspath(f).endswith(".safetensors") and _is_torch_pickle(f):
            with open(f, "rb") as fh:
                return real(fh, *args, **kwargs)
        return real(f, *args, **kwargs)

    torch.load = load
    try:
        yield
    finally:
        torch.load = real


def load_snapshot(snap) -> object:
    """The snapshot's ``MAEModel.from_pretrained(snap)``: its code, its loading path, tensors-only weights."""
    snap = Path(snap).expanduser().resolve()
    try:
        import transformers  # noqa: F401  (the snapshot's base classes)
    except ImportError:
        raise EmbedderError("embedder openphenom needs transformers (its model subclasses "
                            "transformers.PreTrainedModel): pip install 'transformers>=5.24,<6'") from None
    try:
        module = import_snapshot(snap)
        if not hasattr(module, "MAEModel"):
            raise EmbedderError(f"{snap / (ENTRY + '.py')} defines no MAEModel")
        with weights_only_loads():
            model = module.MAEModel.from_pretrained(str(snap))
    except EmbedderError:
        raise
    except Exception as exc:
        raise EmbedderError(f"OpenPhenom snapshot {snap} could not be loaded "
                            f"({type(exc).__name__}: {str(exc).splitlines()[0][:200] if str(exc) else ''})") from exc
    return model


# -- fields to crops ---------------------------------------------------------------------------
def to_uint8(imgs: np.ndarray) -> np.ndarray:
    """(B, C, H, W) float -> uint8, each channel of each field stretched to its 99.9th percentile.

    The stretch is per field, before tiling, so a crop of empty background stays dark rather than
    being stretched up to noise; the model then standardises each crop channel itself.
    """
    x = np.asarray(imgs, dtype=np.float32)
    flat = x.reshape(x.shape[0], x.shape[1], -1)
    hi = np.maximum(np.quantile(flat, 0.999, axis=2), 1e-8)[..., None, None]
    return np.clip(np.round(x / hi * 255.0), 0, 255).astype(np.uint8)


def _resize(x: np.ndarray, h: int, w: int) -> np.ndarray:
    import torch
    import torch.nn.functional as F

    t = torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32))
    shrink = t.shape[-2] > h or t.shape[-1] > w
    return F.interpolate(t, size=(h, w), mode="bilinear", align_corners=False, antialias=shrink).numpy()


def crop_grid(h: int, w: int, size: int = CROP) -> list[tuple[int, int]]:
    """Top-left corners of the non-overlapping size x size crops, centred in an h x w field."""
    ny, nx = h // size, w // size
    t0, l0 = (h - ny * size) // 2, (w - nx * size) // 2
    return [(t0 + i * size, l0 + j * size) for i in range(ny) for j in range(nx)]


def fit_fields(imgs: np.ndarray, fit: str = "tile", size: int = CROP) -> tuple[np.ndarray, int]:
    """(B, C, H, W) float -> ((B * T, C, size, size) uint8 crops, T crops per field).

    tile: every whole size-px crop at native resolution (a 1,080 px field gives 4 x 4 = 16,
    the central 1,024 px); a field smaller than one crop is first enlarged so its short side is size.
    resize: the whole field scaled to one crop (the old behaviour). center_crop: the central crop.
    """
    b, c, h, w = imgs.shape
    if fit == "resize":
        return to_uint8(_resize(imgs, size, size) if (h, w) != (size, size) else imgs), 1
    if min(h, w) < size:
        s = size / min(h, w)
        imgs = _resize(imgs, max(size, int(round(h * s))), max(size, int(round(w * s))))
        h, w = imgs.shape[-2:]
    u = to_uint8(imgs)
    corners = crop_grid(h, w, size)
    if fit == "center_crop":
        corners = [((h - size) // 2, (w - size) // 2)]
    crops = np.stack([u[:, :, t: t + size, l: l + size] for t, l in corners], axis=1)  # (B, T, C, s, s)
    return crops.reshape(b * len(corners), c, size, size), len(corners)


@register_embedder("openphenom", needs_files=True,
                   description="Recursion OpenPhenom CA-MAE-S/16 from a local HF snapshot "
                               "(--config openphenom.snapshot=DIR openphenom.trust_snapshot_code=true)")
class OpenPhenom(BatchEmbedder):
    revision = 2  # 2: 256 px crops averaged instead of one resized field

    def defaults(self):
        return {"snapshot": None, "trust_snapshot_code": False, "fit": "tile", "snapshot_files": None}

    def __init__(self, **cfg):
        super().__init__(**cfg)
        snap = self.config["snapshot"]
        if not snap:
            raise EmbedderError("embedder openphenom needs the model: download recursionpharma/OpenPhenom "
                                "and pass --config openphenom.snapshot=DIR")
        path = Path(snap).expanduser()
        missing = [f for f in (ENTRY + ".py", "config.json", WEIGHTS) if not (path / f).is_file()]
        if missing:
            raise EmbedderError(f"{snap} is not an OpenPhenom snapshot: {', '.join(missing)} missing")
        if self.config["trust_snapshot_code"] is not True:
            raise EmbedderError(f"embedder openphenom runs the snapshot's own Python code ({path / (ENTRY + '.py')} "
                                "and its siblings) on this machine; if you trust it, add "
                                "--config openphenom.trust_snapshot_code=true")
        if self.config["fit"] not in FITS:
            raise EmbedderError(f"openphenom.fit must be one of {', '.join(FITS)}, not {self.config['fit']!r}")
        self.config["snapshot_files"] = file_signature(snap)

    def prepare(self, screen, device="cpu", channel_stats=None):
        model = load_snapshot(self.config["snapshot"])
        model.return_channelwise_embeddings = False  # one 384-d vector: the mean of all patch tokens
        self.model = model.to(device).eval()
        self.device = device

    def embed_crops(self, crops: np.ndarray) -> np.ndarray:
        """(N, C, 256, 256) uint8 -> (N, D) float32 through the snapshot's predict."""
        import torch

        out = []
        for s in range(0, len(crops), CROPS_PER_CALL):
            x = torch.from_numpy(np.ascontiguousarray(crops[s: s + CROPS_PER_CALL])).to(self.device)
            with torch.inference_mode(), autocast(self.device), warnings.catch_warnings():
                # its InstanceNorm2d(None, affine=False) warns on every call that num_features is unused
                warnings.filterwarnings("ignore", message="input's size at dim=1 does not match num_features")
                out.append(self.model.predict(x).float().cpu().numpy().reshape(len(x), -1))
        return np.concatenate(out)

    def batch_features(self, imgs):
        crops, per_field = fit_fields(imgs, self.config["fit"])
        X = self.embed_crops(crops)
        return X.reshape(len(imgs), per_field, -1).mean(1)
