"""Reading one channel of one site: PNG or TIFF (LZW too), 8 or 16 bit."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from .errors import DatasetError

_TIFF = {".tif", ".tiff"}
_PIL = {".png", ".jpg", ".jpeg", ".bmp"}


def read_image(path) -> np.ndarray:
    """One single-plane image as a 2-D array in its native dtype (uint8 or uint16)."""
    path = Path(path)
    if not path.exists():
        raise DatasetError(f"image file {path} does not exist")
    suffix = path.suffix.lower()
    try:
        if suffix in _TIFF:
            import tifffile

            img = tifffile.imread(path)
        elif suffix in _PIL:
            from PIL import Image

            with Image.open(path) as im:
                img = np.asarray(im)
        else:
            raise DatasetError(f"image file {path}: unsupported format {suffix!r} (use PNG or TIFF)")
    except DatasetError:
        raise
    except Exception as exc:  # corrupt file, missing codec, truncated download...
        raise DatasetError(f"image file {path} could not be read: {exc}") from exc
    img = np.squeeze(img)
    if img.ndim != 2:
        raise DatasetError(f"image file {path} has shape {img.shape}; expected one 2-D plane per channel")
    if img.dtype == np.int32 and img.min() >= 0 and img.max() < 65536:
        img = img.astype(np.uint16)  # Pillow opens 16-bit PNGs as int32 ("I" mode) on some versions
    if img.dtype not in (np.uint8, np.uint16):
        raise DatasetError(f"image file {path} has bit depth {img.dtype}; expected 8 or 16 bit unsigned")
    return img


def to_float(img: np.ndarray) -> np.ndarray:
    """Scale by the bit depth (not the image's own max) so intensity differences survive."""
    if img.dtype == np.uint8:
        return img.astype(np.float32) / 255.0
    if img.dtype == np.uint16:
        return img.astype(np.float32) / 65535.0
    return img.astype(np.float32)
