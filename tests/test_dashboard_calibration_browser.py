"""The calibration view and the alarm markers in a real browser: headless chromium (selenium) on
the real `tensorboard` (default flags).

Logs written with the dashboard's own writers (tests/synthetic_logs.py): `cal` (4 classes, 6
epochs, each epoch's calibration statistics, alerts at epochs 3 and 5, one message of epoch 5 HTML),
`cal2` (the same kinds, another seed: the compared run), `live` (written while the page is open)
and `ml` (multi-label with an alert at epoch 2: no calibration). What the page shows is read back
(the titles' text, the hidden table of the drawn bins, the chart's and markers' data attributes,
the canvas' pixels) and checked against the numbers written, the ECE computed here in Python
(`monitor.calibration.reliability`) from the same statistics.
"""

from __future__ import annotations

import pytest

from monitor.calibration import reliability
from tests.browser import chromium, module_handle, wait_for
from tests.synthetic_logs import LiveRun, MultiLabelLiveRun, alert
from tests.tb_server import get_json, tensorboard

PLUGIN = "/data/plugin/training_monitor"
PAGE = "/data/plugin_entry.html?name=training_monitor"
MODULE = f"{PLUGIN}/static/index.js"
HTML_MESSAGE = 'overfitting <img src=x onerror="window.injected=1"> & <b>co</b>'
ALERTS = {2: [alert(3, "not_learning", message="not learning: validation accuracy 0.26 at chance 0.25")],
          4: [alert(5, "not_learning", "ended", message="not learning ended: validation accuracy 0.61"),
              alert(5, "overfitting", message=HTML_MESSAGE)]}


@pytest.fixture(scope="module")
def logs(tmp_path_factory):
    root = tmp_path_factory.mktemp("calibration_browser")
    common = {"classes": 4, "mistakes": 0, "calibration": True}
    runs = {"cal": LiveRun(root / "cal" / "monitor", epochs=6, seed=1, alerts=ALERTS, **common),
            "cal2": LiveRun(root / "cal2" / "monitor", epochs=6, seed=2, **common),
            "live": LiveRun(root / "live" / "monitor", epochs=8, seed=3, **common,
                            alerts={1: [alert(2, "diverging")], 4: [alert(5, "diverging", "ended")]}),
            "ml": MultiLabelLiveRun(root / "ml" / "monitor", epochs=3, seed=4,
                                    alerts={1: [alert(2, "collapse")]})}
    for _ in range(6):
        runs["cal"].write()
        runs["cal2"].write()
    for _ in range(3):
        runs["live"].write()
        runs["ml"].write()
    yield root, runs
    for run in runs.values():
        run.close()


@pytest.fixture(scope="module")
def base(logs, tmp_path_factory):
    def ready(url):
        steps = {r["run"]: r["last_step"] for r in get_json(url, f"{PLUGIN}/runs")["runs"]}
        return steps == {"cal/monitor": 5, "cal2/monitor": 5, "live/monitor": 2, "ml/monitor": 2}

    with tensorboard(logs[0], tmp_path_factory.mktemp("tb") / "tb.log", ready) as url:
        yield url


@pytest.fixture(scope="module")
def driver():
    with chromium(1500, 1000) as d:
        yield d


def _open(driver, base: str, run: str) -> None:
    driver.get(base + PAGE)
    module_handle(driver, base + MODULE, "timings")
    _select(driver, "run", f"{run}/monitor · validation")
    wait_for(driver, "return document.querySelector('.app').dataset.run === arguments[0]", 20.0,
             f"{run}/monitor · validation")


def _select(driver, element_id: str, text: str) -> None:
    """Picks the option of `element_id` whose text is `text` (or whose value is, for the view)."""
    driver.execute_script(
        "const s = document.getElementById(arguments[0]);"
        "s.value = Array.from(s.options).find(o => [o.text, o.value].includes(arguments[1])).value;"
        "s.dispatchEvent(new Event('change'));", element_id, text)


def _set_epoch(driver, base: str, k: int) -> None:
    module_handle(driver, base + MODULE, "setEpoch", k)


