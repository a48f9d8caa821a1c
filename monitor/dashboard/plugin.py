"""`TrainingMonitorPlugin`: the confusion-matrix dashboard, served by plain `tensorboard`.

Registered through the `tensorboard_plugins` entry point (`pip install -e .`). Reads only
through `context.data_provider`, so it works with TensorBoard's Python loader, its Rust data
server, and any other backend. Routes (under `/data/plugin/training_monitor/`):

- `static/<file>`: the frontend, plain ES modules and CSS from this package (`static/index.js`
  is the entry point, so its relative imports resolve to `static/` too);
- `runs`: `{"runs": [{"run", "split", "head", "binary", "classes", "epochs", "last_step",
  "last_wall_time", "mistakes", "calibration", "alerts", "damaged"}], "limits": {...}}`, with
  `calibration` and `alerts` whether the run and split has any of those kinds, `damaged` what was
  skipped of the run's damaged event files (empty when none: see below), and `head`
  "single_label", "binary" (a one-unit head whose score histograms were written: `binary` true,
  the threshold slider) or "multi_label" (multi-label counts: read with `multilabel`, never as a
  confusion matrix), and `limits` the dashboard's class-count thresholds,
  `monitor.limits.DASHBOARD_LIMITS` (the page has no copies of its own; they come with the run
  list, no request of their own).
  `last_step`/`last_wall_time` (the newest confusion, or multi-label, sample of the run and
  split) make it the page's cheap "what is new" check: one small answer from the data
  provider's listing, no tensor read;
- `matrices?run=&split=[&since=k]` (answers cached per listing, `answers.py`: viewers of one run
  share one read, a new epoch is a new listing, and `runs` builds a run's new whole-run answer in
  the background, so the next page to open it finds it ready): `{"class_names", "last_step", "epochs":
  [{"step", "wall_time", "cells"}]}` with `cells` the nonzero cells as (true, predicted, count)
  triples of little-endian int32, base64-encoded (`cells_array` decodes them: a whole 1,000-class
  run of 150 epochs is encoded in 11 ms, where JSON numbers took 95); with
  `since`, only the epochs of step > k, read from only the tags whose newest step is > k (the
  newest block of `--epochs-per-tag` epochs, or two at a block boundary). A binary run's answer
  also has `threshold` (the user's) and `num_thresholds` (T), and each epoch `scores`: the flat
  (2, T) histograms of p(positive), the true negatives' T buckets then the true positives'. An
  epoch with calibration statistics has `calibration`: the flat (3, B) rows, the B bins' image
  counts, then their confidence sums, then their counts predicted right. Every answer also has
  `alerts` when the run has any: `[{"step", "wall_time", "alerts": [...]}]`, the epochs with alerts
  (metadata.py's format), step > k with `since` (their own list: the alarms speak every epoch, the
  counts come every `--every-n-epochs`). One read of the data provider for all of it;
- `multilabel?run=&split=[&since=k]`: `{"class_names", "threshold", "last_step", "epochs":
  [{"step", "wall_time", "count", "exact", "tp", "fp", "fn", "tn", "cooccurrence", "threshold"}],
  "alerts"}` (metadata.py's format), `since` and `alerts` as for `matrices`;
- `mistakes?run=&split=&step=`: `{"step", "mistakes": [{"index", "true", "predicted",
  "confidence", "position"}]}`;
- `mistake_image?run=&split=&step=&index=`: that mistake's PNG thumbnail;
- `explanations?run=&split=&step=`: `{"step", "layer", "score", "map_size", "maps", "records":
  [{"index", "true", "predicted", "confidence", "position"}]}`, the Grad-CAM heat maps that epoch
  has (`monitor.explanation_summaries`), matched to its mistakes by `position`;
- `explanation_image?run=&split=&step=&index=&map=predicted|true`: that heat map, an 8-bit grey
  PNG of `map_size` pixels (255 at the map's maximum), for the page to colour and lay over the
  thumbnail.

A run whose event files hold a damaged record (a bit flip, a copy gone wrong) is read from those
files past the damage (`damaged_runs.py`), since TensorBoard's loaders stop at it: every route then
serves every intact epoch, and `runs` says what was skipped.
"""

from __future__ import annotations

import base64
import functools
import json
import mimetypes
import posixpath
from importlib import resources

