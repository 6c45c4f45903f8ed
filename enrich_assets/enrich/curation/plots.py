"""Small PNG plots for materialization metadata, where a person would rather look than read.

Figures use matplotlib's object API on the Agg canvas (no pyplot: no display, no global
state) and stay small (4x3 inches at 80 dpi), so metadata stays light.
"""

from __future__ import annotations

import base64
import io
from collections.abc import Sequence
from functools import cache
from typing import TYPE_CHECKING

import numpy as np
from PIL import Image

from enrich_assets.enrich.derived.clusters import NOISE
from enrich_assets.store.images import contact_sheet

if TYPE_CHECKING:  # matplotlib is imported where a plot is drawn: it costs seconds
    from matplotlib.axes import Axes
    from matplotlib.colors import Colormap
    from matplotlib.figure import Figure

FIGSIZE = (4.0, 3.0)
DPI = 80
MAP_POINTS = 10_000  # the embedding map plots at most this many keyframes
NOISE_COLOUR = "#b0b0b0"


def png_markdown(png: bytes, alt: str) -> str:
    """Markdown showing the PNG inline (what Dagster renders for `MetadataValue.md`)."""
    alt = alt.replace("[", "(").replace("]", ")")
    return f"![{alt}](data:image/png;base64,{base64.b64encode(png).decode()})"


@cache
def _palette() -> Colormap:
    import matplotlib

    return matplotlib.colormaps["tab20"]


def _axes(title: str) -> tuple[Figure, Axes]:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=FIGSIZE, dpi=DPI)
    FigureCanvasAgg(figure)
    ax = figure.add_subplot()
    ax.set_title(title, fontsize=8)
    ax.tick_params(labelsize=6)
    return figure, ax


def _figure_png(figure: Figure) -> bytes:
    buffer = io.BytesIO()
    figure.tight_layout()
    figure.savefig(buffer, format="png")
    return buffer.getvalue()


def _image_png(image: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format="PNG")
    return buffer.getvalue()


def _colour(label: int) -> str | tuple[float, ...]:
    """One colour per cluster id, the same in every plot."""
    return NOISE_COLOUR if label == NOISE else _palette()(int(label) % _palette().N)


def project_2d(embeddings: np.ndarray) -> np.ndarray:
    """(n, 2) PCA coordinates; a missing second axis (one dimension) is zero."""
    x = np.asarray(embeddings, np.float64)
    x = x - x.mean(axis=0)
    _, axes = np.linalg.eigh(x.T @ x)  # ascending eigenvalues: the last axes explain most
    coords = x @ axes[:, ::-1][:, :2]
    return np.pad(coords, ((0, 0), (0, 2 - coords.shape[1])))


def embedding_map_png(
    embeddings: np.ndarray, clusters: np.ndarray, max_points: int = MAP_POINTS, seed: int = 0
) -> bytes:
    """Keyframe embeddings (n, d) on their first two principal axes, coloured by cluster id
    (noise grey); a seeded subsample of `max_points` keeps it fast at a million rows."""
    embeddings, clusters = np.asarray(embeddings), np.asarray(clusters)
    if embeddings.ndim != 2 or len(embeddings) == 0 or len(embeddings) != len(clusters):
        raise ValueError(
            "embedding map: need (n, d) embeddings with n >= 1 and n cluster ids, got "
            f"{embeddings.shape} and {clusters.shape}"
        )
    total = len(embeddings)
    if total > max_points:
        keep = np.sort(np.random.default_rng(seed).choice(total, max_points, replace=False))
        embeddings, clusters = embeddings[keep], clusters[keep]
    coords = project_2d(embeddings)
    shown = f"{len(coords)} of {total}" if total > len(coords) else f"{total}"
    figure, ax = _axes(f"embeddings, PCA 2-D ({shown} keyframes)")
    labels = np.unique(clusters)
    for label in labels:
        at = clusters == label
        name = "noise" if label == NOISE else str(label)
        ax.scatter(*coords[at].T, s=4, color=_colour(label), label=name, linewidths=0)
    if len(labels) <= 12:
        ax.legend(fontsize=6, markerscale=2, title="cluster", title_fontsize=6)
    return _figure_png(figure)


def bar_png(
    values: np.ndarray,
    title: str,
    xlabel: str,
    colours: Sequence[str | tuple[float, ...]] | None = None,
    names: Sequence[str] | None = None,
) -> bytes:
    """Keyframes per bar, in the given order (ticks named when `names` are few enough)."""
    values = np.asarray(values)
    at = np.arange(len(values))
    figure, ax = _axes(title)
    ax.bar(at, values, color=list(colours) if colours is not None else _palette()(0))
    names = names if names is not None and len(values) <= 30 else [""] * len(values)
    ax.set_xticks(at, names)
    ax.set_xlabel(xlabel, fontsize=7)
    ax.set_ylabel("keyframes", fontsize=7)
    return _figure_png(figure)


def cluster_sizes_png(clusters: np.ndarray) -> bytes:
    """Keyframes per cluster id, largest first (noise grey)."""
    labels, counts = np.unique(np.asarray(clusters), return_counts=True)
    if len(labels) == 0:
        raise ValueError("cluster sizes: no cluster ids")
    order = np.argsort(-counts, kind="stable")
    return bar_png(
        counts[order],
        f"cluster sizes ({len(labels)} clusters)",
        "cluster",
        [_colour(labels[i]) for i in order],
        ["noise" if labels[i] == NOISE else str(labels[i]) for i in order],
    )


def histogram_png(
    values: np.ndarray,
    title: str,
    xlabel: str,
    bins: int = 30,
    value_range: tuple[float, float] | None = None,
) -> bytes:
    """A histogram of the finite values (the quality score's: value_range=(0, 1))."""
    values = np.asarray(values, np.float64)
    values = values[np.isfinite(values)]
    if len(values) == 0:
        raise ValueError(f"histogram {title!r}: no finite values")
    figure, ax = _axes(f"{title} (n={len(values)})")
    ax.hist(values, bins=bins, range=value_range, color=_palette()(0))
    ax.set_xlabel(xlabel, fontsize=7)
    ax.set_ylabel("keyframes", fontsize=7)
    return _figure_png(figure)


def duplicate_groups_png(
    groups: Sequence[Sequence[np.ndarray]], per_group: int = 4, thumb: int = 96
) -> bytes:
    """One row of thumbnails per near-duplicate group (its first `per_group` keyframes),
    rows separated by a white line."""
    if not groups or not all(groups):
        raise ValueError("duplicate groups: need at least one group, each with an image")
    rows = [contact_sheet(list(group[:per_group]), thumb, per_group) for group in groups]
    line = np.full((4, rows[0].shape[1], 3), 255, np.uint8)
    return _image_png(np.concatenate([part for row in rows for part in (row, line)][:-1]))


def search_hits_png(images: Sequence[np.ndarray], columns: int = 4, thumb: int = 96) -> bytes:
    """Search hits in rank order, left to right then down (the `search` contact sheet)."""
    if not images:
        raise ValueError("search hits: no images")
    return _image_png(contact_sheet(list(images), thumb, columns))