def _panel(driver, suffix: str = "") -> dict:
    return driver.execute_script(
        "const s = arguments[0]; const t = document.getElementById('calibration-bins' + s);"
        "const chart = document.getElementById('ece-chart' + s);"
        "return {title: document.getElementById('calibration-title' + s).textContent, table: {...t.dataset},"
        " rows: Array.from(t.querySelectorAll('tr[data-bin]'), r => ({...r.dataset})),"
        " points: +chart.dataset.points, steps: chart.dataset.steps, current: chart.dataset.current,"
        " shown: !document.getElementById('calibration').hidden};", suffix)


def _ece_text(statistics: dict) -> str:
    return f"ECE {reliability(**statistics)['ece']:.4f} · MCE {reliability(**statistics)['mce']:.4f}"


def test_the_calibration_view_draws_the_epochs_diagram_and_the_ece_over_epochs(driver, base, logs):
    run = logs[1]["cal"]
    _open(driver, base, "cal")
    _select(driver, "view", "calibration")
    wait_for(driver, "return !document.getElementById('calibration').hidden")
    for k in (3, 0, 5):
        _set_epoch(driver, base, k)
        panel = _panel(driver)
        statistics = run.calibration[k]
        assert panel["title"] == f"cal/monitor · validation · epoch {k + 1} · {_ece_text(statistics)}"
        assert panel["table"]["epoch"] == str(k)
        assert float(panel["table"]["ece"]) == pytest.approx(reliability(**statistics)["ece"], abs=1e-12)
        assert [int(r["count"]) for r in panel["rows"]] == statistics["count"].tolist()
        expected = reliability(**statistics)
        for row, accuracy, confidence in zip(panel["rows"], expected["accuracy"], expected["confidence"],
                                             strict=True):
            assert (row["accuracy"], row["confidence"]) == (
                ("NaN", "NaN") if row["count"] == "0" else (f"{accuracy:.6f}", f"{confidence:.6f}"))
        assert (panel["points"], panel["steps"], panel["current"]) == (6, "0,1,2,3,4,5", str(k))
    colours = driver.execute_script(
        "const c = document.getElementById('reliability'); const d = c.getContext('2d')"
        ".getImageData(0, 0, c.width, c.height).data; let bar = 0, over = 0, under = 0;"
        "for (let i = 0; i < d.length; i += 4) {"
        " if (d[i] === 176 && d[i + 1] === 190 && d[i + 2] === 197) bar++;"
        " if (d[i + 3] > 100 && d[i] > d[i + 2] + 60 && d[i + 1] < 150) over++;"
        " if (d[i + 3] > 100 && d[i + 2] > d[i] + 60) under++; }"
        "return {bar, over, under, width: c.width};")
    assert colours["width"] > 200 and colours["bar"] > 500, colours
    stats = reliability(**run.calibration[5])
    gaps = (stats["accuracy"] - stats["confidence"])[stats["share"] > 0]  # red above, blue below the diagonal
    for shaded, gap in ((colours["over"], -gaps), (colours["under"], gaps)):
        assert shaded > 0 if (gap > 0.01).any() else shaded == 0 if not (gap > 0).any() else True, colours
    sidebar = driver.find_element("id", "top-confusions").text
    assert f"{reliability(**run.calibration[5])['ece']:.4f}" in sidebar


def test_compare_with_draws_the_second_runs_diagram_beside(driver, base, logs):
    _open(driver, base, "cal")
    _select(driver, "view", "calibration")
    _select(driver, "compare-run", "cal2/monitor · validation")
    wait_for(driver, "return document.querySelectorAll('.cal-panel').length === 2")
    _set_epoch(driver, base, 2)
    second = _panel(driver, "-compare")
    ece = _ece_text(logs[1]["cal2"].calibration[2])
    assert second["title"] == f"cal2/monitor · validation · epoch 3 · {ece}"
    assert second["points"] == 6 and second["current"] == "2"
    assert _panel(driver)["title"].startswith("cal/monitor · validation · epoch 3 · ECE")
    _select(driver, "view", "matrix")  # and back: the matrices, no calibration
    wait_for(driver, "return document.getElementById('calibration').hidden"
             " && document.querySelectorAll('.panels .panel').length === 2")