import numpy as np
from tensorboard import errors, plugin_util
from tensorboard.backend import http_util
from tensorboard.data import provider
from tensorboard.plugins import base_plugin
from werkzeug import wrappers

from monitor import limits
from monitor.dashboard import metadata
from monitor.dashboard.answers import AnswerCache, Fragments, listing_key
from monitor.dashboard.damaged_runs import DamageWatch
from monitor.tags import holds_step

STATIC = resources.files("monitor.dashboard").joinpath("static")
DOWNSAMPLE = 1000  # samples asked per tag: more than any block holds (10)


class TrainingMonitorPlugin(base_plugin.TBPlugin):
    """Confusion matrices of every epoch on one slider, with the most confident mistakes."""

    plugin_name = metadata.PLUGIN_NAME

    def __init__(self, context: base_plugin.TBContext):
        self._provider = context.data_provider
        self._watch = DamageWatch(context.logdir)
        self._answers = AnswerCache()
        self._fragments = Fragments()

    def get_plugin_apps(self):
        return {
            "/static/*": self._serve_static,
            "/runs": self._serve_runs,
            "/matrices": self._serve_matrices,
            "/multilabel": self._serve_multilabel,
            "/mistakes": self._serve_mistakes,
            "/mistake_image": self._serve_mistake_image,
            "/explanations": self._serve_explanations,
            "/explanation_image": self._serve_explanation_image,
        }

    def is_active(self) -> bool:
        return False  # active exactly when the data provider lists our plugin's data

    def data_plugin_names(self):
        return (metadata.PLUGIN_NAME,)

    def frontend_metadata(self):
        return base_plugin.FrontendMetadata(es_module_path="/static/index.js", tab_name=metadata.TAB_NAME)

    # -- reading ---------------------------------------------------------
    def _series(self, ctx, experiment: str) -> dict[tuple[str, str], dict]:
        """(run, split) -> `_new_series()`'s dict, filled from the listing: tags of each kind with
        their newest step, the class names, the binary threshold, the newest step and wall time."""
        listing = self._provider.list_tensors(ctx, experiment_id=experiment,
                                              plugin_name=metadata.PLUGIN_NAME)
        series: dict[tuple[str, str], dict] = {}
        for run, tags in listing.items():
            damaged = self._watch.check(run)
            for tag, info in (damaged.tensors.listing() if damaged else tags).items():
                content = metadata.parse_plugin_content(info.plugin_content)
                if content is not None:
                    entry = series.setdefault((run, str(content["split"])), _new_series())
                    entry["damaged"] = damaged.text if damaged else ""
                    _add_tag(entry, tag, info, content)
        return {key: _finish(e) for key, e in series.items() if e["confusion"] or e["multilabel"]}

    def _read_tensors(self, ctx, experiment: str, run: str, tags: list[str]) -> dict[str, list]:
        """tag -> datums of `run`: from the data provider, or for a run whose files are damaged, from
        those files read past the damage (`damaged_runs.py`)."""
        damaged = self._watch.damaged(run)
        if damaged is not None:
            return damaged.tensors.read(tags)
        data = self._provider.read_tensors(
            ctx, experiment_id=experiment, plugin_name=metadata.PLUGIN_NAME, downsample=DOWNSAMPLE,
            run_tag_filter=provider.RunTagFilter(runs=[run], tags=tags))
        return data.get(run, {})

    def _list_run(self, ctx, experiment: str, run: str) -> dict:
        """tag -> listed series of `run` (from its files when they are damaged)."""
        damaged = self._watch.damaged(run)
        if damaged is not None:
            return damaged.tensors.listing()
        return self._provider.list_tensors(ctx, experiment_id=experiment, plugin_name=metadata.PLUGIN_NAME,
                                           run_tag_filter=provider.RunTagFilter(runs=[run])).get(run, {})

    def _read(self, ctx, experiment: str, run: str, tags: list[str]) -> dict[int, provider.TensorDatum]:
        """step -> datum over `tags` of `run` (for a step written twice, the last written)."""
        data = self._read_tensors(ctx, experiment, run, tags)
        by_step: dict[int, provider.TensorDatum] = {}
        for datum in (d for series in data.values() for d in series):
            if datum.step not in by_step or datum.wall_time >= by_step[datum.step].wall_time:
                by_step[datum.step] = datum
        return dict(sorted(by_step.items()))

    @staticmethod
    def _where(request) -> tuple:
        """(ctx, experiment, run, split) of a request naming a run."""
        run, split = request.args.get("run"), request.args.get("split", "validation")
        if not run:
            raise errors.InvalidArgumentError("Missing argument `run`")
        return plugin_util.context(request.environ), plugin_util.experiment_id(request.environ), run, split

    def _entry(self, request, kind: str = "confusion") -> tuple:
        ctx, experiment, run, split = self._where(request)
        entry = self._series(ctx, experiment).get((run, split))
        if entry is None or not entry[kind]:
            what = "confusion matrices" if kind == "confusion" else "multi-label counts"
            raise errors.NotFoundError(f"No {what} for run {run!r}, split {split!r}")
        return ctx, experiment, run, split, entry

    def _read_since(self, ctx, experiment: str, run: str, entry: dict, kinds: tuple, since: int) -> dict:
        """kind -> {step -> datum} of the steps > `since` of each of `kinds`, in one read of only the
        tags whose newest step is > `since` (for a step written twice, the last written)."""
        wanted = {tag: kind for kind in kinds for tag, max_step in entry[kind].items() if max_step > since}
        out: dict[str, dict[int, provider.TensorDatum]] = {kind: {} for kind in kinds}
        if wanted:
            for tag, series in self._read_tensors(ctx, experiment, run, list(wanted)).items():
                by_step = out[wanted[tag]]
                for d in series:
                    if d.step > since and (d.step not in by_step or d.wall_time >= by_step[d.step].wall_time):
                        by_step[d.step] = d
        return {kind: dict(sorted(by_step.items())) for kind, by_step in out.items()}

    def _mistakes_at(self, request, kind: str = "mistakes") -> tuple[int, np.ndarray]:
        """(step, payload) of one epoch's `mistakes` (or their `explanations`)."""
        # Only this run's tags are listed, and only the block that holds the step is read
        # (the page asks for one thumbnail per request, up to 64 per click).
        ctx, experiment, run, split = self._where(request)
        step = _int_arg(request, "step")
        wanted = [tag for tag, info in self._list_run(ctx, experiment, run).items()
                  if _is_series(info, kind, split) and holds_step(tag, step)]
        datum = self._read(ctx, experiment, run, wanted).get(step) if wanted else None
        if datum is None:
            raise errors.NotFoundError(f"No {kind} for run {run!r}, split {split!r}, step {step}")
        return step, datum.numpy

    # -- routes ----------------------------------------------------------
    @wrappers.Request.application
    def _serve_runs(self, request):
        ctx = plugin_util.context(request.environ)
        experiment = plugin_util.experiment_id(request.environ)
        series = self._series(ctx, experiment)
        for (run, split), entry in series.items():  # a new epoch: its whole-run answer, before a page asks
            if entry["confusion"]:
                self._answers.warm(self._matrices_key(experiment, run, split, -1, entry),
                                   functools.partial(self._matrices, ctx, experiment, run, split, entry, -1))
        runs = [{"run": run, "split": split, "head": entry["head"], "binary": entry["head"] == "binary",
                 "classes": len(entry["class_names"] or []), "epochs": entry["max_step"] + 1,
                 "last_step": entry["max_step"], "last_wall_time": entry["max_wall_time"],
                 "mistakes": bool(entry["mistakes"]), "calibration": bool(entry["calibration"]),
                 "alerts": bool(entry["alerts"]), "explanations": bool(entry["explanations"]),
                 "damaged": entry["damaged"]}
                for (run, split), entry in sorted(series.items())]
        return _json(request, {"runs": runs, "limits": limits.DASHBOARD_LIMITS})

    @wrappers.Request.application
    def _serve_matrices(self, request):
        ctx, experiment, run, split, entry = self._entry(request)
        since = _since(request)
        body = self._answers.get(self._matrices_key(experiment, run, split, since, entry),
                                 lambda: self._matrices(ctx, experiment, run, split, entry, since))
        return http_util.Respond(request, body, "application/json", content_encoding="gzip")

    @staticmethod
    def _matrices_key(experiment: str, run: str, split: str, since: int, entry: dict) -> tuple:
        # `damaged`: read from the files past the damage is another source, with the same listing when
        # the loader read on past a damaged record (the Rust loader serves a flipped bit as data)
        kinds = ("confusion", "scores", "calibration", "alerts")
        return ("matrices", experiment, run, split, since, entry["damaged"], listing_key(entry, kinds))

    def _matrices(self, ctx, experiment: str, run: str, split: str, entry: dict, since: int) -> bytes:
        data = self._read_since(ctx, experiment, run, entry, ("confusion", "scores", "calibration", "alerts"),
                                since)
        scores, calibration = data["scores"], data["calibration"]
        where = (experiment, run, split, entry["damaged"])
        epochs = [self._epoch_json(where, step, datum, scores.get(step), calibration.get(step))
                  for step, datum in data["confusion"].items()]
        body = {"run": run, "split": split, "class_names": entry["confusion_names"],
                "last_step": entry["confusion_step"], **_alerts(entry, data["alerts"])}
        if entry["scores"]:
            body.update(threshold=entry["threshold"], num_thresholds=entry["num_thresholds"])
        head = json.dumps(body, separators=(",", ":")).encode("utf-8")
        return head[:-1] + b',"epochs":[' + b",".join(epochs) + b"]}"

    def _epoch_json(self, where: tuple, step: int, datum, scores, calibration) -> bytes:
        """One epoch of a `matrices` answer, serialised once (the same datums, the same bytes)."""
        key = (where, step, datum.wall_time, *(d and d.wall_time for d in (scores, calibration)))

        def build() -> bytes:
            epoch = {"step": step, "wall_time": datum.wall_time,
                     "cells": base64.b64encode(np.asarray(datum.numpy).astype("<i4").tobytes()).decode()}
            if scores is not None:
                epoch["scores"] = np.asarray(scores.numpy, np.int64).reshape(-1).tolist()
            if calibration is not None:
                epoch["calibration"] = np.asarray(calibration.numpy, np.float64).reshape(-1).tolist()
            return json.dumps(epoch, separators=(",", ":")).encode("utf-8")

        return self._fragments.get(key, build)

    @wrappers.Request.application
    def _serve_multilabel(self, request):
        ctx, experiment, run, split, entry = self._entry(request, "multilabel")
        data = self._read_since(ctx, experiment, run, entry, ("multilabel", "alerts"), _since(request))
        epochs = [{"step": step, "wall_time": datum.wall_time, **_json_scalar(datum.numpy)}
                  for step, datum in data["multilabel"].items()]
        return _json(request, {"run": run, "split": split, "class_names": entry["class_names"],
                               "threshold": entry["threshold"], "last_step": entry["max_step"],
                               "epochs": epochs, **_alerts(entry, data["alerts"])})

    @wrappers.Request.application
    def _serve_mistakes(self, request):
        step, payload = self._mistakes_at(request)
        records = json.loads(bytes(payload[0]).decode("utf-8"))
        return _json(request, {"step": step,
                               "mistakes": [dict(record, index=i) for i, record in enumerate(records)]})

    @wrappers.Request.application
    def _serve_mistake_image(self, request):
        _, payload = self._mistakes_at(request)
        index = _int_arg(request, "index")
        if not 0 <= index < len(payload) - 1:
            raise errors.NotFoundError(f"No mistake {index}")
        return http_util.Respond(request, bytes(payload[index + 1]), "image/png")

    @wrappers.Request.application
    def _serve_explanations(self, request):
        step, payload = self._mistakes_at(request, "explanations")
        header = json.loads(bytes(payload[0]).decode("utf-8"))
        records = [dict(record, index=i) for i, record in enumerate(header.pop("records"))]
        return _json(request, {"step": step, **header, "records": records})

    @wrappers.Request.application
    def _serve_explanation_image(self, request):
        _, payload = self._mistakes_at(request, "explanations")
        index, which = _int_arg(request, "index"), request.args.get("map", "predicted")
        maps = json.loads(bytes(payload[0]).decode("utf-8")).get("maps", ["predicted", "true"])
        if which not in maps:
            raise errors.InvalidArgumentError(f"Argument `map` must be one of {', '.join(maps)}")
        position = 1 + len(maps) * index + maps.index(which)
        if index < 0 or position >= len(payload):
            raise errors.NotFoundError(f"No heat map {index}")
        return http_util.Respond(request, bytes(payload[position]), "image/png")

    @wrappers.Request.application
    def _serve_static(self, request):
        prefix = f"/data/plugin/{metadata.PLUGIN_NAME}/"
        path = posixpath.normpath(request.path[len(prefix):] if request.path.startswith(prefix) else "")
        name = path.removeprefix("static/")
        if not path.startswith("static/") or "/" in name or name.startswith("."):
            raise errors.NotFoundError(request.path)
        asset = STATIC.joinpath(name)
        if not asset.is_file():
            raise errors.NotFoundError(request.path)
        mimetype = "text/javascript" if name.endswith(".js") else mimetypes.guess_type(name)[0]
        return http_util.Respond(request, asset.read_bytes(), mimetype or "application/octet-stream")


