import torch


def flatten_images(img: torch.Tensor, patch_size: int, channel_agnostic: bool = False) -> torch.Tensor:
    """(N, C, H, W) -> (N, L, patch_size**2 * (1 if channel_agnostic else C))."""
    n, c, h, w = img.shape
    p = patch_size
    x = img.reshape(n, c, h // p, p, w // p, p).permute(0, 1, 2, 4, 3, 5)
    if channel_agnostic:
        return x.reshape(n, c * (h // p) * (w // p), p * p)
    return x.permute(0, 2, 3, 4, 5, 1).reshape(n, (h // p) * (w // p), p * p * c)
