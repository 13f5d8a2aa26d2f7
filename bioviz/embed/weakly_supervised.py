"""weakly_supervised: a small CNN trained to tell perturbations apart, then used as an embedder.

The field's weakly supervised recipe (Caicedo et al. 2018; Moshkov et al. 2024): single-cell
crops labelled only with their well's perturbation; the network never sees a relationship.
``bioviz train`` trains it on a screen disjoint from the benchmark (the demo's ``--split train``);
a site's embedding is the mean, over its cells, of the pooled features before the classifier.

Why single cells rather than whole sites: a whole-site network is handed cell density for free
(fewer cells, less signal everywhere) and then learns density and little else; a crop centred on
one nucleus and standardised on its own (norm="image", self-standardisation) shows shape and
texture, not how many cells the well kept or how bright the plate's stain was.

Sized for a laptop: four strided conv blocks (width 16) on ~32 px crops; fits 2 CPU cores in a
few minutes. Deterministic for a seed at a fixed thread count.
"""
from __future__ import annotations

import hashlib

import time
from pathlib import Path

import numpy as np

from .. import __version__
from ..errors import EmbedderError
from .networks import TorchEmbedder, autocast, pick_device
from .registry import cpu_count, file_signature, register_embedder

DEFAULT_WEIGHTS = "models/weakly_supervised.pt"
ARCH = "bioviz_cell_cnn_v2"  # v1 (whole-site) checkpoints are refused: retrain
NORMS = ("image", "dataset")


def crop_size_for(diameter: float) -> int:
    """About three nucleus diameters (a whole cell), a multiple of 8 for the four stride-2 blocks."""
    return int(np.clip(np.round(3.2 * diameter / 8) * 8, 16, 96))


def cell_crops(img: np.ndarray, nuc_index: int, crop: int, *, nucleus_diameter: float | None = None):
    """(n_cells, C, crop, crop) float32 crops centred on the nuclei of one site (C, H, W)."""
    from scipy import ndimage as ndi

    from .seg import segment_site

    seg = segment_site(img, nuc_index, nucleus_diameter)
    if seg.n == 0:
        return np.zeros((0, img.shape[0], crop, crop), np.float32)
    centres = np.array(ndi.center_of_mass(np.ones_like(seg.nuclei), seg.nuclei, np.arange(1, seg.n + 1)))
    half = crop // 2
    # Zero padding: past the edge of the field there is no stain, as in the background.
    padded = np.pad(img, ((0, 0), (half, half), (half, half)))
    out = np.empty((len(centres), img.shape[0], crop, crop), np.float32)
    for k, (cy, cx) in enumerate(np.round(centres).astype(int)):
        out[k] = padded[:, cy:cy + crop, cx:cx + crop]
    return out


def _normalize(x, mean, std, norm: str):
    if norm == "image":
        m = x.mean(dim=(2, 3), keepdim=True)
        sd = x.std(dim=(2, 3), keepdim=True)
        return (x - m) / (sd + 1e-6)
    return (x - mean) / std


def build_model(in_chans: int, n_classes: int, width: int = 32, emb_dim: int = 128):
    import torch.nn as nn

    def block(a, b):
        return [nn.Conv2d(a, b, 3, stride=2, padding=1, bias=False), nn.BatchNorm2d(b), nn.ReLU(inplace=True)]

    class SmallCNN(nn.Module):
        def __init__(self):
            super().__init__()
            w = width
            self.features = nn.Sequential(*block(in_chans, w), *block(w, 2 * w), *block(2 * w, 4 * w),
                                          *block(4 * w, emb_dim), nn.AdaptiveAvgPool2d(1), nn.Flatten())
            self.head = nn.Linear(emb_dim, n_classes)

        def forward(self, x):
            return self.head(self.features(x))

        def embed(self, x):
            return self.features(x)

    return SmallCNN()


