from typing import Dict, Tuple, Union

import torch
import torch.nn as nn
from transformers import PretrainedConfig, PreTrainedModel

# relative, as in the Hugging Face snapshot (trust_remote_code needs them)
from .loss import FourierLoss
from .mae_modules import CAMAEDecoder, MAEDecoder, MAEEncoder
from .mae_utils import flatten_images
from .normalizer import Normalizer
from .vit import generate_2d_sincos_pos_embeddings, sincos_positional_encoding_vit, vit_small_patch16_256

TensorDict = Dict[str, torch.Tensor]


class MAEConfig(PretrainedConfig):
    model_type = "MAE"

    def __init__(self, mask_ratio=0.75, encoder=None, decoder=None, loss=None, optimizer=None, input_norm=None,
                 fourier_loss=None, fourier_loss_weight=0.0, lr_scheduler=None, use_MAE_weight_init=False,
                 crop_size=-1, mask_fourier_loss=True, return_channelwise_embeddings=False, **kwargs):
        super().__init__(**kwargs)
        self.mask_ratio = mask_ratio
        self.encoder = encoder
        self.decoder = decoder
        self.loss = loss
        self.optimizer = optimizer
        self.input_norm = input_norm
        self.fourier_loss = fourier_loss
        self.fourier_loss_weight = fourier_loss_weight
        self.lr_scheduler = lr_scheduler
        self.use_MAE_weight_init = use_MAE_weight_init
        self.crop_size = crop_size
        self.mask_fourier_loss = mask_fourier_loss
        self.return_channelwise_embeddings = return_channelwise_embeddings


class MAEModel(PreTrainedModel):
    config_class = MAEConfig

    def __init__(self, config: MAEConfig):
        super().__init__(config)
        self.mask_ratio = config.mask_ratio
        self.encoder = MAEEncoder(
            vit_backbone=sincos_positional_encoding_vit(vit_backbone=vit_small_patch16_256(global_pool="avg")),
            max_in_chans=11,
            channel_agnostic=True,
        )
        self.decoder = CAMAEDecoder(num_modalities=6, tokens_per_modality=256)
        self.input_norm = torch.nn.Sequential(
            Normalizer(),
            nn.InstanceNorm2d(None, affine=False, track_running_stats=False),
        )
        self.fourier_loss_weight = config.fourier_loss_weight
        self.mask_fourier_loss = config.mask_fourier_loss
        self.return_channelwise_embeddings = config.return_channelwise_embeddings
        self.tokens_per_channel = 256  # patch16 on a 256 px crop
        self.loss = torch.nn.MSELoss(reduction="none")
        self.fourier_loss = FourierLoss(num_multimodal_modalities=6)
        self.patch_size = int(self.encoder.vit_backbone.patch_embed.patch_size[0])
        self.encoder_decoder_proj = nn.Linear(self.encoder.embed_dim, self.decoder.embed_dim, bias=True)
        self.decoder_pred = nn.Linear(self.decoder.embed_dim, self.patch_size**2, bias=True)
        self.decoder.pos_embeddings = generate_2d_sincos_pos_embeddings(
            self.decoder.embed_dim,
            length=self.encoder.vit_backbone.patch_embed.grid_size[0],
            use_class_token=self.encoder.vit_backbone.cls_token is not None,
            num_modality=self.decoder.num_modalities,
        )

    def forward(self, imgs: torch.Tensor, constant_noise: Union[torch.Tensor, None] = None):
        imgs = self.input_norm(imgs)
        return self.encoder.forward_masked(imgs, self.mask_ratio, constant_noise)

    def compute_MAE_loss(self, reconstruction, img, mask):
        target = flatten_images(self.input_norm(img), self.patch_size, channel_agnostic=True)
        loss = self.loss(reconstruction, target).mean(dim=-1)
        return (loss * mask).sum() / mask.sum()

    def predict(self, imgs: torch.Tensor) -> torch.Tensor:
        imgs = self.input_norm(imgs)
        X = self.encoder.vit_backbone.forward_features(imgs)  # 3d tensor N x num_tokens x dim
        if self.return_channelwise_embeddings:
            N, _, d = X.shape
            num_channels = imgs.shape[1]
            X_reshaped = X[:, 1:, :].view(N, num_channels, self.tokens_per_channel, d)
            pooled_segments = X_reshaped.mean(dim=2)
            latent = pooled_segments.view(N, num_channels * d).contiguous()
        else:
            latent = X[:, 1:, :].mean(dim=1)  # 1 + 256 * C tokens
        return latent

    def save_pretrained(self, save_directory: str, **kwargs):
        filename = kwargs.pop("filename", "model.safetensors")
        modelpath = f"{save_directory}/{filename}"
        self.config.save_pretrained(save_directory)
        torch.save({"state_dict": self.state_dict()}, modelpath)

    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path, *model_args, **kwargs):
        filename = kwargs.pop("filename", "model.safetensors")
        modelpath = f"{pretrained_model_name_or_path}/{filename}"
        config = MAEConfig.from_pretrained(pretrained_model_name_or_path, **kwargs)
        state_dict = torch.load(modelpath, map_location="cpu")
        model = cls(config, *model_args, **kwargs)
        model.load_state_dict(state_dict["state_dict"])
        return model
