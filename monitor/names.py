"""Class names as the suite takes them: strings, each non-empty and distinct (after whitespace is
stripped, so that no two rows of a matrix read the same), checked once when the suite is built.

Names are otherwise free: markup, control characters and any script are data, shown as text
everywhere (the dashboard sets them as text, report.html escapes them, the markdown summaries
escape them: `markdown_text`, the pictures draw them).
"""

from __future__ import annotations

from collections.abc import Iterable

_SHOWN = 8  # offending entries named in a message


def check_class_names(class_names, minimum: int = 1) -> list[str]:
    """`class_names` as a list of str; ValueError, in Keras' style, naming every offending entry
    (not a string, empty, duplicate) and the count when fewer than `minimum`."""
    if isinstance(class_names, str | bytes) or not isinstance(class_names, Iterable):
        raise ValueError("Invalid value for argument `class_names`: expected a list of strings. "
                         f"Received: class_names={_short(class_names)}")
    names = list(class_names)
    problems = _problems(names)
    if len(names) < minimum:
        given = f"{len(names)} name{'s' if len(names) != 1 else ''}"
        problems.insert(0, f"{given} given, at least {minimum} needed")
    if problems:
        raise ValueError(f"Invalid value for argument `class_names`: {'; '.join(problems)}. Each class "
                         f"needs a distinct, non-empty string. Received: class_names={_short(names)}")
    return [str(n) for n in names]


_MARKDOWN = str.maketrans({"&": "&amp;", "<": "&lt;", ">": "&gt;", "|": "\\|", "`": "\\`", "*": "\\*",
                           "[": "\\[", "]": "\\]", "\\": "\\\\"})


def markdown_text(text: str) -> str:
    """`text` for a markdown summary (TensorBoard's Text tab) shown as the text it is: no markup,
    no table cell broken by a `|`, control characters as escapes."""
    text = "".join(ch.encode("unicode_escape").decode("ascii") if ord(ch) < 32 or ord(ch) == 127 else ch
                   for ch in str(text))
    return text.translate(_MARKDOWN)


def _problems(names: list) -> list[str]:
    not_strings = [i for i, n in enumerate(names) if not isinstance(n, str)]
    empty = [i for i, n in enumerate(names) if isinstance(n, str) and not n.strip()]
    seen: dict[str, list[int]] = {}
    for i, n in enumerate(names):
        if isinstance(n, str) and n.strip():
            seen.setdefault(n.strip(), []).append(i)
    problems = []
    if not_strings:
        problems.append("not strings: " + _entries([f"{names[i]!r} ({type(names[i]).__name__})"
                                                    for i in not_strings], not_strings))
    if empty:
        problems.append(("an empty name at " if len(empty) == 1 else "empty names at ") + _indices(empty))
    duplicates = [(name, at) for name, at in seen.items() if len(at) > 1]
    if duplicates:
        problems.append("duplicate names " + ", ".join(f"{name!r} ({_indices(at)})"
                                                       for name, at in duplicates[:_SHOWN])
                        + (f" and {len(duplicates) - _SHOWN} more" if len(duplicates) > _SHOWN else ""))
    return problems


def _indices(at: list[int]) -> str:
    shown = [str(i) for i in at[:_SHOWN]] + ([f"{len(at) - _SHOWN} more"] if len(at) > _SHOWN else [])
    listed = shown[0] if len(shown) == 1 else ", ".join(shown[:-1]) + " and " + shown[-1]
    return ("index " if len(at) == 1 else "indices ") + listed


def _entries(described: list[str], at: list[int]) -> str:
    shown = [f"{d} at index {i}" for d, i in zip(described[:_SHOWN], at, strict=False)]
    return ", ".join(shown) + (f" and {len(at) - _SHOWN} more" if len(at) > _SHOWN else "")


def _short(value) -> str:
    text = repr(value)
    return text if len(text) <= 200 else text[:197] + "..."
