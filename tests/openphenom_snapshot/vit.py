import math

import torch
import torch.nn as nn


def generate_2d_sincos_pos_embeddings(embedding_dim: int, length: int, scale: float = 10000.0,
                                      use_class_token: bool = True, num_modality: int = 1) -> nn.Parameter:
    """Fixed 2-D sin-cos position embeddings, (1, [1 +] num_modality * length**2, embedding_dim)."""
    grid = torch.arange(length, dtype=torch.float32)
    gy, gx = torch.meshgrid(grid, grid, indexing="ij")
    quarter = embedding_dim // 4
    omega = 1.0 / scale ** (torch.arange(quarter, dtype=torch.float32) / quarter)
    oy, ox = gy.flatten()[:, None] * omega[None], gx.flatten()[:, None] * omega[None]
    pos = torch.cat([ox.sin(), ox.cos(), oy.sin(), oy.cos()], dim=1)[None]
    pos = pos.repeat(1, num_modality, 1)
    if use_class_token:
        pos = torch.cat([torch.zeros(1, 1, embedding_dim), pos], dim=1)
    return nn.Parameter(pos, requires_grad=False)


class PatchEmbed(nn.Module):
    def __init__(self, img_size: int = 256, patch_size: int = 16, in_chans: int = 1, embed_dim: int = 32):
        super().__init__()
        self.patch_size = (patch_size, patch_size)
        self.grid_size = (img_size // patch_size, img_size // patch_size)
        self.proj = nn.Conv2d(in_chans, embed_dim, kernel_size=patch_size, stride=patch_size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.proj(x).flatten(2).transpose(1, 2)


class VisionTransformer(nn.Module):
    """Toy ViT with the attribute names of timm's that the MAE code reads."""

    def __init__(self, img_size=256, patch_size=16, embed_dim=32, depth=1, num_heads=2, global_pool="avg"):
        super().__init__()
        self.embed_dim = embed_dim
        self.global_pool = global_pool
        self.patch_embed = PatchEmbed(img_size, patch_size, 1, embed_dim)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, embed_dim))
        self.pos_embed = generate_2d_sincos_pos_embeddings(embed_dim, self.patch_embed.grid_size[0])
        self.norm_pre = nn.Identity()
        self.blocks = nn.Sequential(*[
            nn.TransformerEncoderLayer(embed_dim, num_heads, 2 * embed_dim, dropout=0.0, batch_first=True)
            for _ in range(depth)])
        self.norm = nn.LayerNorm(embed_dim)
        self.grad_checkpointing = False


class ChannelAgnosticViT(nn.Module):
    """Each channel is patchified on its own (shared 1-channel projection) plus a channel token."""

    def __init__(self, vit: VisionTransformer, max_in_chans: int):
        super().__init__()
        self.vit = vit
        self.embed_dim = vit.embed_dim
        self.patch_embed = vit.patch_embed
        self.cls_token = vit.cls_token
        self.pos_embed = vit.pos_embed
        self.blocks = vit.blocks
        self.norm = vit.norm
        self.grad_checkpointing = False
        self.channel_embed = nn.Parameter(torch.zeros(1, max_in_chans, 1, vit.embed_dim))

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        n, c, h, w = x.shape
        t = self.patch_embed(x.reshape(n * c, 1, h, w))  # (N*C, L, D)
        t = t.reshape(n, c, -1, self.embed_dim) + self.pos_embed[:, 1:][:, None] + self.channel_embed[:, :c]
        t = t.reshape(n, -1, self.embed_dim)
        t = torch.cat([self.cls_token.expand(n, -1, -1) + self.pos_embed[:, :1], t], dim=1)
        return self.norm(self.blocks(t))

    def forward_head(self, x: torch.Tensor) -> torch.Tensor:
        return x[:, 1:].mean(1)


def vit_small_patch16_256(**kwargs) -> VisionTransformer:
    return VisionTransformer(img_size=256, patch_size=16, **kwargs)


def sincos_positional_encoding_vit(vit_backbone: VisionTransformer) -> VisionTransformer:
    vit_backbone.pos_embed = generate_2d_sincos_pos_embeddings(
        vit_backbone.embed_dim, vit_backbone.patch_embed.grid_size[0])
    return vit_backbone


def channel_agnostic_vit(vit_backbone: VisionTransformer, max_in_chans: int) -> ChannelAgnosticViT:
    return ChannelAgnosticViT(vit_backbone, max_in_chans)
