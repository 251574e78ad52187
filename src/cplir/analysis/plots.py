"""Plots drawn with Pillow alone (no plotting library is a dependency): line curves and labelled image grids."""

from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from cplir.data.image_io import write_png

PALETTE = [(31, 119, 180), (255, 127, 14), (44, 160, 44), (214, 39, 40), (148, 103, 189), (140, 86, 75)]


def _font():
    return ImageFont.load_default()


def line_plot(series: Dict[str, Tuple[Sequence[float], Sequence[float]]], path, title: str = "",
              xlabel: str = "iteration", ylabel: str = "", size=(640, 400)) -> Path:
    """Write a PNG with one line per ``name -> (xs, ys)``; axes span the data with 5 labelled ticks."""
    w, h = size
    left, right, top, bottom = 70, 20, 30, 50
    image = Image.new("RGB", size, "white")
    draw = ImageDraw.Draw(image)
    font = _font()
    points = [(x, y) for xs, ys in series.values() for x, y in zip(xs, ys) if np.isfinite(y)]
    if not points:
        raise ValueError("line_plot needs at least one finite point")
    x0, x1 = min(p[0] for p in points), max(p[0] for p in points)
    y0, y1 = min(p[1] for p in points), max(p[1] for p in points)
    x1, y1 = (x1 if x1 > x0 else x0 + 1), (y1 if y1 > y0 else y0 + abs(y0) * 0.1 + 1e-6)

    def to_px(x, y):
        return (left + (x - x0) / (x1 - x0) * (w - left - right), top + (y1 - y) / (y1 - y0) * (h - top - bottom))

    draw.rectangle([left, top, w - right, h - bottom], outline="black")
    for i in range(5):
        fx, fy = x0 + (x1 - x0) * i / 4, y0 + (y1 - y0) * i / 4
        px, _ = to_px(fx, y0)
        _, py = to_px(x0, fy)
        draw.line([px, h - bottom, px, h - bottom + 4], fill="black")
        draw.text((px - 12, h - bottom + 6), f"{fx:.4g}", fill="black", font=font)
        draw.line([left - 4, py, left, py], fill="black")
        draw.text((4, py - 6), f"{fy:.4g}", fill="black", font=font)
    for k, (name, (xs, ys)) in enumerate(series.items()):
        colour = PALETTE[k % len(PALETTE)]
        pts = [to_px(x, y) for x, y in zip(xs, ys) if np.isfinite(y)]
        if len(pts) > 1:
            draw.line(pts, fill=colour, width=2)
        for px, py in pts if len(pts) < 40 else []:
            draw.ellipse([px - 2, py - 2, px + 2, py + 2], fill=colour)
        draw.text((left + 8, top + 6 + 12 * k), name, fill=colour, font=font)
    draw.text((left, 8), title, fill="black", font=font)
    draw.text(((w - len(xlabel) * 6) // 2, h - 18), xlabel, fill="black", font=font)
    draw.text((4, 8), ylabel, fill="black", font=font)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    image.save(path)
    return path


def image_grid(rows: List[List[np.ndarray]], path, column_titles: Optional[List[str]] = None,
               row_titles: Optional[List[str]] = None, cell: int = 160) -> Path:
    """Write a PNG grid of float RGB images (H, W, 3) in [0, 1], each resized to fit a ``cell`` square."""
    label_w = 110 if row_titles else 0
    label_h = 16 if column_titles else 0
    n_cols = max(len(r) for r in rows)
    canvas = Image.new("RGB", (label_w + n_cols * (cell + 4), label_h + len(rows) * (cell + 4)), "white")
    draw = ImageDraw.Draw(canvas)
    font = _font()
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
