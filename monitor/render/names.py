"""Class names cut to fit (``short_name``) and the widths each picture allows them; names made
drawable (``drawable``): a control character is written as its escape (``\\x07``), and a
character no font of the pictures has is drawn as a box "□", said once per process (one
``MissingGlyphWarning``) instead of one matplotlib warning per glyph, font and picture.

Fonts are matplotlib's, with its per-glyph fallback: a font that has the characters (Noto Sans
CJK, say), put in ``rcParams["font.sans-serif"]`` and ``["font.monospace"]``, draws them.
"""

from __future__ import annotations

import functools
import threading
import unicodedata
import warnings

NAME_WIDTH = 14  # characters of a class name under the (up to 10) probability bars
GRID_NAME_WIDTH = 11  # in grid titles, which hold two names in a 2.3-inch cell
HEATMAP_NAME_WIDTH = 24  # tick labels of the annotated heatmap (up to ANNOTATE_MAX_CLASSES)
LABEL_NAME_WIDTH = 20  # sub-matrix ticks, top-k bar names, worst-recall list
BOX = "□"
_said: set[str] = set()
_lock = threading.Lock()


class MissingGlyphWarning(UserWarning):
    """Class names hold characters that no font of the pictures has: they are drawn as boxes."""


def short_name(name: str, width: int = NAME_WIDTH) -> str:
    """``name`` made drawable and cut to at most ``width`` characters, ending in an ellipsis, when
    longer (separators left dangling before the ellipsis are dropped: "airplane…", not "airplane, …")."""
    name = drawable(str(name))
    if len(name) <= width:
        return name
    if width < 1:
        return ""
    head = name[: width - 1]
    return (head.rstrip(" ,;:-_(/") or head) + "…"


def drawable(name: str) -> str:
    """``name`` as the pictures draw it: control characters as escapes, characters the fonts lack
    as "□" (said once)."""
    covered, out, missing = _covered(), [], []
    for ch in str(name):
        if unicodedata.category(ch) == "Cc":
            out.append(ch.encode("unicode_escape").decode("ascii"))
        elif ord(ch) in covered or ch == " ":
            out.append(ch)
        else:
            out.append(BOX)
            missing.append(ch)
    if missing:
        _say_missing(missing)
    return "".join(out)


def _say_missing(chars: list[str]) -> None:
    with _lock:
        new = [c for c in dict.fromkeys(chars) if c not in _said]
        first = not _said
        _said.update(new)
    if new and first:
        shown = ", ".join(f"{c} (U+{ord(c):04X})" for c in new[:8])
        warnings.warn(f"monitor: class names hold characters no font of the pictures has ({shown}"
                      f"{', …' if len(new) > 8 else ''}): the pictures draw them as {BOX}; the dashboard "
                      "and report.html show them as text. A font that has them, added to matplotlib's "
                      "font.sans-serif and font.monospace, draws them.", MissingGlyphWarning, stacklevel=4)


@functools.lru_cache(maxsize=8)
def _covered_by(family: tuple[str, ...]) -> frozenset[int]:
    """The code points the fonts matplotlib uses for ``family`` (with its fallbacks) have."""
    from matplotlib import font_manager

    installed = {entry.name for entry in font_manager.fontManager.ttflist}
    # Families not installed are left out: matplotlib logs one "findfont: ... not found" line for each.
    present = [name for name in family if name in installed or name in font_manager.font_family_aliases]
    props = font_manager.FontProperties(family=present or ["sans-serif"])
    try:
        paths = font_manager.fontManager._find_fonts_by_props(props)  # matplotlib's fallback chain
    except AttributeError:
        paths = [font_manager.findfont(props)]
    covered: set[int] = set()
    for path in paths:
        covered.update(font_manager.get_font(path).get_charmap())
    return frozenset(covered)


def _covered() -> frozenset[int]:
    """Code points both the default family and the monospace one have (the pictures use both)."""
    from matplotlib import rcParams

    return _covered_by_both(tuple(rcParams["font.family"]), tuple(rcParams["font.monospace"]))


@functools.lru_cache(maxsize=8)
def _covered_by_both(family: tuple[str, ...], monospace: tuple[str, ...]) -> frozenset[int]:
    return _covered_by(family) & _covered_by(("monospace", *monospace))
