"""The dashboard of binary and multi-label heads in a real browser: headless chromium (selenium)
on the real `tensorboard` (default flags).

- `trained`: a tiny real Keras binary model (Dense(1, sigmoid) on flattened images, binary
  cross-entropy) fitted 2 epochs with `monitoring_callbacks(["neg", "pos"], ...)` (user's threshold
  0.5). The threshold slider's 2x2 read from the page at 0.30 and 0.70 is compared with
  scikit-learn's `confusion_matrix(y_val, model.predict(x_val)[:, 0] >= t)`.

  The tolerance, stated: the slider's counts come from the score histograms (101 buckets of width
  0.01, bucket floor(p * 100)), so at a threshold t on that grid a score is counted on the side of
  t that p * 100 (float32) falls on. Each count may therefore differ from scikit-learn's only by
  validation scores within one bucket width of t: |browser - sklearn| <= #{p in [t - 0.01,
  t + 0.01)}, and equality when there is none. (In fact only a score within float rounding of t,
  or one whose capture in `fit` and `predict` differ by float noise, can land on the other side:
  the test also checks the counts differ by no more than the scores within 1e-4 of t.) At the
  user's threshold the page shows the exact counts of the confusion summary; the same float-noise
  allowance (scores within 1e-4 of 0.5) applies to comparing them with a second `predict`.
- `live-bin`: a synthetic binary run (tests/synthetic_logs.py `BinaryLiveRun`) written while the
  page is open: the threshold chosen stays, the slider follows the new epoch.
- `ml`: a synthetic multi-label run with class names that are HTML (`MultiLabelLiveRun`), and
  `ml-bare` without co-occurrence counts: the per-label table, exact-match and Hamming accuracy,
  the co-occurrence heatmap (raw counts), no confusion matrix, names shown as text.
"""

from __future__ import annotations

import keras
import numpy as np
import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from sklearn.metrics import confusion_matrix

from callbacks.suite import close_suite, monitoring_callbacks
from monitor.dashboard.plugin import cells_array
from monitor.metrics import best_f1
from tests.browser import chromium, module_handle, wait_for
from tests.helpers import read_tags, tiny_data
from tests.synthetic_logs import BinaryLiveRun, MultiLabelLiveRun
from tests.tb_server import get_json, tensorboard

PLUGIN = "/data/plugin/training_monitor"
PAGE = "/data/plugin_entry.html?name=training_monitor"
MODULE = f"{PLUGIN}/static/index.js"
BUCKET = 0.01
NOISE = 1e-4


def _fit_binary(run_dir) -> dict:
    """Fits the model; its validation labels `y` and scores `p` (`predict`), spread over (0, 1)."""
    x, y = tiny_data(300, classes=2, seed=5)
    x += np.random.default_rng(0).normal(0.0, 0.6, x.shape).astype("float32")  # classes that overlap
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((8, 8, 3)), keras.layers.Flatten(),
                              keras.layers.Dense(1, activation="sigmoid")])
    model.compile(keras.optimizers.Adam(0.01), "binary_crossentropy")
    suite = monitoring_callbacks(["neg", "pos"], str(run_dir), tensorboard=False, prediction_grid=False)
    try:
        model.fit(x[:200], y[:200], validation_data=(x[200:], y[200:]), epochs=2, batch_size=32,
                  callbacks=suite, verbose=0)
    finally:
        close_suite(suite)
    p = model.predict(x[200:], batch_size=32, verbose=0)[:, 0]
    return {"y": y[200:], "p": p}


@pytest.fixture(scope="module")
def logs(tmp_path_factory):
    root = tmp_path_factory.mktemp("heads_browser")
    trained = _fit_binary(root / "trained")
    live = BinaryLiveRun(root / "live-bin" / "monitor", epochs=8, threshold=0.5, seed=11)
    ml = MultiLabelLiveRun(root / "ml" / "monitor", epochs=8, seed=12)
    bare = MultiLabelLiveRun(root / "ml-bare" / "monitor", epochs=2, seed=13, cooccurrence=False)
    for _ in range(3):
        live.write()
        ml.write()
    bare.write()
    yield root, {"trained": trained, "live": live, "ml": ml, "bare": bare}
    for run in (live, ml, bare):
        run.close()


@pytest.fixture(scope="module")
def base(logs, tmp_path_factory):
    def ready(url):
        steps = {r["run"]: r["last_step"] for r in get_json(url, f"{PLUGIN}/runs")["runs"]}
        return steps == {"trained/monitor": 1, "live-bin/monitor": 2, "ml/monitor": 2, "ml-bare/monitor": 0}

    with tensorboard(logs[0], tmp_path_factory.mktemp("tb") / "tb.log", ready) as url:
        yield url


@pytest.fixture(scope="module")
def driver():
    with chromium(1500, 1000) as d:
        yield d


