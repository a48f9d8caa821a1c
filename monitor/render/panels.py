"""Images pasted straight into an Agg canvas' pixels, where an axis-less `imshow` would show them.

An Axes per image costs about 4 ms to build and its image about 1 ms to draw each time; a grid of
36 images spent most of its time there. Here a picture's layout keeps one `PixelBox` per image and
each image is resized (nearest neighbour, as `imshow(..., interpolation="nearest")`) and pasted
into its box: tens of microseconds.

```python
box = fitted(figure_box(fig, (0.1, 0.5, 0.2, 0.3)), *image.shape[:2])   # aspect kept, centred
paste(np.asarray(canvas.buffer_rgba()), box, image)                       # (H, W, C) in [0, 1]
```
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
from matplotlib.figure import Figure


class PixelBox(NamedTuple):
    """A rectangle of the canvas in pixels: rows from the top, columns from the left."""

    top: int
    left: int
    height: int
    width: int

    def figure_fraction(self, fig_height: int, fig_width: int) -> tuple[float, float, float, float]:
        """`(left, bottom, right, top)` of the box in figure coordinates (0..1, y upwards)."""
        return (self.left / fig_width, 1.0 - (self.top + self.height) / fig_height,
                (self.left + self.width) / fig_width, 1.0 - self.top / fig_height)


def canvas_size(fig: Figure) -> tuple[int, int]:
    """`(height, width)` in pixels of the Agg canvas `fig` draws on."""
    width, height = fig.bbox.size
    return int(round(height)), int(round(width))


def figure_box(fig: Figure, rect: tuple[float, float, float, float]) -> PixelBox:
    """The pixels of `rect` (left, bottom, width, height in figure coordinates, as `add_axes`)."""
    height, width = canvas_size(fig)
    left, bottom, w, h = rect
    x0, x1 = int(round(left * width)), int(round((left + w) * width))
    y0, y1 = int(round((1.0 - bottom - h) * height)), int(round((1.0 - bottom) * height))
    return PixelBox(y0, x0, max(y1 - y0, 1), max(x1 - x0, 1))


def fitted(box: PixelBox, image_height: int, image_width: int) -> PixelBox:
    """The largest box of the image's aspect inside `box`, centred (an `imshow`'s equal aspect)."""
    scale = min(box.height / image_height, box.width / image_width)
    h, w = max(int(round(image_height * scale)), 1), max(int(round(image_width * scale)), 1)
    return PixelBox(box.top + (box.height - h) // 2, box.left + (box.width - w) // 2, h, w)


def to_rgb8(image: np.ndarray) -> np.ndarray:
    """An (H, W[, C]) image in [0, 1] as (H, W, 3) uint8; one channel is grey."""
    image = np.asarray(image, dtype=np.float32)
    if image.ndim == 2:
        image = image[..., None]
    image = np.repeat(image, 3, axis=-1) if image.shape[-1] == 1 else image[..., :3]
    return (np.clip(image, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)


def paste(pixels: np.ndarray, box: PixelBox, image: np.ndarray) -> None:
    """Resize `image` ((H, W[, C]) in [0, 1], or uint8 RGB) to `box` by nearest neighbour and
    write it, opaque, into `pixels` (the canvas' (rows, columns, 4) RGBA buffer)."""
    rgb = image if image.dtype == np.uint8 and image.ndim == 3 and image.shape[-1] == 3 else to_rgb8(image)
    rows = np.minimum(((np.arange(box.height) + 0.5) * rgb.shape[0] / box.height).astype(np.intp),
                      rgb.shape[0] - 1)
    cols = np.minimum(((np.arange(box.width) + 0.5) * rgb.shape[1] / box.width).astype(np.intp),
                      rgb.shape[1] - 1)
    region = pixels[box.top:box.top + box.height, box.left:box.left + box.width]  # cut at the edges
    rows, cols = rows[:region.shape[0]], cols[:region.shape[1]]
    rgba = np.empty((*rgb.shape[:2], 4), np.uint8)
    rgba[..., :3], rgba[..., 3] = rgb, 255
    region[...] = rgba.take(rows, axis=0).take(cols, axis=1)  # two 1-D gathers: 15x one 2-D gather


def paste_all(pixels: np.ndarray, boxes: list[PixelBox], images: np.ndarray) -> None:
    """`paste` each of `images` into its box (one box per image)."""
    for box, image in zip(boxes, images, strict=True):
        paste(pixels, box, image)
