"""monitor.render.glyphs: text drawn through the glyph memo is matplotlib's own text, to the byte."""

from __future__ import annotations

import io

import numpy as np
import pytest
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from monitor import render
from monitor.calibration import bin_statistics, reliability
from monitor.render import glyphs
from monitor.render.explanations import ExplanationGridRenderer
from monitor.render.reliability import reliability_png


def _text_figure() -> Figure:
    """Texts of every kind the memo handles or hands back: sizes, weights, colours, alignments,
    fractional positions, rotated, mathtext, names outside Latin-1, unantialiased."""
    fig = Figure(figsize=(6.3, 4.1), dpi=80)
    rng = np.random.default_rng(0)
    strings = ["0.00", "0.87", "cat : dog (87%)", "why dog?", "épinard — naïve", "Ω≈µ", "東京", "a\nb c",
               "$\\alpha_i^2$", "  padded  ", "1,000 classes"]
    for i, s in enumerate(strings * 3):
        fig.text(rng.random() * 0.9, rng.random() * 0.9, s, fontsize=[7, 9, 13][i % 3],
                 color=["black", "white", "#d62728"][i % 3], ha=["left", "center", "right"][i % 3],
                 va=["top", "center", "baseline"][i % 3], rotation=[0, 0, 90, 0][i % 4],
                 weight="bold" if i % 5 == 0 else "normal", antialiased=i % 7 != 0,
                 bbox={"facecolor": "0.8"} if i % 6 == 0 else None)
    fig.add_subplot().set_title("an axes with ticks")
    return fig


def _png(fig: Figure, canvas_class) -> bytes:
    canvas_class(fig)
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=80)
    return buffer.getvalue()


pytestmark = pytest.mark.filterwarnings("ignore:Glyph .* missing from font")  # 東京: DejaVu has no glyph


def test_text_through_the_memo_is_the_same_pixels_as_matplotlibs() -> None:
    glyphs._glyphs.clear()
    glyphs._layouts.clear()
    plain = _png(_text_figure(), FigureCanvasAgg)
    first = _png(_text_figure(), glyphs.GlyphCanvas)  # every glyph rasterised and kept
    assert len(glyphs._glyphs) > 50 and len(glyphs._layouts) > 10  # the memo was used, not bypassed
    kept = dict(glyphs._glyphs)
    again = _png(_text_figure(), glyphs.GlyphCanvas)  # every glyph from the memo
    assert glyphs._glyphs.keys() == kept.keys()
    assert first == plain
    assert again == plain


def test_the_memos_stay_bounded(monkeypatch) -> None:
    monkeypatch.setattr(glyphs, "MAX_GLYPHS", 20)
    monkeypatch.setattr(glyphs, "MAX_LAYOUTS", 5)
    glyphs._glyphs.clear()
    glyphs._layouts.clear()
    assert _png(_text_figure(), glyphs.GlyphCanvas) == _png(_text_figure(), FigureCanvasAgg)
    assert len(glyphs._glyphs) <= 20 and len(glyphs._layouts) <= 5


def _every_picture() -> list[bytes]:
    rng = np.random.default_rng(3)
    names = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]
    cm = rng.integers(0, 40, (10, 10)) + np.diag(rng.integers(200, 900, 10))
    probs = rng.dirichlet(np.full(10, 0.3), 8)
    pred = probs.argmax(axis=1)
    images = rng.random((8, 32, 32, 3)).astype(np.float32)
    explanations = ExplanationGridRenderer(panels=3, per_row=2)
    confidence = rng.random(300)
    return [
        render.confusion_heatmap(cm, names, "epoch 3", normalized=True),
        render.confusion_heatmap(rng.integers(0, 5, (120, 120)), [f"class {i}" for i in range(120)], "e 3"),
        render.prediction_grid(images, pred, pred, probs.max(axis=1), names, "epoch 3"),
        render.probability_bars(images[:4], pred[:4], probs[:4], names, "epoch 3"),
        render.per_class_recall_bars(rng.random(200), [f"class {i}" for i in range(200)], "epoch 3"),
        explanations.render(rng.random((4, 3, 32, 32, 3)), [f"cat : dog ({i}0%)" for i in range(4)],
                            [False] * 4, [["cat", "why dog?", "where is cat?"]] * 4, "epoch 3"),
        reliability_png(reliability(**bin_statistics(confidence, confidence > rng.random(300))), "epoch 3"),
    ]


def test_every_picture_of_the_suite_is_the_same_with_and_without_the_memo(monkeypatch) -> None:
    with_memo = _every_picture()
    again = _every_picture()  # drawn from the memo
    monkeypatch.setattr(glyphs, "_SUPPORTED", False)  # matplotlib's own draw_text
    without = _every_picture()
    assert with_memo == without
    assert again == without


def test_a_dynamic_text_restyled_between_draws_is_laid_out_again() -> None:
    from monitor.render.blit import Blitter

    def picture(steps, blitter=None):
        fig = Figure(figsize=(3, 1), dpi=80)
        text = fig.text(0.5, 0.5, "", ha="center")
        blitter = Blitter(fig, [text], text_cache_bytes=0)
        out = []
        for string, size, align in steps:
            text.set_text(string)
            text.set_fontsize(size)
            text.set_horizontalalignment(align)
            out.append(blitter.png())
        return out

    steps = [("cat : dog", 9, "center"), ("cat : dog", 14, "center"), ("cat : dog", 14, "left"),
             ("cat : dog", 9, "center")]
    reused = picture(steps)
    fresh = [picture([step])[0] for step in steps]
    assert reused == fresh
    assert len(set(reused)) == 3