def _open(driver, base: str, run: str) -> None:
    driver.get(base + PAGE)
    module_handle(driver, base + MODULE, "timings")
    driver.execute_script(
        "const s = document.getElementById('run');"
        "s.value = Array.from(s.options).find(o => o.text === arguments[0]).value;"
        "s.dispatchEvent(new Event('change'));", f"{run}/monitor · validation")
    wait_for(driver, "return document.querySelector('.app').dataset.run === arguments[0]", 20.0,
             f"{run}/monitor · validation")


def _set(driver, element_id: str, value: str, event: str = "input") -> None:
    driver.execute_script("const e = document.getElementById(arguments[0]); e.value = arguments[1];"
                          "e.dispatchEvent(new Event(arguments[2]));", element_id, value, event)


def _two_by_two(driver) -> dict:
    """The threshold box's 2x2 as the page shows it (its data attributes and cell texts agree)."""
    return driver.execute_script(
        "const t = document.getElementById('threshold-counts');"
        "const text = (c) => +t.querySelector(`td[data-cell=${c}] .num`).textContent;"
        "return {tp: +t.dataset.tp, fp: +t.dataset.fp, fn: +t.dataset.fn, tn: +t.dataset.tn,"
        " texts: [text('tp'), text('fp'), text('fn'), text('tn')], source: t.dataset.source,"
        " threshold: +t.dataset.threshold, epoch: +t.dataset.epoch,"
        " metrics: document.getElementById('threshold-metrics').textContent,"
        " note: document.getElementById('threshold-note').textContent}")


def _matrix_table(driver) -> np.ndarray:
    cells = driver.execute_script("return Array.from(document.querySelectorAll('#cell-values td'))"
                                  ".map(td => [+td.dataset.true, +td.dataset.pred, +td.dataset.count])")
    cm = np.zeros((2, 2), np.int64)
    for t, p, count in cells:
        cm[t, p] = count
    return cm


def _assert_near_sklearn(shown: dict, y: np.ndarray, p: np.ndarray, t: float, window: float) -> None:
    """Each of the shown counts equals sklearn's at t but for the validation scores within
    `window` of t (exactly equal when there are none)."""
    (tn, fp), (fn, tp) = confusion_matrix(y, (p >= t).astype(int), labels=[0, 1])
    expected = {"tp": tp, "fp": fp, "fn": fn, "tn": tn}
    near = int(((p >= t - window) & (p < t + window)).sum())
    for key, value in expected.items():
        assert abs(shown[key] - value) <= near, (key, shown, expected, t, near)
    if near == 0:
        assert {k: shown[k] for k in expected} == expected


def test_the_threshold_slider_recomputes_the_2x2_as_sklearn_at_that_threshold(driver, base, logs):
    y, p = logs[1]["trained"]["y"], logs[1]["trained"]["p"]
    for t in (0.3, 0.7):  # the scores spread: each threshold tried puts images on both sides
        assert 0 < (p >= t).sum() < len(p) and 0 < (p[y == 0] >= t).sum() < (y == 0).sum()
    tags = read_tags(str(logs[0] / "trained"))["monitor"]
    assert tags["training_monitor/scores/validation/epochs_001-010"] == [0, 1]
    _open(driver, base, "trained")
    wait_for(driver, "return !document.getElementById('threshold-box').hidden")
    assert driver.find_element(By.ID, "epoch-label").text == "Epoch 2 / 2"
    at_yours = _two_by_two(driver)
    assert (at_yours["source"], at_yours["threshold"], at_yours["epoch"]) == ("exact", 0.5, 1)
    _assert_near_sklearn(at_yours, y, p, 0.5, NOISE)
    assert "Exact counts at your threshold 0.5" in at_yours["note"]
    np.testing.assert_array_equal(_matrix_table(driver), [[at_yours["tn"], at_yours["fp"]],
                                                          [at_yours["fn"], at_yours["tp"]]])
    for t in (0.30, 0.70):
        _set(driver, "threshold", str(t))
        shown = _two_by_two(driver)
        assert (shown["source"], shown["threshold"], shown["epoch"]) == ("histograms", t, 1)
        assert shown["texts"] == [shown["tp"], shown["fp"], shown["fn"], shown["tn"]]
        assert sum(shown[k] for k in ("tp", "fp", "fn", "tn")) == len(y)
        _assert_near_sklearn(shown, y, p, t, BUCKET)  # the stated tolerance: one bucket width
        _assert_near_sklearn(shown, y, p, t, NOISE)  # what it comes to: float noise only
        assert "from the score histograms" in shown["note"]
        assert "within one bucket width (0.01)" in shown["note"]
        tp, fp, fn, tn = (shown[k] for k in ("tp", "fp", "fn", "tn"))
        if tp:
            assert f"Precision {tp / (tp + fp):.3f} · Recall {tp / (tp + fn):.3f}" in shown["metrics"]
        # the matrix beside it is that 2x2 too, and says where it comes from
        np.testing.assert_array_equal(_matrix_table(driver), [[tn, fp], [fn, tp]])
        assert driver.find_element(By.CSS_SELECTOR, ".panel-note").text == (
            f"At threshold {t}, from the score histograms")
    # the keyboard on the slider moves the threshold a bucket (0.01), not the epoch
    driver.find_element(By.ID, "threshold").send_keys(Keys.ARROW_RIGHT)
    shown = _two_by_two(driver)
    assert (shown["threshold"], shown["epoch"]) == (0.71, 1)
    _assert_near_sklearn(shown, y, p, 0.71, BUCKET)
    served = get_json(base, f"{PLUGIN}/matrices", run="trained/monitor", split="validation")["epochs"]
    hists = np.reshape(served[1]["scores"], (2, -1))
    threshold, f1 = best_f1(hists[1], hists[0])
    best = driver.find_element(By.ID, "threshold-best")
    assert best.text == f"Best F1 {f1:.3f} at {threshold:g}"
    best.click()
    assert _two_by_two(driver)["threshold"] == pytest.approx(threshold)
    _set(driver, "threshold", "0.7")
    _set(driver, "epoch", "0")  # another epoch: the threshold stays, its histograms are used
    shown = _two_by_two(driver)
    first = np.reshape(served[0]["scores"], (2, -1))
    assert (shown["epoch"], shown["threshold"], shown["source"]) == (0, 0.7, "histograms")
    assert (shown["tn"], shown["fp"], shown["fn"], shown["tp"]) == (
        first[0, :70].sum(), first[0, 70:].sum(), first[1, :70].sum(), first[1, 70:].sum())
    driver.find_element(By.ID, "threshold-yours").click()
    assert _two_by_two(driver)["source"] == "exact"
    cells = cells_array(served[0]["cells"])
    exact = np.zeros((2, 2), np.int64)
    exact[cells[:, 0], cells[:, 1]] = cells[:, 2]
    np.testing.assert_array_equal(_matrix_table(driver), exact)


