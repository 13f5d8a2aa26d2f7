"""Reading one channel of one site: PNG or TIFF (LZW too), 8 or 16 bit.

Besides a file, an image may be a *member* of a container, written ``CONTAINER::KEY``:
* ``shard.parquet::KEY``: the row whose ``__key__`` is KEY in a WebDataset-style parquet shard
  (RxRx3-core); its image column holds the encoded bytes (JPEG-2000, PNG, TIFF or JPEG, told
  apart by content, decoded with imagecodecs);
* ``store.zarr/array::I,J``: the 2-D plane ``array[I, J]`` of a Zarr (or OME-Zarr) array.
Members are read lazily: nothing is extracted or copied.
"""
from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import numpy as np

from .errors import DatasetError

_TIFF = {".tif", ".tiff"}
_PIL = {".png", ".jpg", ".jpeg", ".bmp"}
REF_SEP = "::"


def split_ref(path) -> tuple[str, str | None]:
    """``'a/shard.parquet::k'`` -> ``('a/shard.parquet', 'k')``; a plain path -> ``(path, None)``."""
    text = str(path)
    if REF_SEP in text:
        container, key = text.split(REF_SEP, 1)
        return container, key
    return text, None


def decode_image_bytes(data: bytes, where: str) -> np.ndarray:
    """Decode encoded image bytes by their magic number (not by a file name)."""
    import imagecodecs

    head = bytes(data[:12])
    if head.startswith(b"\x00\x00\x00\x0cjP  ") or head.startswith(b"\xff\x4f\xff\x51"):
        decode = imagecodecs.jpeg2k_decode
    elif head.startswith(b"\x89PNG"):
        decode = imagecodecs.png_decode
    elif head[:4] in (b"II*\x00", b"MM\x00*"):
        decode = imagecodecs.tiff_decode
    elif head.startswith(b"\xff\xd8\xff"):
        decode = imagecodecs.jpeg8_decode
    else:
        raise DatasetError(f"image {where}: bytes are not JPEG-2000, PNG, TIFF or JPEG (start {head[:8]!r})")
    try:
        return np.asarray(decode(bytes(data)))
    except Exception as exc:
        raise DatasetError(f"image {where} could not be decoded: {exc}") from exc


@lru_cache(maxsize=64)
def _shard_index(container: str) -> tuple[dict, str]:
    """{__key__: (row group, row)} and the image column of a parquet shard (read once per process)."""
    import pyarrow.parquet as pq

    pf = pq.ParquetFile(container)
    names = pf.schema_arrow.names
    if "__key__" not in names:
        raise DatasetError(f"parquet shard {container} has no '__key__' column (columns: {', '.join(names[:5])}...)")
    image_cols = [n for n in names if n != "__key__"]
    if not image_cols:
        raise DatasetError(f"parquet shard {container} has no image column beside '__key__'")
    index = {}
    for rg in range(pf.num_row_groups):
        keys = pf.read_row_group(rg, columns=["__key__"]).column(0).to_pylist()
        index.update({k: (rg, i) for i, k in enumerate(keys)})
    return index, image_cols[0]


@lru_cache(maxsize=4)
def _shard_row_group(container: str, rg: int, column: str):
    import pyarrow.parquet as pq

    return pq.ParquetFile(container).read_row_group(rg, columns=[column]).column(0)


@lru_cache(maxsize=16)
def _zarr_array(container: str):
    import zarr

    try:
        return zarr.open_array(container, mode="r")
    except Exception as exc:
        raise DatasetError(f"Zarr array {container} could not be opened: {exc}") from exc


def _read_member(container: str, key: str) -> np.ndarray:
    where = f"{container}{REF_SEP}{key}"
    if not Path(container).exists():
        raise DatasetError(f"image container {container} does not exist (image {where})")
    if container.lower().endswith((".parquet", ".pq")):
        index, column = _shard_index(container)
        if key not in index:
            raise DatasetError(f"parquet shard {container} has no image with __key__ {key!r}")
        rg, i = index[key]
        value = _shard_row_group(container, rg, column)[i].as_py()
        if isinstance(value, dict):  # Hugging Face Image feature: {"bytes": ..., "path": ...}
            value = value.get("bytes")
        if not isinstance(value, (bytes, bytearray)):
            raise DatasetError(f"image {where}: column {column!r} holds no image bytes")
        return decode_image_bytes(value, where)
    try:
        idx = tuple(int(k) for k in key.split(","))
    except ValueError:
        raise DatasetError(f"image {where}: a Zarr member is written as comma-separated indices, e.g. '0,1'") from None
    arr = _zarr_array(container)
    try:
        return np.asarray(arr[idx])
    except Exception as exc:
        raise DatasetError(f"image {where} could not be read from Zarr array of shape {arr.shape}: {exc}") from exc


def read_image(path) -> np.ndarray:
    """One single-plane image as a 2-D array in its native dtype (uint8 or uint16)."""
    container, key = split_ref(path)
    if key is not None:
        return _check_plane(_read_member(container, key), f"{container}{REF_SEP}{key}")
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
    return _check_plane(img, path)


def _check_plane(img: np.ndarray, path) -> np.ndarray:
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