def _new_series() -> dict:
    """One run and split's data as listed (`_add_tag`): `confusion`, `scores`, `multilabel`,
    `calibration`, `alerts`: {tag: newest step}; `mistakes`, `explanations`: [tags]; `names`, `wall`:
    per kind, the class names and the newest wall time; a binary run's `threshold` (the user's) and
    `num_thresholds`."""
    return {"confusion": {}, "scores": {}, "multilabel": {}, "calibration": {}, "alerts": {}, "mistakes": [],
            "explanations": [], "names": {}, "wall": {}, "threshold": None, "num_thresholds": None,
            "damaged": ""}


def _add_tag(entry: dict, tag: str, info, content: dict) -> None:
    kind = content["kind"]
    if kind in ("mistakes", "explanations"):
        entry[kind].append(tag)
        return
    entry[kind][tag] = info.max_step
    entry["wall"][kind] = max(entry["wall"].get(kind, 0.0), info.max_wall_time)
    if content.get("class_names"):
        entry["names"][kind] = content["class_names"]
    if kind in ("scores", "multilabel"):
        entry["threshold"] = content.get("threshold")
        entry["num_thresholds"] = content.get("num_thresholds")


def _finish(entry: dict) -> dict:
    """Adds `head`; `class_names`, `max_step`, `max_wall_time` of the run's main kind (its
    multi-label counts where there are any, else its confusion counts); `confusion_names` and
    `confusion_step`, the confusion counts' own."""
    main = "multilabel" if entry["multilabel"] else "confusion"
    entry["head"] = "multi_label" if entry["multilabel"] else "binary" if entry["scores"] else "single_label"
    entry["class_names"] = entry["names"].get(main)
    entry["max_step"] = max(entry[main].values(), default=-1)
    entry["max_wall_time"] = entry["wall"].get(main, 0.0)
    entry["confusion_names"] = entry["names"].get("confusion")
    entry["confusion_step"] = max(entry["confusion"].values(), default=-1)
    return entry