def test_a_binary_run_followed_live_keeps_the_chosen_threshold(driver, base, logs):
    live = logs[1]["live"]
    _open(driver, base, "live-bin")
    wait_for(driver, "return document.getElementById('epoch-label').textContent === 'Epoch 3 / 3'")
    _set(driver, "threshold", "0.3")
    assert _two_by_two(driver)["epoch"] == 2
    live.write()
    wait_for(driver, "return document.getElementById('epoch-label').textContent === 'Epoch 4 / 4'", 30.0)
    shown = _two_by_two(driver)
    hists = live.hists[3]
    assert (shown["epoch"], shown["threshold"], shown["source"]) == (3, 0.3, "histograms")
    assert (shown["tn"], shown["fp"], shown["fn"], shown["tp"]) == (
        hists[0, :30].sum(), hists[0, 30:].sum(), hists[1, :30].sum(), hists[1, 30:].sum())
    labels, scores = live.scores[3]
    _assert_near_sklearn(shown, labels, scores, 0.3, BUCKET)


def _ml_table(driver) -> list[dict]:
    return driver.execute_script(
        "return Array.from(document.querySelectorAll('#ml-labels tr[data-label]')).map(r => ({"
        " label: +r.dataset.label, name: r.querySelector('th').textContent, support: +r.dataset.support,"
        " tp: +r.dataset.tp, fp: +r.dataset.fp, fn: +r.dataset.fn, tn: +r.dataset.tn,"
        " precision: +r.dataset.precision, recall: +r.dataset.recall, f1: +r.dataset.f1,"
        " texts: Array.from(r.querySelectorAll('td')).map(td => td.textContent)}))")


def _ink(driver, selector: str) -> int:
    return driver.execute_script(
        "const c = document.querySelector(arguments[0]);"
        "const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data; const seen = new Set();"
        "for (let i = 0; i < d.length; i += 16) seen.add(d[i] << 16 | d[i + 1] << 8 | d[i + 2]);"
        "return seen.size;", selector)


