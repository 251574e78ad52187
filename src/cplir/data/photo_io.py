"""Photos as users have them: read an image with its layout, restore the colour, write it back in that layout.

Networks see (H, W, 3) float RGB (:mod:`cplir.data.image_io`); a user's file may be greyscale, carry an alpha
channel, or have 16 bits per sample. A :class:`Photo` keeps the colour for the network together with what is
needed to give the file back as it came:

* greyscale stays greyscale: the network sees it replicated to RGB, the result is the mean of its three channels;
* alpha is kept untouched (resized only when the model changes the image size, e.g. super-resolution);
* 16 bits per sample in, 16 bits out: greyscale and colour PNG (Pillow keeps only the high byte of 16-bit colour,
  so such files are read twice, high and low bytes, and written by :func:`write_png16`), 16-bit greyscale TIFF;
  other formats and 16-bit grey+alpha PNG hold 8 bits;
* EXIF orientation is applied on reading (the result is upright and carries no orientation tag); an ICC colour
  profile is written back when the format can hold it.

A palette image comes back as RGB (or RGBA when it has transparency), CMYK and YCbCr as RGB.
"""

import os
import struct
import uuid
import zlib
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Optional, Union

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from cplir.data.image_io import IMAGE_EXTENSIONS, open_decoded
from cplir.errors import ImageReadError, ImageWriteError

PathLike = Union[str, os.PathLike]
_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_MAX = {np.dtype(np.uint8): 255.0, np.dtype(np.uint16): 65535.0}
_GREY16_MODES = ("I;16", "I;16B", "I;16L", "I;16N", "I", "F")


@dataclass(frozen=True)
class Photo:
    """An image and its layout.

    Attributes:
        rgb: (H, W, 3) float32 in [0, 1], what the network restores (greyscale replicated).
        grey: the file has one colour channel.
        alpha: (H, W) alpha in the file's own sample type, or None.
        dtype: sample type of the file (uint8, uint16) or of the array it came from (also float32 / float64).
        icc_profile: the file's ICC profile, kept for formats that can hold it.
    """

    rgb: np.ndarray
    grey: bool = False
    alpha: Optional[np.ndarray] = None
    dtype: np.dtype = np.dtype(np.uint8)
    icc_profile: Optional[bytes] = None

    @property
    def bits(self) -> int:
        return 16 if self.dtype == np.uint16 else 8

    def with_colour(self, rgb: np.ndarray) -> "Photo":
        """The same layout around restored colour (H', W', 3); the alpha is resized when the size changed."""
        alpha = self.alpha
        if alpha is not None and alpha.shape != rgb.shape[:2]:
            alpha = _resize_plane(alpha, rgb.shape[:2])
        return replace(self, rgb=np.clip(rgb, 0.0, 1.0).astype(np.float32), alpha=alpha)

    def to_array(self) -> np.ndarray:
        """Samples in the photo's layout and type: (H, W) grey, (H, W, 2) grey+alpha, (H, W, 3) RGB, (H, W, 4)."""
        colour = self.rgb.mean(axis=2, keepdims=True) if self.grey else self.rgb
        colour = _from_unit(colour, self.dtype)
        planes = colour if self.alpha is None else np.concatenate([colour, self.alpha[:, :, None]], axis=2)
        return planes[:, :, 0] if planes.shape[2] == 1 else planes


def _to_unit(samples: np.ndarray) -> np.ndarray:
    """Samples of any supported type -> float32 in [0, 1]."""
    scale = _MAX.get(samples.dtype)
    unit = samples.astype(np.float32) / scale if scale else samples.astype(np.float32)
    return np.clip(unit, 0.0, 1.0)


def _from_unit(unit: np.ndarray, dtype: np.dtype) -> np.ndarray:
    scale = _MAX.get(np.dtype(dtype))
    if scale is None:
        return unit.astype(dtype)
    return np.round(np.clip(unit, 0.0, 1.0) * scale).astype(dtype)


def _resize_plane(plane: np.ndarray, size) -> np.ndarray:
    """Bicubic resize of a 2-D plane in its own sample type (alpha of a super-resolved image)."""
    resized = F.interpolate(torch.from_numpy(_to_unit(plane))[None, None], size=tuple(size), mode="bicubic",
                            align_corners=False)[0, 0].numpy()
    return _from_unit(resized, plane.dtype)


def photo_from_array(array: np.ndarray) -> Photo:
    """A :class:`Photo` of an array (H, W), (H, W, 1|2|3|4) of uint8, uint16 or float in [0, 1]."""
    if array.dtype not in (np.uint8, np.uint16) and not np.issubdtype(array.dtype, np.floating):
        raise ImageReadError(f"expected an image array of uint8, uint16 or float in [0, 1], got {array.dtype}")
    planes = array[:, :, None] if array.ndim == 2 else array
    if planes.ndim != 3 or planes.shape[2] not in (1, 2, 3, 4) or 0 in planes.shape[:2]:
        raise ImageReadError(f"expected an image array (H, W) or (H, W, 1|2|3|4), got shape {array.shape}")
    colours = 1 if planes.shape[2] <= 2 else 3
    unit = _to_unit(planes[:, :, :colours])
    alpha = planes[:, :, colours].copy() if planes.shape[2] in (2, 4) else None
    return Photo(rgb=np.repeat(unit, 3, axis=2) if colours == 1 else unit, grey=colours == 1, alpha=alpha,
                 dtype=array.dtype)


