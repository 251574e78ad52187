"""MiOIR JPEG compression: the DiffJPEG algorithm (MiOIR's data scripts), or Pillow's libjpeg encoder.

MiOIR makes its JPEG inputs with BasicSR's ``DiffJPEG(differentiable=False)`` (a port of mlomnitz/DiffJPEG), not
with a JPEG file. That algorithm, written out in :func:`diffjpeg`:

1. pad the image at the bottom and right with zeros to a multiple of 16;
2. RGB -> YCbCr on [0, 255] with the JFIF matrix (Y = 0.299 R + 0.587 G + 0.114 B; Cb, Cr offset by 128),
   in floating point, no rounding;
3. 4:2:0 chroma: Cb and Cr averaged over 2x2 blocks;
4. per 8x8 block, an orthonormal DCT-II of the samples minus 128;
5. quantisation ``round(coefficient / (Q · f))``, round half to even, with the ITU-T T.81 Annex K tables Q
   (luminance for Y, chrominance for Cb and Cr) as DiffJPEG stores them (transposed: the table's row index is
   paired with the horizontal frequency) and libjpeg's quality scaling ``f = 50 / q`` for q < 50, else
   ``f = 2 − q / 50``, applied to the table in floating point (libjpeg itself rounds the scaled table to integers);
6. dequantise, inverse DCT, + 128; chroma upsampled by pixel repetition; YCbCr -> RGB; clip to [0, 255];
   crop the padding; MiOIR then rounds to 8 bits.

The Pillow codec (``codec="pillow"``) encodes a real baseline JPEG (4:2:0, integer tables, libjpeg's DCT and
chroma filtering). docs/datasets.md gives the measured difference between the two.
"""

from __future__ import annotations

import io

import numpy as np
from PIL import Image

from cplir.data.degradations._common import check_image, check_number, check_rng, draw_uniform, to_uint8

JPEG_QUALITY = {"id": (30.0, 70.0), "ood": (10.0, 30.0)}
JPEG_CODECS = ("diffjpeg", "pillow")

# ITU-T T.81 Annex K, Tables K.1 (luminance) and K.2 (chrominance), rows as printed in the standard.
ANNEX_K_LUMINANCE = np.array([
    [16, 11, 10, 16, 24, 40, 51, 61], [12, 12, 14, 19, 26, 58, 60, 55], [14, 13, 16, 24, 40, 57, 69, 56],
    [14, 17, 22, 29, 51, 87, 80, 62], [18, 22, 37, 56, 68, 109, 103, 77], [24, 35, 55, 64, 81, 104, 113, 92],
    [49, 64, 78, 87, 103, 121, 120, 101], [72, 92, 95, 98, 112, 100, 103, 99]], dtype=np.float64)
ANNEX_K_CHROMINANCE = np.full((8, 8), 99.0)
ANNEX_K_CHROMINANCE[:4, :4] = [[17, 18, 24, 47], [18, 21, 26, 66], [24, 26, 56, 99], [47, 66, 99, 99]]

RGB_TO_YCBCR = np.array([[0.299, 0.587, 0.114], [-0.168736, -0.331264, 0.5], [0.5, -0.418688, -0.081312]])
YCBCR_TO_RGB = np.array([[1.0, 0.0, 1.402], [1.0, -0.344136, -0.714136], [1.0, 1.772, 0.0]])
_ALPHA = np.array([1 / np.sqrt(2)] + [1.0] * 7)
# Orthonormal DCT-II matrix: coefficients = D @ block @ D.T, block = D.T @ coefficients @ D.
DCT_MATRIX = 0.5 * _ALPHA[:, None] * np.cos((2 * np.arange(8)[None, :] + 1) * np.arange(8)[:, None] * np.pi / 16)


def quality_factor(quality: float) -> float:
    """libjpeg's quality scaling as a factor of the base table: 50/q below 50, else 2 − q/50."""
    return (5000.0 / quality if quality < 50 else 200.0 - 2 * quality) / 100.0