def _assert_ml_epoch(driver, run: MultiLabelLiveRun, epoch: int) -> None:
    counts = run.counts[epoch]
    y_true, y_pred = run.arrays[epoch]
    rows = _ml_table(driver)
    assert [r["label"] for r in rows] == list(range(len(run.names)))
    for r in rows:
        i = r["label"]
        tp, fp, fn, tn = (counts[k][i] for k in ("tp", "fp", "fn", "tn"))
        assert (r["name"], r["tp"], r["fp"], r["fn"], r["tn"]) == (run.names[i], tp, fp, fn, tn)
        assert r["support"] == tp + fn
        assert r["support"] == int(y_true[:, i].sum())
        assert r["precision"] == pytest.approx(tp / (tp + fp), abs=1e-6)
        assert r["recall"] == pytest.approx(tp / (tp + fn), abs=1e-6)
        assert r["f1"] == pytest.approx(2 * tp / (2 * tp + fp + fn), abs=1e-6)
        assert r["texts"][:5] == [str(v) for v in (tp + fn, tp, fp, fn, tn)]
    summary = driver.find_element(By.ID, "ml-summary")
    assert int(summary.get_attribute("data-epoch")) == epoch
    assert int(summary.get_attribute("data-exact")) == int((y_true == y_pred).all(axis=1).sum())
    assert int(summary.get_attribute("data-count")) == len(y_true)
    right = y_true == y_pred
    assert float(summary.get_attribute("data-hamming")) == pytest.approx(right.mean(), abs=1e-6)
    exact_share = float(summary.get_attribute("data-exact-share"))
    assert exact_share == pytest.approx(right.all(axis=1).mean(), abs=1e-6)
    assert f"Hamming accuracy {100 * (y_true == y_pred).mean():.1f}%" in summary.text


def test_a_multilabel_run_has_its_table_and_cooccurrence_and_no_confusion_matrix(driver, base, logs):
    ml = logs[1]["ml"]
    _open(driver, base, "ml")
    wait_for(driver, "return !document.getElementById('multilabel').hidden")
    single = "return document.querySelectorAll('.panels .panel, canvas.grid, #cell-values td').length"
    assert driver.execute_script(single) == 0
    assert not driver.find_element(By.ID, "view").is_displayed()  # no matrix views, values or compare
    assert not driver.find_element(By.ID, "compare-run").is_displayed()
    assert not driver.find_element(By.ID, "threshold-box").is_displayed()
    assert not driver.find_element(By.ID, "mistakes").is_displayed()
    _assert_ml_epoch(driver, ml, 2)
    _set(driver, "epoch", "0")
    _assert_ml_epoch(driver, ml, 0)
    # the co-occurrence of errors: raw counts, titled so
    canvas = driver.find_element(By.ID, "ml-cooccurrence")
    assert canvas.is_displayed() and _ink(driver, "#ml-cooccurrence") > 5
    assert int(canvas.get_attribute("data-cells")) == len(ml.counts[0]["cooccurrence"]) > 0
    assert "raw counts" in canvas.get_attribute("aria-label")
    title = driver.find_element(By.ID, "ml-cooccurrence-title").text
    assert "label missed (row) × label added (column)" in title and "not row-normalised" in title
    # names are text: the HTML ones are shown as written and nothing of them runs
    names = [r["name"] for r in _ml_table(driver)]
    assert names == ml.names
    assert driver.execute_script("return window.injected === undefined && "
                                 "document.querySelectorAll('#multilabel img, #multilabel b').length === 0")
    # sorted by F1 (ascending, then descending)
    driver.find_element(By.CSS_SELECTOR, "#ml-labels button[data-sort=f1]").click()
    f1s = [r["f1"] for r in _ml_table(driver)]
    assert f1s == sorted(f1s)
    driver.find_element(By.CSS_SELECTOR, "#ml-labels button[data-sort=f1]").click()
    assert [r["f1"] for r in _ml_table(driver)] == sorted(f1s, reverse=True)
    # followed live: a new epoch shows at the newest
    _set(driver, "epoch", "2")
    driver.find_element(By.CSS_SELECTOR, "#ml-labels button[data-sort=index]").click()
    ml.write()
    wait_for(driver, "return document.getElementById('epoch-label').textContent === 'Epoch 4 / 4'", 30.0)
    _assert_ml_epoch(driver, ml, 3)


def test_multilabel_without_cooccurrence_and_back_to_a_matrix(driver, base, logs):
    bare = logs[1]["bare"]
    _open(driver, base, "ml-bare")
    wait_for(driver, "return !document.getElementById('multilabel').hidden")
    _assert_ml_epoch(driver, bare, 0)
    assert not driver.find_element(By.ID, "ml-cooccurrence").is_displayed()
    assert "No co-occurrence counts" in driver.find_element(By.ID, "multilabel").text
    driver.execute_script(
        "const s = document.getElementById('run');"
        "s.value = Array.from(s.options).find(o => o.text === 'trained/monitor · validation').value;"
        "s.dispatchEvent(new Event('change'));")
    wait_for(driver, "return document.querySelectorAll('.panels .panel').length === 1"
             " && document.getElementById('multilabel').hidden")
    assert driver.find_element(By.ID, "view").is_displayed()
    assert _matrix_table(driver).sum() == 100
    offered = [o.text for o in driver.find_elements(By.CSS_SELECTOR, "#compare-run option")]
    assert offered == ["none", "live-bin/monitor · validation", "trained/monitor · validation"]  # no ml
