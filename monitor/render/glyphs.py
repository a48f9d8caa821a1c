"""An Agg canvas that keeps every glyph it rasterises: text drawn again costs a copy, not FreeType.

Text is most of what the suite's pictures cost (about 3 ms a string: matplotlib lays the string
out, then FreeType rasterises each glyph), and the same strings and glyphs come back in every
picture and every epoch. `GlyphCanvas` is a `FigureCanvasAgg` whose renderer keeps

- each string's layout (the glyphs and their offsets), per font, size and resolution;
- each glyph's bitmap, per font, size, resolution and sub-pixel phase (FreeType positions a glyph
  to 1/64 of a pixel; moved by whole pixels, its bitmap is the same, moved),

and hands Agg the kept bitmap where it would have asked FreeType for it. The pixels are those of
matplotlib's own `RendererAgg.draw_text` (`tests/test_render_glyphs.py` compares every picture the
suite draws, byte for byte); only unrotated, non-mathtext text takes this path, the rest is
matplotlib's. Both memos are bounded (dropped whole when full) and belong to the drawing process.

```python
fig = Figure()
GlyphCanvas(fig)                  # before drawing: fig.canvas draws text through the memos
fig.savefig(buffer, format="png")
```

It uses two private matplotlib 3.11 methods (`FT2Font._layout`, `FT2Font._render_glyph`); where
they are missing (another matplotlib) text is drawn the ordinary way.
"""

from __future__ import annotations

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg, RendererAgg, get_hinting_flag
from matplotlib.ft2font import FT2Font, RenderMode

MAX_LAYOUTS = 20_000  # strings laid out, kept (a few hundred bytes each)
MAX_GLYPHS = 50_000  # glyph bitmaps kept (about 100 bytes each at the suite's font sizes)
_IDENTITY = np.array([[0x10000, 0], [0, 0x10000]])
_SUPPORTED = hasattr(FT2Font, "_layout") and hasattr(FT2Font, "_render_glyph")

_layouts: dict = {}
_glyphs: dict = {}


class GlyphRendererAgg(RendererAgg):
    """`RendererAgg` whose `draw_text` reuses laid-out strings and rasterised glyphs."""

    def draw_text(self, gc, x, y, s, prop, angle, ismath=False, mtext=None):
        if ismath or angle != 0 or not _SUPPORTED:
            return super().draw_text(gc, x, y, s, prop, angle, ismath=ismath, mtext=mtext)
        font = self._prepare_font(prop)
        size = prop.get_size_in_points()
        features = mtext.get_fontfeatures() if mtext is not None else None
        language = mtext.get_language() if mtext is not None else None
        flags = get_hinting_flag()
        key = (font, size, self.dpi, s, _hashable(features), _hashable(language), flags)
        items = _layouts.get(key)
        if items is None:
            items = tuple((item.ft_object, item.glyph_index, item.x, item.y)
                          for item in font._layout(s, flags=flags, features=features, language=language))
            _remember(_layouts, MAX_LAYOUTS, key, items)
        antialiased = bool(gc.get_antialiased())
        height = int(self.height)
        for ft_object, glyph_index, dx, dy in items:  # as RendererAgg._draw_text_glyphs_and_boxes at 0 deg
            tx, ty = round(0x40 * (x + dx)), round(0x40 * (self.height - y + dy))
            glyph_key = (ft_object, size, self.dpi, glyph_index, tx & 0x3F, ty & 0x3F, antialiased, flags)
            glyph = _glyphs.get(glyph_key)
            if glyph is None:
                glyph = _rasterise(ft_object, size, self.dpi, glyph_index, tx & 0x3F, ty & 0x3F,
                                   antialiased, flags)
                _remember(_glyphs, MAX_GLYPHS, glyph_key, glyph)
            buffer, left, top = glyph  # Agg's y runs down, to the bitmap's bottom
            bottom = height - (top + (ty >> 6)) + buffer.shape[0]
            self._renderer.draw_text_image(buffer, left + (tx >> 6), bottom, 0, gc)


class GlyphCanvas(FigureCanvasAgg):
    """`FigureCanvasAgg` drawing with `GlyphRendererAgg`; same pixels, text drawn once."""

    def get_renderer(self):
        w, h = self.get_width_height(physical=True)
        key = w, h, self.figure.dpi
        if self._lastKey != key:
            self.renderer = GlyphRendererAgg(w, h, self.figure.dpi)
            self._lastKey = key
        return self.renderer


def _rasterise(font, size, dpi, glyph_index, phase_x, phase_y, antialiased, flags):
    """(bitmap, left, top) of one glyph placed at the sub-pixel phase (x, y in 1/64 pixel)."""
    font.set_size(size, dpi)
    font._set_transform(_IDENTITY, [phase_x, phase_y])
    bitmap = font._render_glyph(glyph_index, flags, RenderMode.NORMAL if antialiased else RenderMode.MONO)
    buffer = bitmap.buffer
    if not antialiased:
        buffer *= 0xFF
    return buffer, bitmap.left, bitmap.top


def _remember(memo: dict, most: int, key, value) -> None:
    if len(memo) >= most:
        memo.clear()
    memo[key] = value


def _hashable(value):
    return tuple(value) if isinstance(value, list) else value
