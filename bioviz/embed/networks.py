"""Networks: untrained timm ViT-S/16 and ResNet-50 (random weights, fixed seed) and ``timm:<name>``.

Untrained networks are the baseline that tells how much of a trained model's score comes from
architecture plus pixels alone. Two channel modes:

* ``all``: every channel into one network as ``in_chans``;
* ``per_channel``: each channel through the same one-channel network, embeddings concatenated,
  as channel-adaptive models (e.g. OpenPhenom, ChAda-ViT) do.

Input sizes: on CPU a ViT-S/16 at 224 px costs ~4.6 GMACs per image; the demo's sites are 128 px,
so by default the networks see 128 px (ViT built with ``img_size=128``: 64 tokens), and the
per-channel variants 64 px (their cost scales with the channel count). ``img_size`` overrides.
"""
from __future__ import annotations

import contextlib
from pathlib import Path

import numpy as np

from ..errors import EmbedderError
from .registry import BatchEmbedder, file_signature, register_embedder


def pick_device(device: str = "auto") -> str:
    import torch

    if device in (None, "", "auto"):
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise EmbedderError(f"device {device!r} requested but no CUDA GPU is available (use --device cpu)")
    if device not in ("cpu",) and not device.startswith("cuda"):
        raise EmbedderError(f"device {device!r}: use auto, cpu or cuda")
    return device


def autocast(device: str):
    """bf16 autocast on a GPU (tensor cores); plain fp32 on CPU, where bf16 is slower and noisier."""
    import torch

    if device.startswith("cuda"):
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return contextlib.nullcontext()


class TorchEmbedder(BatchEmbedder):
    """A torch module applied to standardised images; subclasses build ``self.model``."""

    arch = ""
    base_defaults = {"channel_mode": "all", "img_size": 128}

    def defaults(self):
        return dict(self.base_defaults)

    def build(self, in_chans: int):  # pragma: no cover - abstract
        raise NotImplementedError

    def prepare(self, screen, device="cpu", channel_stats=None):
        import torch

        mode = self.config["channel_mode"]
        if mode not in ("all", "per_channel"):
            raise EmbedderError(f"{self.name}: channel_mode must be 'all' or 'per_channel', not {mode!r}")
        self.n_channels = len(screen.channels)
        self.device = device
        self.input_size = self.config.get("img_size")
        # channels_last: oneDNN's fast convolution layout on CPU (about 1.8x for ResNet-50), and
        # tensor-core friendly on GPU; the numbers are the same.
        self.model = self.build(self.n_channels if mode == "all" else 1).to(device).eval()
        self.model = self.model.to(memory_format=torch.channels_last)
        mean, std = channel_stats if channel_stats is not None else (np.zeros(self.n_channels), np.ones(self.n_channels))
        self.mean = torch.as_tensor(np.asarray(mean, np.float32)).view(1, -1, 1, 1).to(device)
        self.std = torch.as_tensor(np.maximum(np.asarray(std, np.float32), 1e-6)).view(1, -1, 1, 1).to(device)

    def preprocess(self, x):
        import torch.nn.functional as F

        x = (x - self.mean) / self.std
        size = self.input_size
        if size and tuple(x.shape[-2:]) != (int(size), int(size)):
            x = F.interpolate(x, size=(int(size), int(size)), mode="bilinear", align_corners=False,
                              antialias=x.shape[-1] > int(size))
        if self.config["channel_mode"] == "per_channel":
            b, c = x.shape[:2]
            x = x.reshape(b * c, 1, *x.shape[-2:])
        return x

    def forward(self, x):
        return self.model(x)

    def batch_features(self, imgs):
        import torch

        with torch.inference_mode(), autocast(self.device):
            x = torch.from_numpy(np.ascontiguousarray(imgs)).to(self.device, non_blocking=True)
            x = self.preprocess(x).contiguous(memory_format=torch.channels_last)
            out = self.forward(x).float()
        if self.config["channel_mode"] == "per_channel":
            out = out.reshape(imgs.shape[0], -1)
        return out.cpu().numpy()


def _seeded_model(seed: int, fn):
    import torch

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(int(seed))
        return fn()


class Untrained(TorchEmbedder):
    timm_name = ""

    def defaults(self):
        return {**super().defaults(), "seed": 0, "model": self.timm_name}

    def build(self, in_chans):
        import timm

        kw = {}
        if "vit" in self.config["model"]:
            kw["img_size"] = int(self.config["img_size"])
        return _seeded_model(self.config["seed"], lambda: timm.create_model(
            self.config["model"], pretrained=False, num_classes=0, in_chans=in_chans, **kw))