def _load_crops(screen, workers: int, progress=None):
    """Single-cell crops of every site as float16 (N_cells, C, crop, crop), their site indices,
    and the crop size and nucleus diameter used (kept in the checkpoint for embedding)."""
    import torch

    from ..segment import estimate_nucleus_diameter
    from .engine import SiteDataset, _collate, _worker_init
    from .registry import nuclear_channel

    n = screen.n_sites
    nuc = nuclear_channel(screen.channels)
    first = screen.load_site(screen.obs["well_id"].iloc[0])
    # One diameter for the whole screen (median over a few sites), so every crop has one scale.
    probe = [screen.load_site(w)[nuc] for w in screen.obs["well_id"].iloc[:: max(1, n // 16)][:16]]
    diameter = float(np.median([estimate_nucleus_diameter(d) for d in probe]))
    crop = crop_size_for(diameter)
    ds = SiteDataset(screen, {0: ([], True)}, n, first.shape)
    batches = [list(range(s, min(n, s + 64))) for s in range(0, n, 64)]
    loader = torch.utils.data.DataLoader(ds, batch_sampler=batches, num_workers=workers, collate_fn=_collate,
                                         worker_init_fn=_worker_init if workers else None)
    crops, sites = [], []
    for items in loader:
        for it in items:
            if it["error"] is not None:
                raise it["error"]
            c = cell_crops(np.asarray(it["img"], np.float32), nuc, crop, nucleus_diameter=diameter)
            crops.append(c.astype(np.float16))
            sites.append(np.full(len(c), it["i"]))
        if progress:
            progress(items[-1]["i"] + 1, n, "cropping cells")
    crops = np.concatenate(crops)
    if len(crops) == 0:
        raise EmbedderError(f"no nuclei found in {screen.name}: nothing to train on")
    return crops, np.concatenate(sites), crop, diameter


def image_fingerprints(screen) -> dict[str, str]:
    """{well_id: fingerprint of the site's image files} (SHA-1 of every channel file's bytes, 16 hex).

    What the training guard compares: the same image files, copied or renamed, give the same
    fingerprint; a new image of the same perturbation does not.
    """
    out = {}
    for wid in screen.obs["well_id"].astype(str):
        h = hashlib.sha1()
        for ch in screen.channels:
            h.update(screen.image_path(wid, ch).read_bytes())
        out[wid] = h.hexdigest()[:16]
    return out


def check_training_overlap(screen, meta: dict) -> str:
    """Refuse images the checkpoint was trained on (EmbedderError naming them); return a note on
    perturbations shared with the training screen through different images ("" if none)."""
    trained = set(meta.get("image_fingerprints") or [])
    if not trained:
        return ("checkpoint has no image fingerprints (trained by an older bioviz); the training-set "
                "overlap could not be checked: retrain to enable it")
    fps = image_fingerprints(screen)
    seen = [w for w, f in fps.items() if f in trained]
    if seen:
        raise EmbedderError(
            f"weakly_supervised was trained on {len(seen)} of the {len(fps)} images of {screen.name} "
            f"(e.g. {', '.join(seen[:3])}); embedding its own training images would score memorisation. "
            f"Train on a separate screen: bioviz train --dataset OTHER_SCREEN --out MODEL.pt")
    shared = sorted(set(meta.get("classes") or []) & set(screen.obs["perturbation"].astype(str))
                    - {str(getattr(screen, "control_label", ""))})
    if shared:
        return (f"shares {len(shared)} perturbations with its training screen {meta.get('train_dataset', '')!r} "
                f"through different images (e.g. {', '.join(shared[:3])})")
    return ""


def train(dataset, out, *, epochs: int = 16, seed: int = 0, device: str = "auto", batch_size: int = 256,
          workers: int | None = None, threads: int | None = 2, lr: float = 3e-3, width: int = 16,
          emb_dim: int = 128, norm: str = "image", progress=None) -> dict:
    """Train the weakly supervised CNN on ``dataset`` (a path or Screen); write the checkpoint to ``out``.

    progress(done, total, message) is called per batch. Returns a summary (loss/accuracy per epoch).
    norm="image" standardises each channel of each crop on its own; norm="dataset" uses one mean
    and sd per channel (then stain intensity stays visible to the network).
    """
    if norm not in NORMS:
        raise EmbedderError(f"unknown normalization {norm!r}; choose one of {', '.join(NORMS)}")
    import torch
    import torch.nn.functional as F

    from .. import atomic
    from ..screen import Screen, read_screen

    screen = dataset if isinstance(dataset, Screen) else read_screen(dataset)
    device = pick_device(device)
    workers = min(2, cpu_count()) if workers is None else int(workers)
    labels_txt = screen.obs["perturbation"].astype(str).to_numpy()
    classes = sorted(set(labels_txt))
    if len(classes) < 2:
        raise EmbedderError(f"training needs at least two perturbations; {screen.name} has {len(classes)}")
    y_all = torch.as_tensor(np.searchsorted(classes, labels_txt))
    images, site_of, crop, diameter = _load_crops(screen, workers, progress)
    y_all = y_all[torch.as_tensor(site_of)]
    n, c, h, w = images.shape
    mean = images.astype(np.float32).mean((0, 2, 3))
    std = np.sqrt(np.maximum((images.astype(np.float32) ** 2).mean((0, 2, 3)) - mean**2, 1e-12))

    old_threads = torch.get_num_threads()
    old_det = torch.are_deterministic_algorithms_enabled()
    if threads:
        torch.set_num_threads(int(threads))
    torch.use_deterministic_algorithms(True, warn_only=True)
    try:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            model = build_model(c, len(classes), width, emb_dim).to(device).to(memory_format=torch.channels_last)
            gen = torch.Generator().manual_seed(seed)
            opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=1e-4)
            steps_per_epoch = max(1, n // batch_size)
            total = epochs * steps_per_epoch
            sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=total, pct_start=0.2)
            m_t = torch.as_tensor(mean).view(1, -1, 1, 1).to(device)
            s_t = torch.as_tensor(std).view(1, -1, 1, 1).to(device)
            history, step, t0 = [], 0, time.perf_counter()
            for epoch in range(epochs):
                model.train()
                perm = torch.randperm(n, generator=gen)
                loss_sum = correct = seen = 0
                for b in range(steps_per_epoch):  # drop the ragged last batch: BatchNorm dislikes tiny ones
                    idx = torch.sort(perm[b * batch_size:(b + 1) * batch_size]).values
                    x = torch.from_numpy(images[idx.numpy()].astype(np.float32)).to(device)
                    x = _normalize(x, m_t, s_t, norm)
                    # Flips and 90-degree turns: a microscope field has no preferred orientation.
                    k = int(torch.randint(4, (1,), generator=gen))
                    x = torch.rot90(x, k, dims=(2, 3))
                    if int(torch.randint(2, (1,), generator=gen)):
                        x = torch.flip(x, dims=(3,))
                    x = x.contiguous(memory_format=torch.channels_last)
                    y = y_all[idx].to(device)
                    with autocast(device):
                        logits = model(x)
                        loss = F.cross_entropy(logits.float(), y)
                    opt.zero_grad(set_to_none=True)
                    loss.backward()
                    opt.step()
                    sched.step()
                    step += 1
                    loss_sum += float(loss.detach()) * len(idx)
                    correct += int((logits.argmax(1) == y).sum())
                    seen += len(idx)
                    if progress:
                        progress(step, total, f"epoch {epoch + 1}/{epochs} loss {loss_sum / seen:.3f}")
                history.append({"epoch": epoch + 1, "loss": loss_sum / seen, "train_accuracy": correct / seen})
    finally:
        torch.set_num_threads(old_threads)
        torch.use_deterministic_algorithms(old_det)
    meta = {"arch": ARCH, "in_chans": c, "n_classes": len(classes), "width": width, "emb_dim": emb_dim,
            "img_size": int(h), "crop": int(crop), "nucleus_diameter": diameter, "n_cells": int(n),
            "norm": norm, "channels": list(screen.channels), "classes": classes,
            "mean": [float(v) for v in mean], "std": [float(v) for v in std], "seed": seed, "epochs": epochs,
            "train_dataset": screen.name, "train_fingerprint": screen.fingerprint(), "bioviz_version": __version__,
            # the training guard: weakly_supervised refuses to embed any of these images
            "image_fingerprints": sorted(set(image_fingerprints(screen).values())),
            "history": history, "seconds": round(time.perf_counter() - t0, 1), "chance_accuracy": 1 / len(classes)}
    state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
    with atomic.atomic_path(Path(out)) as tmp:
        torch.save({"state_dict": state, "meta": meta}, tmp)
    return meta


def read_checkpoint(path) -> tuple[dict, dict]:
    import torch

    path = Path(path)
    try:
        ck = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise EmbedderError(f"weakly supervised weights {path} could not be loaded: "
                            f"{str(exc).splitlines()[0][:200]}") from exc
    if not isinstance(ck, dict) or "meta" not in ck or ck["meta"].get("arch") != ARCH:
        raise EmbedderError(f"{path} is not a checkpoint of this bioviz version's train; retrain it: "
                            f"bioviz train --dataset TRAIN_SCREEN --out {path}")
    return ck["state_dict"], ck["meta"]


@register_embedder("weakly_supervised",
                   description="small CNN trained by `bioviz train` to classify perturbations (disjoint screen)")
class WeaklySupervised(TorchEmbedder):
    def defaults(self):
        return {"weights": None, "weights_file": None}

    def not_applicable(self, screen):
        why = super().not_applicable(screen)
        path = screen.root / DEFAULT_WEIGHTS
        if why is None and not self.user_config.get("weights") and not path.is_file():
            why = (f"no trained model at {path}; train one: bioviz train --dataset TRAIN_SCREEN --out {path} "
                   "(the demo: bioviz demo --split train --out data/demo-train)")
        return why

    def resolve(self, screen):
        if self.user_config.get("weights"):
            path = Path(self.user_config["weights"]).expanduser()
        else:
            path = screen.root / DEFAULT_WEIGHTS
            if not path.is_file():
                raise EmbedderError(
                    f"weakly_supervised has no trained model at {path}; train one: bioviz train --dataset "
                    f"TRAIN_SCREEN --out {path} (the demo: bioviz demo --split train --out data/demo-train)")
        self.config["weights"] = str(path)
        self.config["weights_file"] = file_signature(path)

    def prepare(self, screen, device="cpu", channel_stats=None):
        import torch

        sd, meta = read_checkpoint(self.config["weights"])
        if meta["in_chans"] != len(screen.channels):
            raise EmbedderError(f"weakly_supervised was trained on {meta['in_chans']} channels "
                                f"({', '.join(meta['channels'])}); {screen.name} has {len(screen.channels)}")
        if list(meta["channels"]) != list(screen.channels):
            raise EmbedderError(f"weakly_supervised was trained on channels {', '.join(meta['channels'])} "
                                f"but {screen.name} has {', '.join(screen.channels)} (same order needed)")
        self.notes = check_training_overlap(screen, meta)
        model = build_model(meta["in_chans"], meta["n_classes"], meta["width"], meta["emb_dim"])
        model.load_state_dict(sd)
        self.device = device
        self.model = model.to(device).eval().to(memory_format=torch.channels_last)
        self.crop = int(meta["crop"])
        self.diameter = float(meta["nucleus_diameter"])
        self.emb_dim = int(meta["emb_dim"])
        self.mean = torch.tensor(meta["mean"], dtype=torch.float32).view(1, -1, 1, 1).to(device)
        self.std = torch.tensor(meta["std"], dtype=torch.float32).view(1, -1, 1, 1).to(device)
        self.norm = meta["norm"]
        from .registry import nuclear_channel

        self.nuc = nuclear_channel(screen.channels)

    def forward(self, x):
        return self.model.embed(x)

    def batch_features(self, imgs):
        """Mean over each site's cells of the crop embeddings; a site without nuclei embeds as 0."""
        import torch

        crops = [cell_crops(np.asarray(img, np.float32), self.nuc, self.crop, nucleus_diameter=self.diameter)
                 for img in imgs]
        counts = [len(c) for c in crops]
        out = np.zeros((len(imgs), self.emb_dim), np.float32)
        if sum(counts) == 0:
            return out
        with torch.inference_mode(), autocast(self.device):
            x = torch.from_numpy(np.concatenate(crops)).to(self.device)
            x = _normalize(x, self.mean, self.std, self.norm).contiguous(memory_format=torch.channels_last)
            feats = self.forward(x).float().cpu().numpy()
        start = 0
        for i, k in enumerate(counts):
            if k:
                out[i] = feats[start:start + k].mean(0)
            start += k
        return out
