"""Pictures of samples for `samples.png`: image grids, 2-D scatters, line plots.

Drawn with Pillow alone, so the command needs no plotting library.
"""

import math

import numpy as np
from PIL import Image, ImageDraw

_BACKGROUND = (255, 255, 255)
_DATA_COLOUR = (170, 170, 170)
_SAMPLE_COLOUR = (200, 30, 30)


def image_grid(images, columns=None, padding=2):
    """Tiles images into one grid picture.

    Args:
        images: `(N, H, W, C)` floats in [0, 1] with C in (1, 3).
        columns: Images per row; defaults to `ceil(sqrt(N))`.
        padding: Pixels of white between tiles.

    Returns:
        A `PIL.Image.Image`.
    """
    images = np.asarray(images, dtype="float32")
    if images.ndim != 4 or images.shape[-1] not in (1, 3):
        raise ValueError(
            f"`images` must have shape (N, H, W, 1 or 3). Received: shape {images.shape}"
        )
    n, h, w, c = images.shape
    columns = columns or math.ceil(math.sqrt(n))
    rows = math.ceil(n / columns)
    grid = np.ones(
        (rows * (h + padding) + padding, columns * (w + padding) + padding, c), "float32"
    )
    for i, image in enumerate(images):
        top = padding + (i // columns) * (h + padding)
        left = padding + (i % columns) * (w + padding)
        grid[top : top + h, left : left + w] = image
    pixels = (np.clip(grid, 0.0, 1.0) * 255).round().astype("uint8")
    return Image.fromarray(pixels[..., 0] if c == 1 else pixels)


def _scale(values, low, high, size, margin):
    return margin + (values - low) / max(high - low, 1e-12) * (size - 2 * margin)


def scatter(samples, reference=None, size=512, margin=16):
    """Draws 2-D samples (red) over reference data (grey).

    Args:
        samples: `(N, 2)` points.
        reference: Optional `(M, 2)` data points drawn underneath.
        size: Width and height in pixels.
        margin: Pixels kept free at each edge.

    Returns:
        A `PIL.Image.Image`.
    """
    samples = np.asarray(samples, dtype="float64")
    if samples.ndim != 2 or samples.shape[1] != 2:
        raise ValueError(f"`samples` must have shape (N, 2). Received: shape {samples.shape}")
    both = samples if reference is None else np.concatenate([samples, reference])
    finite = both[np.all(np.isfinite(both), axis=1)]
    low = np.percentile(finite, 0.5, axis=0) if len(finite) else np.zeros(2)
    high = np.percentile(finite, 99.5, axis=0) if len(finite) else np.ones(2)
    pad = 0.1 * (high - low)
    low, high = low - pad, high + pad
    image = Image.new("RGB", (size, size), _BACKGROUND)
    draw = ImageDraw.Draw(image)
    layers = [(samples, _SAMPLE_COLOUR)]
    if reference is not None:
        layers.insert(0, (np.asarray(reference, dtype="float64"), _DATA_COLOUR))
    for points, colour in layers:
        xs = _scale(points[:, 0], low[0], high[0], size, margin)
        ys = size - _scale(points[:, 1], low[1], high[1], size, margin)
        for x, y in zip(xs, ys):
            if np.isfinite(x) and np.isfinite(y):
                draw.ellipse((x - 1.5, y - 1.5, x + 1.5, y + 1.5), fill=colour)
    return image


def line_plot(sequences, width=640, height=360, margin=16):
    """Draws each row of `(N, T)` values as a line, stacked in one frame.

    Args:
        sequences: `(N, T)` or `(N, T, 1)` values.
        width: Width in pixels.
        height: Height in pixels.
        margin: Pixels kept free at each edge.

    Returns:
        A `PIL.Image.Image`.
    """
    sequences = np.asarray(sequences, dtype="float64")
    if sequences.ndim == 3 and sequences.shape[-1] == 1:
        sequences = sequences[..., 0]
    if sequences.ndim != 2:
        raise ValueError(
            f"`sequences` must have shape (N, T). Received: shape {sequences.shape}"
        )
    image = Image.new("RGB", (width, height), _BACKGROUND)
    draw = ImageDraw.Draw(image)
    low, high = np.nanmin(sequences), np.nanmax(sequences)
    xs = _scale(np.arange(sequences.shape[1]), 0, max(sequences.shape[1] - 1, 1), width, margin)
    for i, row in enumerate(sequences):
        ys = height - _scale(row, low, high, height, margin)
        shade = int(200 * i / max(len(sequences) - 1, 1))
        draw.line(list(zip(xs, ys)), fill=(shade, 40, 200 - shade), width=2)
    return image
