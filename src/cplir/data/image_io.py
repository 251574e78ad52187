"""Reading and writing images as float RGB arrays in [0, 1] (Pillow only).

Every image becomes (H, W, 3) RGB, so networks and metrics never see another layout:

* greyscale (1, L, I;16*, I, F) is replicated to three channels; 16-bit greyscale (PNG ``I;16``, TIFF) keeps its
  precision and is scaled by 65535; 32-bit integer (``I``) is scaled by 65535 as well (that is how 16-bit PNGs
  open in older Pillow) and float (``F``) is taken as already in [0, 1]; both are clipped;
* alpha (RGBA, LA, PA, palette transparency) is **dropped**, not composited: restoration data sets store the
  scene in the colour channels, and a fixed background would invent content;
* palette, CMYK and YCbCr images are converted to RGB by Pillow;
* the EXIF orientation is applied, so phone photos come out upright.

Limitation: Pillow has no 16-bit-per-channel colour mode; it reads 48-bit RGB PNG and TIFF files at 8-bit
precision (the high byte of each sample), so those files lose up to 1/255 per value.

A missing, empty, truncated or undecodable file raises :class:`~cplir.errors.ImageReadError` naming the file.
The image is decoded fully on read, and Pillow's ``ImageFile.LOAD_TRUNCATED_IMAGES`` is left at its default
(False), so a truncated file is an error instead of a silently grey bottom half.
"""

import contextlib
import os
import struct
import uuid
from pathlib import Path
from typing import Iterator, Tuple, Union

import numpy as np
import torch
from PIL import Image, ImageOps

from cplir.errors import ImageReadError
from cplir.file_kinds import file_kind

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff")

PathLike = Union[str, os.PathLike]

# 16-bit greyscale in its byte orders, and 32-bit "I" (older Pillow opens 16-bit PNGs as "I"): all scaled by 65535.
_INTEGER_GREY_MODES = ("I;16", "I;16B", "I;16L", "I;16N", "I")

# Errors Pillow raises on malformed data: decoders report truncation as OSError, parsers as SyntaxError /
# struct.error / ValueError / EOFError (oversized images raise DecompressionBombError, reported on its own).
_DECODE_ERRORS = (OSError, SyntaxError, ValueError, EOFError, struct.error)


def is_image_file(path: PathLike) -> bool:
    """True when ``path`` has one of :data:`IMAGE_EXTENSIONS` (case-insensitive); the file is not opened."""
    return Path(path).suffix.lower() in IMAGE_EXTENSIONS


@contextlib.contextmanager
def _reading(path: Path) -> Iterator[None]:
    """The body opens ``path`` with Pillow; a missing, empty or unreadable file raises ImageReadError naming it."""
    if not path.exists():
        raise ImageReadError(f"cannot read image {path}: the file does not exist; check the path")
    if path.is_dir():
        raise ImageReadError(f"cannot read image {path}: it is a directory; pass an image file")
    if path.stat().st_size == 0:
        raise ImageReadError(f"cannot read image {path}: the file is empty (0 bytes); replace it with a valid image")
    try:
        yield
    except PermissionError:
        raise ImageReadError(f"cannot read image {path}: permission denied; make the file readable") from None
    except Image.UnidentifiedImageError:
        raise _not_an_image(path, file_kind(path)) from None
    except Image.DecompressionBombError as error:
        raise ImageReadError(
            f"cannot read image {path}: it declares more pixels than Pillow's safety limit of "
            f"{2 * Image.MAX_IMAGE_PIXELS:,} ({error}); this guards against decompression bombs: if the image is "
            "genuine, raise PIL.Image.MAX_IMAGE_PIXELS"
        ) from None
    except _DECODE_ERRORS as error:
        kind = file_kind(path)
        if not kind.endswith(" image"):  # a plugin took it for an image by a chance byte pattern
            raise _not_an_image(path, kind) from None
        raise ImageReadError(
            f"cannot read image {path}: {kind} that is damaged or truncated ({error}); re-create or re-download it"
        ) from error


def _decode_low_bytes(image: Image.Image) -> None:
    """Switch the big-endian 16-bit raw modes of an opened, not yet loaded PNG (``RGB;16B``, ``RGBA;16B``) to
    their little-endian twins, which read the other byte of each sample: the low byte of the big-endian data."""
    def swap(args):
        rawmode = args if isinstance(args, str) else args[0]
        if not rawmode.endswith(";16B"):
            raise ImageReadError(f"cannot read the low bytes of {image.filename}: raw mode {rawmode!r} is not "
                                 "16-bit big-endian colour")
        rawmode = rawmode[:-1] + "L"
        return rawmode if isinstance(args, str) else (rawmode, *args[1:])

    image.tile = [tile._replace(args=swap(tile.args)) for tile in image.tile]


def _not_an_image(path: Path, kind: str) -> ImageReadError:
    return ImageReadError(f"cannot read image {path}: it is {kind}, not an image format Pillow reads; use one of "
                          f"{', '.join(IMAGE_EXTENSIONS)}")


