"""Contact sheets: images pasted at their own pixels with Pillow (no resampling beyond fitting a cell), for
``cplir data preview``, where the pixels themselves are the point. Plots and figures: :mod:`cplir.analysis.figures`."""

from pathlib import Path
from typing import List, Optional

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from cplir.data.image_io import write_png


def image_grid(rows: List[List[np.ndarray]], path, column_titles: Optional[List[str]] = None,
               row_titles: Optional[List[str]] = None, cell: int = 160) -> Path:
    """Write a PNG grid of float RGB images (H, W, 3) in [0, 1], each resized to fit a ``cell`` square."""
    label_w = 110 if row_titles else 0
    label_h = 16 if column_titles else 0
    n_cols = max(len(r) for r in rows)
    canvas = Image.new("RGB", (label_w + n_cols * (cell + 4), label_h + len(rows) * (cell + 4)), "white")
    draw = ImageDraw.Draw(canvas)
    font = ImageFont.load_default()
    for c, title in enumerate(column_titles or []):
        draw.text((label_w + c * (cell + 4) + 4, 2), title, fill="black", font=font)
    for r, row in enumerate(rows):
        if row_titles:
            draw.text((4, label_h + r * (cell + 4) + cell // 2), row_titles[r], fill="black", font=font)
        for c, img in enumerate(row):
            tile = Image.fromarray((np.clip(img, 0, 1) * 255 + 0.5).astype(np.uint8))
            tile.thumbnail((cell, cell))
            canvas.paste(tile, (label_w + c * (cell + 4), label_h + r * (cell + 4)))
    write_png(path, np.asarray(canvas))
    return Path(path)
