from typing import Tuple, Union

import torch
import torch.nn as nn

# package-absolute, as in the GitHub package (maes_microscopy/mae_modules.py)
from maes_microscopy.masking import transformer_random_masking
from maes_microscopy.vit import channel_agnostic_vit


class MAEEncoder(nn.Module):
    def __init__(self, vit_backbone, max_in_chans: int = 6, channel_agnostic: bool = False) -> None:
        super().__init__()
        if channel_agnostic:
            self.vit_backbone = channel_agnostic_vit(vit_backbone, max_in_chans=max_in_chans)
        else:
            self.vit_backbone = vit_backbone
        self.max_in_chans = max_in_chans
        self.channel_agnostic = channel_agnostic

    @property
    def embed_dim(self) -> int:
        return int(self.vit_backbone.embed_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.vit_backbone.forward_head(self.vit_backbone.forward_features(x))

    def forward_masked(self, x: torch.Tensor, mask_ratio: float,
                       constant_noise: Union[torch.Tensor, None] = None) -> Tuple[torch.Tensor, ...]:
        x = self.vit_backbone.forward_features(x)
        x_, mask, ind_restore = transformer_random_masking(x[:, 1:], mask_ratio, constant_noise)
        return torch.cat([x[:, :1], x_], dim=1), mask, ind_restore


class MAEDecoder(nn.Module):
    def __init__(self, embed_dim: int = 16, depth: int = 1, num_heads: int = 2, mlp_ratio: float = 2,
                 qkv_bias: bool = True, norm_layer=nn.LayerNorm) -> None:
        super().__init__()
        self.embed_dim = embed_dim
        self.pos_embeddings = None  # to be overwritten by MAE class
        self.mask_token = nn.Parameter(torch.zeros(1, 1, embed_dim))
        self.norm = norm_layer(embed_dim)


class CAMAEDecoder(nn.Module):
    def __init__(self, num_modalities: int = 6, tokens_per_modality: int = 256, embed_dim: int = 16,
                 depth: int = 1, num_heads: int = 2, mlp_ratio: float = 2, qkv_bias: bool = True,
                 norm_layer=nn.LayerNorm) -> None:
        super().__init__()
        self.num_modalities = num_modalities
        self.tokens_per_modality = tokens_per_modality
        self.embed_dim = embed_dim
        self.pos_embeddings = None  # to be overwritten by MAE class
        self.mask_token = nn.Parameter(torch.zeros(1, 1, embed_dim))
        self.modality_tokens = nn.ParameterList(
            [nn.Parameter(torch.zeros(1, 1, embed_dim)) for _ in range(num_modalities)])
        self.out_norm = norm_layer(embed_dim)