def cells_array(cells: str) -> np.ndarray:
    """A `matrices` answer's `cells`, as the (n, 3) int32 array of (true, predicted, count) rows."""
    return np.frombuffer(base64.b64decode(cells), "<i4").reshape(-1, 3)


def _since(request) -> int:
    return _int_arg(request, "since") if request.args.get("since") else -1


def _alerts(entry: dict, data: dict) -> dict:
    """`{"alerts": [...]}` of an answer (step -> datum, a JSON list in a string scalar, as a list);
    nothing for a run without alerts, whose answer stays as it was before they existed."""
    if not entry["alerts"]:
        return {}
    return {"alerts": [{"step": step, "wall_time": datum.wall_time, "alerts": _json_scalar(datum.numpy)}
                       for step, datum in data.items()]}


def _json_scalar(value):
    """A string scalar tensor holding JSON, decoded."""
    raw = np.asarray(value, dtype=object).reshape(-1)[0]
    return json.loads(raw.decode("utf-8") if isinstance(raw, bytes) else str(raw))


def _int_arg(request, name: str) -> int:
    try:
        return int(request.args.get(name, ""))
    except ValueError:
        raise errors.InvalidArgumentError(f"Argument `{name}` must be an integer") from None


def _json(request, body) -> wrappers.Response:
    return http_util.Respond(request, json.dumps(body, separators=(",", ":")), "application/json")


def _is_series(info, kind: str, split: str) -> bool:
    """Whether a listed tag holds our `kind` of data for `split`."""
    content = metadata.parse_plugin_content(info.plugin_content)
    return content is not None and content["kind"] == kind and str(content["split"]) == split
