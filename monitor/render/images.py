"""Input images as the eye expects them: the input range guessed and undone; thumbnails."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from PIL import Image

from monitor.render.png import encode_png

DisplayTransform = Callable[[np.ndarray], np.ndarray]
THUMBNAIL_PX = 128  # longest side of a mistake's thumbnail for the dashboard

# keras.applications "caffe" preprocessing: BGR order, ImageNet mean pixel subtracted, 0..255 scale
CAFFE_BGR_MEAN = np.array([103.939, 116.779, 123.68], dtype=np.float32)
RANGE_TOLERANCE = 0.02  # fraction of a range's span that values may overshoot it (resizing, rounding)
STANDARDISED_TOLERANCE = 0.1  # |mean| and |std - 1| below this read as "standardised"


def _standardised(mean: np.ndarray, std: np.ndarray) -> bool:
    tol = STANDARDISED_TOLERANCE
    return bool(np.all(np.abs(mean) < tol) and np.all(np.abs(std - 1.0) < tol))


def _to_unit_range(x: np.ndarray, finite: np.ndarray) -> np.ndarray:
    """Map a float batch (K, H, W, C) to [0, 1], deciding from the whole batch.

    In order: [0, 1] is kept; [-1, 1] is shifted; [0, 255] is divided by 255;
    keras.applications "caffe" input (BGR, mean pixel subtracted) is undone and
    turned back to RGB; anything else is stretched from its minimum to its
    maximum, per channel when each channel has zero mean and unit variance, else
    as a whole when the whole batch has (or when every channel spans the same
    range), else per channel (fixed per-channel constants, as ImageNet's).
    Limitation: a global affine map other than standardisation, of a batch whose
    channels span different ranges, is stretched per channel.
    """
    values = x[finite]
    if values.size == 0:
        return x
    lo, hi = float(values.min()), float(values.max())
    tol = RANGE_TOLERANCE
    if lo >= -tol and hi <= 1.0 + tol:
        return x
    if lo >= -1.0 - 2.0 * tol and hi <= 1.0 + 2.0 * tol:
        return (x + 1.0) / 2.0
    if 2.0 < hi <= 255.0 * (1.0 + tol) and lo >= -tol * hi:
        return x / 255.0
    channels = x.shape[-1]
    masked = np.where(finite, x, np.nan)
    c_lo = np.nanmin(masked, axis=(0, 1, 2))
    c_hi = np.nanmax(masked, axis=(0, 1, 2))
    if (channels == 3 and hi - lo > 32.0 and lo < -tol * 255.0
            and np.all(c_lo >= -CAFFE_BGR_MEAN - tol * 255.0)
            and np.all(c_hi <= 255.0 - CAFFE_BGR_MEAN + tol * 255.0)):
        return ((x + CAFFE_BGR_MEAN) / 255.0)[..., ::-1]
    span = hi - lo
    per_channel = channels > 1
    each = (np.nanmean(masked, axis=(0, 1, 2)), np.nanstd(masked, axis=(0, 1, 2)))
    if per_channel and not _standardised(*each):
        same_ranges = np.all(np.abs(c_lo - lo) <= 0.05 * span) and np.all(np.abs(c_hi - hi) <= 0.05 * span)
        per_channel = not (same_ranges or _standardised(np.float64(values.mean()), np.float64(values.std())))
    if not per_channel:
        return (x - lo) / (span if span > 0 else 1.0)
    c_span = c_hi - c_lo
    return (x - c_lo) / np.where(c_span > 0, c_span, 1.0)


def display_images(images: np.ndarray, transform: DisplayTransform | None = None) -> np.ndarray:
    """Images (K, H, W[, C]) as float32 in [0, 1], mapped as the eye expects.

    ``transform`` (yours, e.g. undoing your normalisation) wins when given: it gets
    the images and returns uint8 or floats in [0, 1]. Otherwise uint8 is divided
    by 255 and a float batch is mapped by ``_to_unit_range``, one mapping for the
    whole batch so colours agree between images. NaN and infinities show as 0.
    """
    arr = np.asarray(images if transform is None else transform(np.asarray(images)))
    if arr.ndim == 3:
        arr = arr[..., None]
    if arr.ndim != 4:
        raise ValueError(f"images must be (K, H, W, C), got {np.shape(images)}")
    if arr.dtype == np.uint8:
        return arr.astype(np.float32) / 255.0
    out = arr.astype(np.float32)
    finite = np.isfinite(out)
    if transform is None and out.size:
        out = _to_unit_range(out, finite)
    return np.clip(np.where(finite, out, 0.0), 0.0, 1.0).astype(np.float32)


def thumbnail_pngs(images: np.ndarray | None, count: int,
                   transform: DisplayTransform | None = None) -> list[bytes]:
    """PNG bytes of the first `count` images, as the grids show them, at most THUMBNAIL_PX a side
    (b"" each when there are no images)."""
    if images is None or count == 0:
        return [b""] * count
    pixels = (display_images(images[:count], transform) * 255.0 + 0.5).astype(np.uint8)
    out = []
    for image in pixels:
        picture = Image.fromarray(image[..., 0] if image.shape[-1] == 1 else image)
        picture.thumbnail((THUMBNAIL_PX, THUMBNAIL_PX))
        out.append(encode_png(np.asarray(picture)))
    return out