@register_embedder("untrained_vit", description="timm ViT-S/16, random weights (seed 0), all channels as in_chans")
class UntrainedViT(Untrained):
    timm_name = "vit_small_patch16_224"


@register_embedder("untrained_resnet", description="timm ResNet-50, random weights (seed 0), all channels as in_chans")
class UntrainedResNet(Untrained):
    timm_name = "resnet50"


@register_embedder("untrained_vit_per_channel",
                   description="timm ViT-S/16, random weights, each channel alone (channel-agnostic), concatenated")
class UntrainedViTPerChannel(UntrainedViT):
    base_defaults = {"channel_mode": "per_channel", "img_size": 64}


@register_embedder("untrained_resnet_per_channel",
                   description="timm ResNet-50, random weights, each channel alone (channel-agnostic), concatenated")
class UntrainedResNetPerChannel(UntrainedResNet):
    base_defaults = {"channel_mode": "per_channel", "img_size": 64}


def load_state_dict_file(path) -> dict:
    """A state dict from .safetensors, or a torch file read with ``weights_only=True`` (no pickle code)."""
    import torch

    path = Path(path).expanduser()
    if not path.is_file():
        raise EmbedderError(f"weights file {path} does not exist")
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            sd = load_file(str(path))
        else:
            sd = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise EmbedderError(f"weights file {path} could not be loaded ({type(exc).__name__}: "
                            f"{str(exc).splitlines()[0][:200]})") from exc
    for key in ("state_dict", "model", "model_state_dict"):
        if isinstance(sd, dict) and key in sd and isinstance(sd[key], dict):
            sd = sd[key]
    if not isinstance(sd, dict) or not all(hasattr(v, "shape") for v in sd.values()):
        raise EmbedderError(f"weights file {path} does not hold a state dict of tensors")
    return {k.removeprefix("module."): v for k, v in sd.items()}


@register_embedder("timm:", needs_files=True,
                   description="any timm model with your checkpoint: --config timm:NAME.weights=FILE")
class TimmCheckpoint(TorchEmbedder):
    def __init__(self, model_name: str, **cfg):
        self.model_name = model_name
        super().__init__(**cfg)
        if not self.config["weights"]:
            raise EmbedderError(f"embedder timm:{model_name} needs a checkpoint: "
                                f"--config timm:{model_name}.weights=FILE (.safetensors or a torch state dict)")
        self.config["weights_file"] = file_signature(self.config["weights"])
        self.config["model"] = model_name

    def defaults(self):
        # img_size None: networks with a fixed input (ViTs) get the size they were built for;
        # convolutional ones see the native site size. in_chans None: the screen's channel count.
        return {"channel_mode": "all", "img_size": None, "in_chans": None, "weights": None,
                "weights_file": None, "model": None}

    def build(self, in_chans):
        import timm

        if self.config["in_chans"] is not None and int(self.config["in_chans"]) != in_chans:
            raise EmbedderError(f"timm:{self.model_name}: in_chans={self.config['in_chans']} but the screen gives "
                                f"{in_chans} channel(s) per image (channel_mode={self.config['channel_mode']})")
        try:
            model = timm.create_model(self.model_name, pretrained=False, num_classes=0, in_chans=in_chans)
        except Exception as exc:
            raise EmbedderError(f"timm cannot build model {self.model_name!r}: {str(exc).splitlines()[0]}") from exc
        sd = load_state_dict_file(self.config["weights"])
        own = model.state_dict()
        missing = [k for k in own if k not in sd]
        if missing:
            raise EmbedderError(f"checkpoint {Path(self.config['weights']).name} lacks {len(missing)} of the "
                                f"{len(own)} tensors of timm model {self.model_name} (e.g. {missing[0]!r}); "
                                "is it a checkpoint of this architecture?")
        for k, v in own.items():
            if tuple(sd[k].shape) != tuple(v.shape):
                raise EmbedderError(f"checkpoint tensor {k!r} has shape {tuple(sd[k].shape)} but timm model "
                                    f"{self.model_name} with in_chans={in_chans} expects {tuple(v.shape)}")
        # Extra tensors (a classifier head) are dropped: the embedding is the pooled feature.
        model.load_state_dict({k: sd[k] for k in own})
        if self.input_size is None and hasattr(model, "patch_embed"):
            size = getattr(model.patch_embed, "img_size", None)
            if size:
                self.input_size = int(size[0] if isinstance(size, (tuple, list)) else size)
        return model