def png_header(path: PathLike) -> Optional[tuple]:
    """(bit depth, colour type) of a PNG file's header, None for any other file."""
    with open(path, "rb") as handle:
        head = handle.read(26)
    if len(head) < 26 or not head.startswith(_PNG_SIGNATURE) or head[12:16] != b"IHDR":
        return None
    return head[24], head[25]


def read_photo(path: PathLike) -> Photo:
    """Read an image file as a :class:`Photo` (layouts: see the module docstring); raises ImageReadError."""
    path = Path(path)
    image = open_decoded(path)
    icc = image.info.get("icc_profile")
    header = png_header(path)
    if header in ((16, 2), (16, 6)):  # 16-bit colour PNG: Pillow decoded the high bytes, read the low ones too
        high = np.asarray(image).astype(np.uint16)
        samples = (high << 8) | np.asarray(open_decoded(path, low_bytes=True)).astype(np.uint16)
        return replace(photo_from_array(samples), icc_profile=icc)
    if header == (16, 4):  # 16-bit grey+alpha: Pillow decodes it to 8-bit RGBA
        return replace(photo_from_array(np.asarray(image.convert("LA"))), icc_profile=icc)
    if image.mode in _GREY16_MODES:
        grey = np.asarray(image)
        if image.mode == "F":
            grey = np.clip(grey, 0.0, 1.0) * 65535.0 + 0.5
        return replace(photo_from_array(np.clip(grey, 0, 65535).astype(np.uint16)), icc_profile=icc)
    if image.mode in ("1", "L", "LA"):
        return replace(photo_from_array(np.asarray(image.convert("L" if image.mode == "1" else image.mode))),
                       icc_profile=icc)
    has_alpha = image.mode in ("RGBA", "PA", "LA", "RGBa") or "transparency" in image.info
    try:
        converted = image.convert("RGBA" if has_alpha else "RGB")
    except ValueError as error:
        raise ImageReadError(f"cannot read image {path}: Pillow cannot convert mode {image.mode!r} to RGB "
                             f"({error}); save it as 8-bit RGB") from error
    keep_icc = icc if image.mode in ("RGB", "RGBA") else None  # a CMYK profile does not describe the RGB result
    return replace(photo_from_array(np.asarray(converted)), icc_profile=keep_icc)


def write_png16(handle, samples: np.ndarray, icc_profile: Optional[bytes] = None) -> None:
    """Write (H, W, C) uint16 samples, C = 1 grey, 2 grey+alpha, 3 RGB, 4 RGBA, as a 16-bit PNG to ``handle``.

    Each row uses PNG filter 2 ("up": the byte-wise difference to the row above), which compresses photographs
    well and is one vectorised subtraction.
    """
    h, w, c = samples.shape
    colour_type = {1: 0, 2: 4, 3: 2, 4: 6}[c]
    rows = samples.astype(">u2").reshape(h, w * c).view(np.uint8).astype(np.int16)
    filtered = np.empty((h, 1 + rows.shape[1]), dtype=np.uint8)
    filtered[:, 0] = 2
    filtered[:, 1:] = (rows - np.vstack([np.zeros_like(rows[:1]), rows[:-1]])) % 256

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    handle.write(_PNG_SIGNATURE + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 16, colour_type, 0, 0, 0)))
    if icc_profile:
        handle.write(chunk(b"iCCP", b"ICC profile\x00\x00" + zlib.compress(icc_profile)))
    handle.write(chunk(b"IDAT", zlib.compress(filtered.tobytes(), 6)) + chunk(b"IEND", b""))


_FORMATS = {".png": "PNG", ".jpg": "JPEG", ".jpeg": "JPEG", ".bmp": "BMP", ".tif": "TIFF", ".tiff": "TIFF"}


def write_photo(path: PathLike, photo: Photo, overwrite: bool = False) -> Path:
    """Write ``photo`` in its layout to ``path`` (format from the suffix), atomically, never replacing an existing
    file unless ``overwrite``. 16 bits are kept in PNG (and greyscale TIFF); JPEG cannot hold alpha."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in _FORMATS:
        raise ImageWriteError(f"cannot write {path}: unknown image type; use one of {', '.join(IMAGE_EXTENSIONS)}")
    if photo.alpha is not None and _FORMATS[suffix] == "JPEG":
        raise ImageWriteError(f"{path}: JPEG cannot store the image's alpha channel; write PNG (--ext png)")
    if path.exists() and not overwrite:
        raise ImageWriteError(f"{path} already exists; kept (pass --overwrite to replace it)")
    samples = photo.to_array()
    wide = photo.bits == 16
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    try:
        with open(temporary, "xb") as handle:
            if wide and suffix == ".png":
                write_png16(handle, samples.reshape(*samples.shape[:2], -1), photo.icc_profile)
            elif wide and photo.grey and photo.alpha is None and _FORMATS[suffix] == "TIFF":
                Image.fromarray(samples).save(handle, format="TIFF")  # mode I;16
            else:
                extra = {"quality": 95} if _FORMATS[suffix] == "JPEG" else {}
                if photo.icc_profile and _FORMATS[suffix] in ("PNG", "JPEG", "TIFF"):
                    extra["icc_profile"] = photo.icc_profile
                eight = _from_unit(_to_unit(samples), np.uint8)  # L, LA, RGB or RGBA by its shape
                Image.fromarray(eight).save(handle, format=_FORMATS[suffix], **extra)
        os.replace(temporary, path)
    except OSError as error:
        raise ImageWriteError(f"cannot write {path}: {error}") from error
    finally:
        temporary.unlink(missing_ok=True)
    return path
