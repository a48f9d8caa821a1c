"""Class names: empty, duplicate (after whitespace is stripped) or not strings are refused when the
suite is built, naming the entries; markup, control characters and other scripts are data, shown
as text in report.html and drawn in the pictures without a warning per glyph."""

from __future__ import annotations

import json
import re
import warnings

import numpy as np
import pytest

from callbacks.alarms import AlarmsCallback
from callbacks.confident_mistakes import ConfidentMistakesCallback
from callbacks.confusion_matrix import ConfusionMatrixCallback
from callbacks.per_class_metrics import PerClassMetricsCallback
from callbacks.pr_curves import PRCurvesCallback
from callbacks.prediction_grid import PredictionGridCallback
from callbacks.suite import monitoring_callbacks
from callbacks.validation_capture import ValidationCaptureCallback
from monitor.render import names as render_names
from monitor.writers import SummaryWriters

ODD = ["cat", "<img src=x onerror=\"window.injected=1\">", "a & b", "猫", "قطة", "bell\x07", "собака"]


@pytest.mark.parametrize(("names", "expected"), [
    (["cat", "dog", "", "bird"], "an empty name at index 2"),
    (["cat", " ", "dog", "\t"], "empty names at indices 1 and 3"),
    (["cat", "dog", "bird", "cat", "fish", "cat"], "duplicate names 'cat' (indices 0, 3 and 5)"),
    (["cat", "dog", " cat", "dog "], "duplicate names 'cat' (indices 0 and 2), 'dog' (indices 1 and 3)"),
    (["cat", 3, None], "not strings: 3 (int) at index 1, None (NoneType) at index 2"),
    (["cat"], "1 name given, at least 2 needed"),
    ("cat dog", "expected a list of strings"),
])
def test_bad_class_names_are_refused_when_the_suite_is_built(tmp_path, names, expected):
    with pytest.raises(ValueError) as raised:
        monitoring_callbacks(names, str(tmp_path))
    message = str(raised.value)
    assert message.startswith("Invalid value for argument `class_names`: ") and expected in message
    assert "Received: class_names=" in message and "\n" not in message
    assert not list(tmp_path.iterdir())  # nothing written


def test_each_callback_that_takes_class_names_refuses_them_too(tmp_path):
    capture = ValidationCaptureCallback(3)
    writers = SummaryWriters(str(tmp_path))
    for make in (ConfusionMatrixCallback, PerClassMetricsCallback, PredictionGridCallback,
                 ConfidentMistakesCallback, PRCurvesCallback, AlarmsCallback):
        with pytest.raises(ValueError, match=re.escape("duplicate names 'dog' (indices 1 and 2)")):
            make(capture, writers, ["cat", "dog", "dog "])


def test_odd_names_are_accepted_as_they_are():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", render_names.MissingGlyphWarning)  # the pictures' business
        suite = monitoring_callbacks(ODD, "unused", tensorboard=False)
    assert next(c for c in suite if isinstance(c, ConfusionMatrixCallback)).class_names == ODD
    assert monitoring_callbacks(np.array(["a", "b"]), "unused", tensorboard=False)  # numpy strings too


def test_pictures_draw_odd_names_with_one_warning_at_most_and_no_glyph_warnings(monkeypatch, caplog):
    from monitor.render import confusion_heatmap, per_class_recall_bars, prediction_grid, probability_bars

    monkeypatch.setattr(render_names, "_said", set())  # as in a fresh process
    render_names._covered_by.cache_clear()
    render_names._covered_by_both.cache_clear()
    rng = np.random.default_rng(0)
    k = len(ODD)
    images, probs = rng.random((4, 8, 8, 3)), rng.dirichlet(np.ones(k), 4)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for _ in range(2):
            confusion_heatmap(rng.integers(0, 9, (k, k)), ODD, "t", normalized=True)
            per_class_recall_bars(rng.random(k), ODD, "t")
            prediction_grid(images, np.arange(4) % k, (np.arange(4) + 1) % k, probs.max(1), ODD, "t")
            probability_bars(images, np.arange(4) % k, probs, ODD, "t")
    said = [str(w.message) for w in caught]
    assert not [m for m in said if "Glyph" in m], said[:3]
    # Probing the fonts logs no "findfont: Font family ... not found" line per absent monospace font.
    assert not [r for r in caplog.records if "findfont" in r.getMessage()], caplog.records[:3]
    missing = [m for m in said if "no font of the pictures has" in m]
    assert len(missing) <= 1 and len(said) == len(missing), said
    if missing:  # this machine's fonts lack CJK (DejaVu has Arabic and Cyrillic)
        assert "猫 (U+732B)" in missing[0] and "قطة" not in missing[0]
    assert render_names.drawable("bell\x07") == "bell\\x07"
    assert render_names.drawable("<b>dog</b> & co") == "<b>dog</b> & co"


def test_report_html_shows_odd_names_as_text(tmp_path):
    from monitor.report import build_report
    from monitor.runfiles import matrices, test_confusion

    k = len(ODD)
    cm = np.eye(k, dtype=np.int64) * 5 + 1
    matrices.append(str(tmp_path), 0, ODD, cm)
    test_confusion.write(str(tmp_path), cm, ODD)
    (tmp_path / "metrics.json").write_text(json.dumps({
        "status": "completed", "flags": {"model": "simple", "epochs": 1, "classes": ODD},
        "history": {"loss": [1.0], "val_loss": [1.2]}, "epochs_run": 1}))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        page = open(build_report(str(tmp_path)), encoding="utf-8").read()
    assert not [w for w in caught if "Glyph" in str(w.message)]
    assert "<img src=x" not in page and "&lt;img src=x onerror=&quot;window.injected=1&quot;&gt;" in page
    assert "a &amp; b" in page and "猫" in page and "قطة" in page and "собака" in page


def test_markdown_summaries_show_odd_names_as_text_in_tensorboards_text_tab():
    from tensorboard import plugin_util

    from monitor.metrics import confused_pairs_markdown, per_class_markdown

    names = [*ODD, "a | b", "*bold*"]
    cm = np.eye(len(names), dtype=np.int64) * 4 + 1
    for markdown in (per_class_markdown(cm, names), confused_pairs_markdown([(names[1], names[2], 3)])):
        page = plugin_util.markdown_to_safe_html(markdown)
        assert "<img" not in page and "&lt;img src=x onerror=" in page
        assert "a &amp; b" in page
    page = plugin_util.markdown_to_safe_html(per_class_markdown(cm, names))
    assert page.count("<tr>") == len(names) + 3  # no row broken by a `|` in a name
    assert "a | b" in page and "*bold*" in page and "<em>" not in page and "bell\\x07" in page