def open_decoded(path: Path, low_bytes: bool = False) -> Image.Image:
    """Open and fully decode ``path`` with the EXIF orientation applied, or raise ImageReadError.

    ``low_bytes``: for a 16-bit-per-sample colour PNG, decode the low byte of every sample instead of the high
    byte Pillow keeps (its colour modes are 8-bit); :mod:`cplir.data.photo_io` combines the two reads.
    """
    with _reading(path), Image.open(path) as image:
        if low_bytes:
            _decode_low_bytes(image)
        image.load()  # full decode, so a truncated file fails here rather than later
        ImageOps.exif_transpose(image, in_place=True)  # no copy when there is nothing to rotate
        return image


def image_size(path: PathLike) -> Tuple[int, int]:
    """(width, height) of an image file as stored, read from its header alone (no decoding: cheap enough to check
    every file of a test set up front); ImageReadError for a file that is not a readable image."""
    path = Path(path)
    with _reading(path), Image.open(path) as image:
        return image.size


def _to_float_rgb(image: Image.Image, path: Path) -> np.ndarray:
    """Pillow image of any supported mode -> (H, W, 3) float32 in [0, 1]."""
    if image.mode in _INTEGER_GREY_MODES:
        grey = np.asarray(image).astype(np.float32) / 65535.0
    elif image.mode == "F":
        grey = np.asarray(image, dtype=np.float32)
    elif image.mode in ("1", "L", "LA"):
        grey = np.asarray(image.convert("L"), dtype=np.float32) / 255.0
    else:
        try:
            rgb = image.convert("RGB")
        except ValueError as error:
            raise ImageReadError(
                f"cannot read image {path}: Pillow cannot convert mode {image.mode!r} to RGB ({error}); "
                "save it as 8-bit RGB"
            ) from error
        return np.asarray(rgb, dtype=np.float32) / 255.0
    return np.repeat(np.clip(grey, 0.0, 1.0)[:, :, None], 3, axis=2)


def read_image(path: PathLike) -> np.ndarray:
    """Read an image file as (H, W, 3) float32 RGB in [0, 1] (conversions: see the module docstring)."""
    path = Path(path)
    return _to_float_rgb(open_decoded(path), path)


def read_image_uint8(path: PathLike) -> np.ndarray:
    """Read an image file as (H, W, 3) uint8 RGB, rounded from :func:`read_image` (exact for 8-bit files).

    8-bit colour and palette images skip the float round trip (it is exact for them anyway): the training
    mix reads every clean image this way.
    """
    path = Path(path)
    image = open_decoded(path)
    if image.mode in ("RGB", "P", "RGBA", "CMYK", "YCbCr"):
        try:
            return np.asarray(image.convert("RGB"))
        except ValueError:  # a mode Pillow cannot convert: the general path raises the clear error
            pass
    return _quantize(_to_float_rgb(image, path))


def _quantize(image: np.ndarray) -> np.ndarray:
    """Float in [0, 1] (clipped) -> uint8, rounded to nearest."""
    return np.round(np.clip(image, 0.0, 1.0) * 255.0).astype(np.uint8)


def to_tensor(image: np.ndarray) -> torch.Tensor:
    """(H, W, 3) float in [0, 1] or uint8 -> (1, 3, H, W) float32 tensor (uint8 is divided by 255)."""
    if image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"expected an image of shape (H, W, 3), got {image.shape}")
    array = image.astype(np.float32) / 255.0 if image.dtype == np.uint8 else image.astype(np.float32)
    return torch.from_numpy(np.ascontiguousarray(array.transpose(2, 0, 1)))[None]


def to_image(tensor: torch.Tensor) -> np.ndarray:
    """(1, 3, H, W) or (3, H, W) tensor on any device -> (H, W, 3) float32 array; values are not clipped."""
    if tensor.ndim == 4 and tensor.shape[0] == 1:
        tensor = tensor[0]
    if tensor.ndim != 3 or tensor.shape[0] != 3:
        raise ValueError(f"expected a tensor of shape (1, 3, H, W) or (3, H, W), got {tuple(tensor.shape)}")
    return tensor.detach().to("cpu", torch.float32).permute(1, 2, 0).numpy()


def write_png(path: PathLike, image: Union[np.ndarray, torch.Tensor]) -> None:
    """Write ``image`` as an 8-bit PNG, creating parent folders; the file appears atomically (no half-written PNG).

    ``image``: numpy (H, W, 3) or (H, W), float in [0, 1] (clipped, rounded to 8 bits) or uint8; or a float tensor
    (3, H, W) / (1, 3, H, W) in [0, 1].
    """
    path = Path(path)
    if path.suffix.lower() != ".png":
        raise ValueError(f"write_png writes PNG files; give {path} a .png extension")
    if isinstance(image, torch.Tensor):
        image = to_image(image)
    if image.ndim not in (2, 3) or (image.ndim == 3 and image.shape[2] != 3):
        raise ValueError(f"expected an image of shape (H, W, 3) or (H, W), got {image.shape}")
    if image.dtype != np.uint8:
        if not np.issubdtype(image.dtype, np.floating):
            raise ValueError(f"expected a float image in [0, 1] or uint8, got dtype {image.dtype}")
        image = _quantize(image)
    path.parent.mkdir(parents=True, exist_ok=True)
    # A unique hidden name in the same folder, so os.replace is an atomic rename on one file system.
    temporary = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    try:
        with open(temporary, "xb") as file:
            Image.fromarray(image).save(file, format="PNG")
        os.replace(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)
