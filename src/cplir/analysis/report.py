"""A self-contained HTML report that collects the PNG figures and tables of a run."""

import html
from pathlib import Path
from typing import List, Optional, Sequence, Tuple


def write_report(path, title: str, sections: Sequence[Tuple[str, List[Path], Optional[str]]],
                 notes: Sequence[str] = ()) -> Path:
    """``sections``: (heading, image paths, preformatted text or None). Images are linked relative to ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    parts = [f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>",
             "<style>body{font-family:sans-serif;max-width:1100px;margin:2em auto}img{max-width:100%;"
             "border:1px solid #ddd;margin:4px 0}pre{background:#f6f6f6;padding:8px;white-space:pre-wrap}"
             ".note{color:#a33}</style>",
             f"</head><body><h1>{html.escape(title)}</h1>"]
    parts += [f"<p class='note'>{html.escape(n)}</p>" for n in notes]
    for heading, images, text in sections:
        parts.append(f"<h2>{html.escape(heading)}</h2>")
        if text:
            parts.append(f"<pre>{html.escape(text)}</pre>")
        for image in images:
            rel = Path(image).resolve().relative_to(path.parent.resolve()).as_posix()
            parts.append(f"<div><img src='{html.escape(rel)}' alt='{html.escape(Path(image).stem)}'></div>")
    parts.append("</body></html>")
    path.write_text("\n".join(parts))
    return path