def _blocks(channel: np.ndarray) -> np.ndarray:
    """(H, W) with H, W multiples of 8 -> (H/8, W/8, 8, 8) blocks."""
    h, w = channel.shape
    return channel.reshape(h // 8, 8, w // 8, 8).transpose(0, 2, 1, 3)


def _unblocks(blocks: np.ndarray) -> np.ndarray:
    n_h, n_w = blocks.shape[:2]
    return blocks.transpose(0, 2, 1, 3).reshape(n_h * 8, n_w * 8)


def _code_channel(channel: np.ndarray, table: np.ndarray) -> np.ndarray:
    """DCT, quantise, dequantise and inverse DCT one channel (H, W) on [0, 255] (H, W multiples of 8)."""
    coefficients = DCT_MATRIX @ (_blocks(channel) - 128.0) @ DCT_MATRIX.T
    dequantised = np.rint(coefficients / table) * table
    return _unblocks(DCT_MATRIX.T @ dequantised @ DCT_MATRIX) + 128.0


def diffjpeg(img: np.ndarray, quality: float) -> np.ndarray:
    """The DiffJPEG round trip of a uint8 RGB image (H, W, 3) at ``quality``: float64 (H, W, 3) on [0, 255],
    before MiOIR's final rounding (see the module docstring for the steps)."""
    h, w = img.shape[:2]
    padded = np.pad(img.astype(np.float64), ((0, -h % 16), (0, -w % 16), (0, 0)))
    ycbcr = padded @ RGB_TO_YCBCR.T + np.array([0.0, 128.0, 128.0])
    factor = quality_factor(quality)
    luma_table, chroma_table = ANNEX_K_LUMINANCE.T * factor, ANNEX_K_CHROMINANCE.T * factor
    planes = [_code_channel(ycbcr[..., 0], luma_table)]
    for c in (1, 2):
        chroma = ycbcr[..., c].reshape(ycbcr.shape[0] // 2, 2, ycbcr.shape[1] // 2, 2).mean(axis=(1, 3))
        planes.append(np.repeat(np.repeat(_code_channel(chroma, chroma_table), 2, axis=0), 2, axis=1))
    rgb = (np.stack(planes, axis=-1) - np.array([0.0, 128.0, 128.0])) @ YCBCR_TO_RGB.T
    return np.clip(rgb, 0.0, 255.0)[:h, :w]


def _pillow_jpeg(img: np.ndarray, quality: int) -> np.ndarray:
    buffer = io.BytesIO()
    Image.fromarray(img).save(buffer, format="JPEG", quality=quality, subsampling=2)  # 2 means 4:2:0
    buffer.seek(0)
    with Image.open(buffer) as decoded:
        return np.array(decoded.convert("RGB"))


def draw_jpeg_params(rng: np.random.Generator, level: str = "id") -> dict:
    """The random parameter of :func:`jpeg_compress`: quality round(U[30, 70]) (ood: U[10, 30])."""
    return {"quality": round(draw_uniform(rng, JPEG_QUALITY, level))}


def jpeg_compress(
    img: np.ndarray, rng: np.random.Generator, *, level: str = "id", quality: int | None = None,
    codec: str = "diffjpeg",
) -> np.ndarray:
    """JPEG with 4:2:0 chroma subsampling; quality round(U[30, 70]) (ood: 10–30).

    Args:
        img: clean uint8 image (H, W, 3).
        rng: source of the quality (always drawn).
        level: ``"id"`` or ``"ood"``.
        quality: fixed quality in [1, 100] instead of the draw.
        codec: ``"diffjpeg"`` (MiOIR's DiffJPEG algorithm, :func:`diffjpeg`, rounded to 8 bits) or ``"pillow"``
            (a baseline JPEG file through Pillow's libjpeg, encoded and decoded).

    Returns:
        uint8 (H, W, 3).
    """
    img, rng = check_image(img), check_rng(rng)
    drawn = draw_jpeg_params(rng, level)["quality"]
    if quality is not None:
        check_number("quality", quality, 1, 100)
        if int(quality) != quality:
            raise ValueError(f"quality must be an integer, got {quality!r}")
    if codec not in JPEG_CODECS:
        raise ValueError(f"codec must be one of {JPEG_CODECS}, got {codec!r}")
    quality = int(drawn if quality is None else quality)
    return to_uint8(diffjpeg(img, quality)) if codec == "diffjpeg" else _pillow_jpeg(img, quality)
