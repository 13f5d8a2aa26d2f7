from typing import Tuple, Union

import torch


def transformer_random_masking(
    x: torch.Tensor, mask_ratio: float, constant_noise: Union[torch.Tensor, None] = None
) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    n, length, d = x.shape
    keep = int(length * (1 - mask_ratio))
    noise = constant_noise if constant_noise is not None else torch.rand(n, length, device=x.device)
    ind_shuffle = torch.argsort(noise, dim=1)
    ind_restore = torch.argsort(ind_shuffle, dim=1)
    x_kept = torch.gather(x, 1, ind_shuffle[:, :keep].unsqueeze(-1).repeat(1, 1, d))
    mask = torch.ones(n, length, device=x.device)
    mask[:, :keep] = 0
    mask = torch.gather(mask, 1, ind_restore)
    return x_kept, mask, ind_restore
