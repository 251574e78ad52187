"""The figures of reports and analyses, drawn with matplotlib's object API on the Agg canvas (headless; the
process-wide pyplot backend is left alone): curves, grouped bars, routing heat maps, image grids, residual maps.

Every function writes one PNG and returns its path.
"""

from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

DPI = 100
Series = Dict[str, Tuple[Sequence[float], Sequence[float]]]  # label -> (xs, ys)


def _figure(width: float, height: float) -> Figure:
    fig = Figure(figsize=(width, height), dpi=DPI, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def _save(fig: Figure, path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    return path


@dataclass
class Panel:
    """One chart of :func:`line_charts`: a title, a y label and its curves."""

    title: str
    ylabel: str
    series: Series = field(default_factory=dict)
    xlabel: str = "iteration"
    log_scale: bool = False  # logarithmic y axis (curves of very different sizes)


def line_charts(panels: Sequence[Panel], path, columns: int = 2) -> Path:
    """Curves, one subplot per panel (``columns`` per row), legend in each."""
    panels = [p for p in panels if p.series]
    if not panels:
        raise ValueError("line_charts needs at least one panel with a curve")
    columns = min(columns, len(panels))
    rows = -(-len(panels) // columns)
    fig = _figure(5.2 * columns, 3.4 * rows)
    for i, panel in enumerate(panels):
        ax = fig.add_subplot(rows, columns, i + 1)
        for label, (xs, ys) in panel.series.items():
            ax.plot(xs, ys, marker="o" if len(xs) < 15 else None, markersize=3, label=label)
        if panel.log_scale:
            ax.set_yscale("log")
        ax.set_title(panel.title, fontsize=10)
        ax.set_xlabel(panel.xlabel)
        ax.set_ylabel(panel.ylabel)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    return _save(fig, path)


def short_labels(labels: Sequence[str]) -> List[str]:
    """Task names for axes: the part after the last ``/`` (set names with paths are long) when still unique."""
    short = [str(label).rsplit("/", 1)[-1] for label in labels]
    return short if len(set(short)) == len(set(labels)) else [str(label) for label in labels]


def grouped_bars(categories: Sequence[str], groups: Sequence[Tuple[str, Dict[str, Sequence[float]]]], path,
                 xlabel: str = "", ylabel: str = "", limit: Optional[float] = None, limit_label: str = "") -> Path:
    """One subplot per ``(title, {series label: one value per category})`` group, bars side by side per category,
    one legend for all (the groups share their series labels); ``limit`` draws a dashed line (e.g. log2 P)."""
    n_series = max(len(series) for _, series in groups)
    longest_title = max(len(title) for title, _ in groups)  # about 0.075 inch per character at font size 10
    fig = _figure(0.6 + len(groups) * max(4.0 if len(groups) == 1 else 3.0, 0.9 + 0.22 * len(categories) * n_series,
                                          0.075 * longest_title), 3.8)
    axes = fig.subplots(1, len(groups), squeeze=False, sharey=True)[0]
    width = 0.8 / n_series
    x = np.arange(len(categories))
    names = short_labels(categories)
    slanted = max(map(len, names)) > 4
    for ax, (title, series) in zip(axes, groups):
        for j, (label, values) in enumerate(series.items()):
            ax.bar(x + (j - (len(series) - 1) / 2) * width, values, width, label=short_labels([label])[0])
        if limit is not None:
            ax.axhline(limit, color="black", linestyle="--", linewidth=1, label=limit_label or None)
        ax.set_xticks(x, names, rotation=30 if slanted else 0, ha="right" if slanted else "center", fontsize=8)
        ax.set_title(title, fontsize=10)
        ax.set_xlabel(xlabel)
        ax.grid(axis="y", alpha=0.3)
    axes[0].set_ylabel(ylabel)
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside upper center", ncols=min(len(labels), 6), fontsize=8)
    return _save(fig, path)


def routing_heatmaps(blocks: Dict[str, np.ndarray], tasks: Sequence[str], path, title: str = "") -> Path:
    """Selection maps (CPL Fig. 11): for each block an images × components heat map of the routing
    probabilities ``(N, P)``, images grouped by task (rows in the order given, tasks in first-seen order)."""
    order = list(dict.fromkeys(tasks))
    rows = [i for t in order for i, task in enumerate(tasks) if task == t]
    labels = [tasks[i] for i in rows]
    fig = _figure(2.0 + 2.4 * len(blocks), 1.5 + min(0.18 * len(rows), 9))
    image = None
    for k, (name, probs) in enumerate(blocks.items()):
        ax = fig.add_subplot(1, len(blocks), k + 1)
        image = ax.imshow(np.asarray(probs)[rows], aspect="auto", cmap="viridis", vmin=0, vmax=1,
                          interpolation="nearest")
        ax.set_title(name, fontsize=10)
        ax.set_xlabel("prompt component")
        ax.set_xticks(range(probs.shape[1]))
        starts = [labels.index(t) for t in order]
        for start in starts[1:]:
            ax.axhline(start - 0.5, color="white", linewidth=1.5)
        ends = starts[1:] + [len(labels)]
        ax.set_yticks([(s + e - 1) / 2 for s, e in zip(starts, ends)], short_labels(order) if k == 0 else [],
                      fontsize=8)
    fig.colorbar(image, ax=fig.axes, label="routing probability", shrink=0.9)
    if title:
        fig.suptitle(title, fontsize=11)
    return _save(fig, path)


def _show(ax, img: np.ndarray, title: str = "", **kwargs):
    image = ax.imshow(np.clip(img, 0, 1) if img.ndim == 3 else img, interpolation="nearest", **kwargs)
    ax.set_xticks([])
    ax.set_yticks([])
    if title:
        ax.set_title(title, fontsize=8)
    return image


def image_table(rows: Sequence[Sequence[np.ndarray]], path, column_titles: Sequence[str] = (),
                row_titles: Sequence[str] = (), cell_titles: Optional[Sequence[Sequence[str]]] = None,
                cell: float = 2.2) -> Path:
    """A grid of float RGB images (H, W, 3) in [0, 1], with column, row and per-cell titles (e.g. PSNR)."""
    n_cols = max(len(r) for r in rows)
    fig = _figure(cell * n_cols + 0.6, cell * len(rows) + 0.5)
    for r, row in enumerate(rows):
        for c, img in enumerate(row):
            ax = fig.add_subplot(len(rows), n_cols, r * n_cols + c + 1)
            title = "\n".join(t for t in ((column_titles[c] if r == 0 and c < len(column_titles) else ""),
                                          (cell_titles[r][c] if cell_titles else "")) if t)
            _show(ax, img, title)
            if c == 0 and r < len(row_titles):
                ax.set_ylabel(row_titles[r], fontsize=9)
    return _save(fig, path)


@dataclass
class ResidualCase:
    """One image of :func:`residual_figure`: the input, the ground truth, the output with the matched prompts,
    the outputs with mismatched prompts, and titles (e.g. PSNR) for each output."""

    name: str
    degraded: np.ndarray
    target: np.ndarray
    matched: np.ndarray
    matched_title: str
    mismatched: List[np.ndarray]
    mismatched_titles: List[str]


def residual_figure(cases: Sequence[ResidualCase], path, title: str = "") -> Path:
    """Residual maps (CPL Fig. 5): per image two rows, outputs on top (degraded, matched, each mismatched) and
    below them the ground truth and ``|mismatched − matched|`` (mean over channels) on one colour scale."""
    n_cols = 2 + max(len(c.mismatched) for c in cases)
    fig = _figure(2.0 * n_cols + 1.0, 4.2 * len(cases) + 0.4)
    vmax = max(float(np.abs(m - c.matched).mean(-1).max()) for c in cases for m in c.mismatched) or 1.0
    image = None
    for i, case in enumerate(cases):
        top, bottom = 2 * i * n_cols, (2 * i + 1) * n_cols

        def axis(k):
            return fig.add_subplot(2 * len(cases), n_cols, k + 1)

        _show(axis(top), case.degraded, f"{case.name}: degraded")
        _show(axis(top + 1), case.matched, case.matched_title)
        _show(axis(bottom), case.target, "ground truth")
        axis(bottom + 1).axis("off")
        for j, (out, out_title) in enumerate(zip(case.mismatched, case.mismatched_titles)):
            _show(axis(top + 2 + j), out, out_title)
            residual = np.abs(out - case.matched).mean(-1)
            image = _show(axis(bottom + 2 + j), residual, f"|difference|, max {residual.max():.3f}", cmap="magma",
                          vmin=0, vmax=vmax)
    if image is not None:
        fig.colorbar(image, ax=fig.axes, label="|mismatched − matched|", shrink=0.5)
    if title:
        fig.suptitle(title, fontsize=11)
    return _save(fig, path)
