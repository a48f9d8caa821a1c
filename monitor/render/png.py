"""PNG bytes: a whole figure (``to_png``), an Agg canvas' pixels (``canvas_png``), a PNG's size."""

from __future__ import annotations

import io
import struct

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from PIL import Image

from monitor.render.glyphs import GlyphCanvas

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
DPI = 80


def to_png(fig: Figure, dpi: int = DPI) -> bytes:
    """Encode ``fig`` as PNG with fast zlib compression (a full draw, its text through the glyph
    memo of `monitor.render.glyphs`)."""
    if not isinstance(fig.canvas, GlyphCanvas):
        GlyphCanvas(fig)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi, pil_kwargs={"compress_level": 1})
    return buf.getvalue()


def canvas_png(canvas: FigureCanvasAgg) -> bytes:
    """The Agg canvas' current pixels as PNG."""
    width, height = canvas.get_width_height()
    image = Image.frombuffer("RGBA", (width, height), canvas.buffer_rgba(), "raw", "RGBA", 0, 1)
    buf = io.BytesIO()
    image.save(buf, format="png", compress_level=1)
    return buf.getvalue()


def png_size(png: bytes) -> tuple[int, int]:
    """``(width, height)`` of a PNG, read from its IHDR chunk."""
    if len(png) < 24 or png[:8] != PNG_SIGNATURE or png[12:16] != b"IHDR":
        raise ValueError("not a PNG")
    width, height = struct.unpack(">II", png[16:24])
    return int(width), int(height)
