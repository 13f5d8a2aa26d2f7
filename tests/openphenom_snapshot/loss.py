import torch
import torch.nn as nn


class FourierLoss(nn.Module):
    def __init__(self, use_l1_loss: bool = True, num_multimodal_modalities: int = 1) -> None:
        super().__init__()
        self.use_l1_loss = use_l1_loss
        self.num_modalities = num_multimodal_modalities

    def forward(self, input: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        diff = torch.fft.fft2(input.float()).abs() - torch.fft.fft2(target.float()).abs()
        return diff.abs() if self.use_l1_loss else diff ** 2
