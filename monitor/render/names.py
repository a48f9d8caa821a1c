"""Class names cut to fit (``short_name``) and the widths each picture allows them."""

from __future__ import annotations

NAME_WIDTH = 14  # characters of a class name under the (up to 10) probability bars
GRID_NAME_WIDTH = 11  # in grid titles, which hold two names in a 2.3-inch cell
HEATMAP_NAME_WIDTH = 24  # tick labels of the annotated heatmap (up to ANNOTATE_MAX_CLASSES)
LABEL_NAME_WIDTH = 20  # sub-matrix ticks, top-k bar names, worst-recall list


def short_name(name: str, width: int = NAME_WIDTH) -> str:
    """``name`` cut to at most ``width`` characters, ending in an ellipsis, when longer
    (separators left dangling before the ellipsis are dropped: "airplane…", not "airplane, …")."""
    name = str(name)
    if len(name) <= width:
        return name
    if width < 1:
        return ""
    head = name[: width - 1]
    return (head.rstrip(" ,;:-_(/") or head) + "…"
