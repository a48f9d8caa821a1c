"""The blitting engine every renderer draws with: a cached background, redrawn parts, pasted texts.

A renderer draws the parts of its picture that do not change between epochs
(axes, tick labels, colour bars, sample images) once, keeps them as a background,
and per epoch draws only what changed over it. A reused renderer gives the same
PNG bytes as a fresh one.
"""

from __future__ import annotations

import hashlib
import math

import numpy as np
from matplotlib.figure import Figure
from matplotlib.text import Text

from monitor.render.glyphs import GlyphCanvas
from monitor.render.png import canvas_png

TEXT_CACHE_BYTES = 4 * 2**20  # pixels of drawn texts a renderer keeps (LRU), to paste instead of drawing


class Blitter:
    """A figure whose `dynamic` artists are redrawn over a cached background of the rest.

    Images placed by pixel (`monitor.render.panels`) are written by `paint_background(pixels)`
    once, into the background, or by `paint(pixels)` at every draw, before the dynamic artists.

    Text is most of the drawing, and most texts come back from epoch to epoch (a
    heatmap's "0.00" cells, a grid's titles), so the pixels of each drawn text are
    kept (least recently used first out, ``text_cache_bytes`` in all): a text whose
    string and colour, and the pixels under it, are those of an earlier draw is
    pasted instead of drawn. The pixels are the same either way.
    """

    def __init__(self, fig: Figure, dynamic: list, text_cache_bytes: int = TEXT_CACHE_BYTES,
                 paint_background=None, paint=None):
        self.fig = fig
        self.canvas = GlyphCanvas(fig)
        self.dynamic = [(artist, isinstance(artist, Text) and text_cache_bytes > 0) for artist in dynamic]
        self.text_cache: dict = {}
        self.text_cache_bytes = text_cache_bytes
        self._cached_bytes = 0
        self.paint = paint  # `paint(pixels)`: writes what changed into the RGBA pixels, under the texts
        for artist in dynamic:
            artist.set_animated(True)
            if isinstance(artist, Text):
                _keep_layouts(artist)
        self.canvas.draw()
        self._bare = None  # the background before `paint_background`, to paint other pixels into
        if paint_background is not None:  # `paint_background(pixels)`: pixels kept in the background
            pixels = np.asarray(self.canvas.buffer_rgba())
            self._bare = pixels.copy()
            paint_background(pixels)
        self.background = self.canvas.copy_from_bbox(fig.bbox)

    def repaint_background(self, paint_background) -> None:
        """Keep other pixels in the background (new sample images in the same places): the same
        bytes as a Blitter built anew with this `paint_background`, without drawing the figure."""
        if self._bare is None:
            raise ValueError("this Blitter was built without `paint_background`")
        pixels = np.asarray(self.canvas.buffer_rgba())
        pixels[...] = self._bare
        paint_background(pixels)
        self.background = self.canvas.copy_from_bbox(self.fig.bbox)

    def png(self) -> bytes:
        """The background with every dynamic artist drawn (or pasted) over it, as PNG."""
        self.canvas.restore_region(self.background)
        renderer = self.canvas.get_renderer()
        pixels = np.asarray(self.canvas.buffer_rgba())
        if self.paint is not None:
            self.paint(pixels)
        for artist, cached in self.dynamic:
            if cached:
                self._draw_text(artist, renderer, pixels)
            else:
                artist.draw(renderer)
        return canvas_png(self.canvas)

    def _draw_text(self, text: Text, renderer, pixels: np.ndarray) -> None:
        """Draw ``text``, or paste its pixels from an earlier draw over the same pixels."""
        string = text.get_text()
        if not string.strip() or not text.get_visible():
            text.draw(renderer)
            return
        box = text.get_window_extent(renderer)
        height, width = pixels.shape[:2]
        x0, x1 = max(int(box.x0) - 2, 0), min(int(math.ceil(box.x1)) + 2, width)
        r0, r1 = max(height - int(math.ceil(box.y1)) - 2, 0), min(height - int(box.y0) + 2, height)
        region = pixels[r0:r1, x0:x1]
        if region.nbytes == 0 or region.nbytes > self.text_cache_bytes // 64:  # titles change anyway
            text.draw(renderer)
            return
        key = (id(text), string, str(text.get_color()), r0, x0, region.shape,
               hashlib.blake2b(region.tobytes(), digest_size=16).digest())
        patch = self.text_cache.pop(key, None)
        if patch is None:
            text.draw(renderer)
            patch = region.copy()
            self._cached_bytes += patch.nbytes
            while self._cached_bytes > self.text_cache_bytes:
                self._cached_bytes -= self.text_cache.pop(next(iter(self.text_cache))).nbytes
        else:
            region[...] = patch
        self.text_cache[key] = patch  # most recently used last


_LAYOUTS_PER_TEXT = 256


def _keep_layouts(text: Text) -> None:
    """Keep `text`'s layouts per string and style. matplotlib lays a text out again at each draw
    and each extent asked (about 0.3 ms: font lookup, metrics, alignment), though the layout
    depends on neither the text's position nor its colour; a dynamic text is drawn every epoch,
    with strings that come back. Texts that wrap (position-dependent) are laid out every time."""
    lay_out = text._get_layout
    kept: dict = {}

    def layout(renderer):
        if text.get_wrap() or text.get_transform_rotates_text():
            return lay_out(renderer)
        key = (text.get_text(), hash(text.get_fontproperties()), text.get_figure(root=True).dpi,
               text.get_usetex(), text.get_parse_math(), text._linespacing, text._get_multialignment(),
               text.get_rotation(), text.get_rotation_mode(), text.get_horizontalalignment(),
               text.get_verticalalignment())
        found = kept.get(key)
        if found is None:
            if len(kept) >= _LAYOUTS_PER_TEXT:
                kept.clear()
            found = kept[key] = lay_out(renderer)
        return found

    text._get_layout = layout