def _markers(driver) -> list[dict]:
    return driver.execute_script(
        "const s = document.getElementById('epoch').getBoundingClientRect();"
        "return Array.from(document.querySelectorAll('#alarm-markers .alarm-marker'), m => {"
        " const r = m.getBoundingClientRect();"
        " return {epoch: m.dataset.epoch, index: +m.dataset.index, title: m.title, kind: m.className,"
        "  x: r.left + r.width / 2 - s.left, width: s.width}; });")


def test_alarm_markers_sit_on_their_epochs_with_the_messages_as_text(driver, base, logs):
    _open(driver, base, "cal")
    wait_for(driver, "return document.querySelectorAll('#alarm-markers .alarm-marker').length === 2")
    markers = _markers(driver)
    assert [m["epoch"] for m in markers] == ["3", "5"]
    for m in markers:  # the thumb's centre at that epoch: 8 px in from each end (Chromium's 16 px thumb)
        assert m["x"] == pytest.approx(8 + (m["width"] - 16) * m["index"] / 5, abs=1.5)
    assert markers[0]["title"] == "Epoch 3: not learning: validation accuracy 0.26 at chance 0.25"
    assert markers[1]["title"] == ("Epoch 5: not learning ended: validation accuracy 0.61 (ended)\n"
                                   f"Epoch 5: {HTML_MESSAGE}")
    assert "started" in markers[0]["kind"] and "started" in markers[1]["kind"]
    _set_epoch(driver, base, 4)
    listed = driver.execute_script("return Array.from(document.querySelectorAll('#epoch-alerts li'),"
                                   " li => [li.className, li.textContent]);")
    assert listed == [["alert ended", "Epoch 5: not learning ended: validation accuracy 0.61 (ended)"],
                      ["alert started", f"Epoch 5: {HTML_MESSAGE}"]]
    assert driver.execute_script("return window.injected === undefined"
                                 " && !document.querySelector('#epoch-alerts img, #alarm-markers img')")
    _set_epoch(driver, base, 3)
    assert driver.execute_script("return document.getElementById('epoch-alerts').hidden")
    driver.find_elements("css selector", "#alarm-markers .alarm-marker")[0].click()  # picks its epoch
    wait_for(driver, "return document.getElementById('epoch-label').textContent === 'Epoch 3 / 6'")


def test_new_epochs_alerts_and_calibration_appear_live(driver, base, logs):
    live = logs[1]["live"]
    _open(driver, base, "live")
    _select(driver, "view", "calibration")
    wait_for(driver, "return document.getElementById('ece-chart').dataset.points === '3'")
    assert [m["epoch"] for m in _markers(driver)] == ["2"]
    live.write()
    live.write()  # epoch 5, with the alarm's end
    wait_for(driver, "return document.getElementById('ece-chart').dataset.points === '5'", 40.0)
    markers = _markers(driver)
    assert [(m["epoch"], "ended" in m["kind"]) for m in markers] == [("2", False), ("5", True)]
    panel = _panel(driver)  # the slider followed: the newest epoch's diagram
    assert panel["title"] == f"live/monitor · validation · epoch 5 · {_ece_text(live.calibration[4])}"


def test_a_multilabel_run_has_no_calibration_view_but_its_alarm_markers(driver, base, logs):
    _open(driver, base, "cal")
    _select(driver, "view", "calibration")
    wait_for(driver, "return !document.getElementById('calibration').hidden")
    _select(driver, "run", "ml/monitor · validation")
    wait_for(driver, "return !document.getElementById('multilabel').hidden")
    assert driver.execute_script("return document.getElementById('calibration').hidden"
                                 " && getComputedStyle(document.getElementById('view').parentElement).display"
                                 " === 'none'")
    markers = _markers(driver)
    assert [(m["epoch"], m["title"]) for m in markers] == [("2", "Epoch 2: collapse started at epoch 2")]
