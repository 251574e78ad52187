"""MiOIR JPEG compression through Pillow's encoder."""

from __future__ import annotations

import io

import numpy as np
from PIL import Image

from cplir.data.degradations._common import check_image, check_number, check_rng, draw_uniform

JPEG_QUALITY = {"id": (30.0, 70.0), "ood": (10.0, 30.0)}


def jpeg_compress(
    img: np.ndarray, rng: np.random.Generator, *, level: str = "id", quality: int | None = None
) -> np.ndarray:
    """Encode and decode as baseline JPEG with 4:2:0 chroma subsampling; quality round(U[30, 70]) (ood: 10–30).

    Args:
        img: clean uint8 image (H, W, 3).
        rng: source of the quality (always drawn).
        level: ``"id"`` or ``"ood"``.
        quality: fixed libjpeg quality in [1, 100] instead of the draw.

    Returns:
        uint8 (H, W, 3).
    """
    img, rng = check_image(img), check_rng(rng)
    drawn = round(draw_uniform(rng, JPEG_QUALITY, level))
    if quality is not None:
        check_number("quality", quality, 1, 100)
        if int(quality) != quality:
            raise ValueError(f"quality must be an integer, got {quality!r}")
    quality = int(drawn if quality is None else quality)
    buffer = io.BytesIO()
    Image.fromarray(img).save(buffer, format="JPEG", quality=quality, subsampling=2)  # 2 means 4:2:0
    buffer.seek(0)
    with Image.open(buffer) as decoded:
        return np.array(decoded.convert("RGB"))
