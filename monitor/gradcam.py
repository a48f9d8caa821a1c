"""Grad-CAM (Selvaraju et al. 2017): where in an image a classifier found the evidence for a class.

For a feature map A (the output of a spatial layer, (h, w, K)) and a class score y^c, the map is
ReLU(sum_k alpha_k A_k) with alpha_k = mean over (h, w) of dy^c / dA_k. Here, for any Keras
Sequential or functional classifier:

- the layer: `spatial_layer` takes the last layer with a 4-D output (batch, h, w, K) on the path to
  the explained output, skipping preprocessing layers (`Rescaling`, `Normalization`, random
  augmentation, and nested models made only of them), then steps back over trailing pooling and
  dropout layers to the feature map they read (the paper's "last convolutional layer"); or the
  model's top-level layer the user names;
- the score y^c: the pre-softmax (or pre-sigmoid) score, as in the paper. Logits when the output
  layer is linear; the last Dense layer's linear output (its input times its kernel, plus its bias)
  when that Dense layer applies softmax or sigmoid itself; the input of a final `Softmax` or
  `Activation` layer. Only where none of these applies is the probability explained
  (`GradCam.score` says which). A one-unit binary head scores +z for the positive class and -z for
  the negative (1 - p and p when only the probability is known);
- one forward pass over the images and, per class asked of each image, one backward pass through
  the layers after A only (a persistent tape), in inference mode (dropout off).

Maps come back at the feature map's resolution, each divided by its own maximum (all zeros when
nothing in the image speaks for the class); `monitor.render.explanations.upsample` brings them
to the image's size.
Numpy/TensorFlow in, arrays out: no drawing, no writing.
"""

from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf

from monitor.distribution import is_default_strategy, model_strategy

# Layers stepped back over, from the last 4-D layer to the feature map they read: they move or
# thin out the evidence but compute no new features.
PASS_THROUGH = (keras.layers.MaxPooling2D, keras.layers.AveragePooling2D, keras.layers.Dropout,
                keras.layers.SpatialDropout2D, keras.layers.GaussianDropout, keras.layers.GaussianNoise,
                keras.layers.AlphaDropout, keras.layers.ActivityRegularization)
LOGITS, PROBABILITY = "logit", "probability"


class NoSpatialLayer(ValueError):
    """The model has no layer with a 4-D (batch, h, w, channels) output to explain."""


def is_preprocessing(layer) -> bool:
    """A Keras preprocessing layer (rescaling, normalisation, resizing, random augmentation), or a
    nested model made only of them."""
    if isinstance(layer, keras.Model):
        inner = [sub for sub in layer.layers if not isinstance(sub, keras.layers.InputLayer)]
        return bool(inner) and all(is_preprocessing(sub) for sub in inner)
    return ".layers.preprocessing." in type(layer).__module__


def _producer(tensor):
    """The layer that made a symbolic tensor, or None."""
    history = getattr(tensor, "_keras_history", None)
    return history[0] if history is not None else None


def graph_output(model, index: int, layer):
    """The tensor `layer` makes on the way to `model`'s output `index` (a nested model's own
    `output` belongs to its inner graph, not to `model`'s); `layer.output` when not found."""
    seen, stack = set(), [model.outputs[index]]
    while stack:
        tensor = stack.pop()
        history = getattr(tensor, "_keras_history", None)
        if history is None or id(tensor) in seen:
            continue
        seen.add(id(tensor))
        operation, node_index = history[0], history[1]
        if operation is layer:
            return tensor
        stack.extend(operation._inbound_nodes[node_index].input_tensors)
    return layer.output


def _rank4(layer) -> bool:
    try:
        return len(layer.output.shape) == 4
    except (AttributeError, ValueError):  # no single output (shared, several outputs, not built)
        return False


def output_index(model, output: str | int | None) -> int:
    """The index of the explained output: `output` (a name or an index), or the only one."""
    outputs = list(model.outputs)
    if output is None:
        if len(outputs) != 1:
            raise ValueError(f"the model has {len(outputs)} outputs: name the explained one (output=)")
        return 0
    if isinstance(output, str):
        names = [str(n) for n in getattr(model, "output_names", [])]
        if output not in names:
            raise ValueError(f"output={output!r} is not one of the model's outputs ({', '.join(names)})")
        return names.index(output)
    if not 0 <= output < len(outputs):
        raise ValueError(f"output={output} is out of range: the model has {len(outputs)} output(s)")
    return output


def spatial_layer(model, explain_layer=None, output: str | int | None = None):
    """The layer whose output Grad-CAM weighs (see the module's docstring).

    `explain_layer`: a top-level layer of `model` or its name (ValueError when it has no 4-D
    output). Raises `NoSpatialLayer` when the model has none, ValueError for a model without a
    symbolic graph (a subclassed model; its layers' outputs cannot be reached either).
    """
    if explain_layer is not None:
        layer = model.get_layer(explain_layer) if isinstance(explain_layer, str) else explain_layer
        if not _rank4(layer):
            raise ValueError(f"explain_layer={layer.name!r} has no 4-D (batch, height, width, "
                             "channels) output to explain")
        return layer
    try:
        path = keras.Model(model.inputs, model.outputs[output_index(model, output)]).layers
    except (AttributeError, ValueError, TypeError) as err:
        raise ValueError(f"the model has no symbolic graph of layers (a subclassed model?: {err}); Grad-CAM "
                         "here needs a Sequential or functional model") from None
    candidates = [layer for layer in path if _rank4(layer) and not is_preprocessing(layer)
                  and not isinstance(layer, keras.layers.InputLayer)]
    if not candidates:
        raise NoSpatialLayer("the model has no layer with a 4-D (batch, height, width, channels) output "
                             "after its preprocessing")
    layer = candidates[-1]
    while isinstance(layer, PASS_THROUGH):
        before = _producer(layer.input)
        if before is None or before not in candidates:
            break
        layer = before
    return layer


def _score_source(model, index: int):
    """(symbolic tensor, how to turn its value into scores, score kind) of output `index`."""
    out = model.outputs[index]
    layer = _producer(out)
    activation = getattr(getattr(layer, "activation", None), "__name__", None)
    if isinstance(layer, keras.layers.Dense) and activation in ("softmax", "sigmoid"):
        def linear(h):
            return tf.matmul(tf.cast(h, tf.float32), tf.cast(layer.kernel, tf.float32)) + (
                0.0 if layer.bias is None else tf.cast(layer.bias, tf.float32))
        return layer.input, linear, LOGITS
    if isinstance(layer, keras.layers.Softmax) or (
            isinstance(layer, keras.layers.Activation) and activation in ("softmax", "sigmoid")):
        return layer.input, _identity, LOGITS
    if activation == "linear":
        return out, _identity, LOGITS
    return out, _identity, PROBABILITY


def _identity(value):
    return tf.cast(value, tf.float32)


class GradCam:
    """Grad-CAM maps of `model`'s output `output` (name, index or None) at `layer`.

    ```python
    cam = GradCam(model, spatial_layer(model))
    maps = cam.maps(images, classes)  # (N, K, h, w) in [0, 1], classes (N, K) with -1 = none
    ```
    Built once per model (the gradient model shares the model's layers and weights, so it
    follows training). Under `tf.distribute` it is built and run in the model's strategy scope.
    Elsewhere `maps(..., weights=cam.snapshot())` explains the weights of the moment of the
    snapshot, on any thread, while training goes on.
    """

    def __init__(self, model, layer, output: str | int | None = None):
        self.layer = layer
        self.strategy = model_strategy(model)
        index = output_index(model, output)
        self.units = int(model.outputs[index].shape[-1])
        source, self._to_scores, self.score = _score_source(model, index)
        with self.strategy.scope():
            self._model = keras.Model(model.inputs, [graph_output(model, index, layer), source])
        self._input = (tuple(model.inputs[0].shape[1:]), model.inputs[0].dtype)
        self._functions: dict[tuple, object] = {}  # one traced pass per number of classes per image
        self._weights = list(model.weights)  # what a snapshot holds: every weight the pass reads
        self._read = None
        # Off the training thread only outside tf.distribute (where a pass is a replica function).
        self.can_snapshot = is_default_strategy(self.strategy)

    def snapshot(self) -> list:
        """The model's weights as they are now: tensors that training's later updates leave as they
        are (a read: TensorFlow copies a weight's buffer only when it is next written while read).
        `maps(..., weights=snapshot)` then explains these weights on any thread."""
        if self._read is None:
            weights = self._weights
            self._read = tf.function(lambda: [tf.identity(w.value) for w in weights], autograph=False)
        return self._read()

    @property
    def input_shape(self) -> tuple:
        """The model's input shape, less the batch dimension."""
        return self._input[0]

    def maps(self, images: np.ndarray, classes: np.ndarray, weights: list | None = None) -> np.ndarray:
        """(N, K, h, w) float32 maps of images (N, H, W, Ch) for classes (N, K) int, -1 = none
        (its map is zeros); each map divided by its maximum (zeros where it is 0). `weights`: a
        `snapshot()` to explain instead of the weights the model holds now."""
        images, classes = np.asarray(images), np.asarray(classes, dtype=np.int64).reshape(len(images), -1)
        if len(images) == 0:
            return np.zeros((0, classes.shape[1], 0, 0), np.float32)
        k = classes.shape[1]
        key = (k, weights is not None)
        if key not in self._functions:  # any number of images: traced once
            shape, dtype = self._input
            signature = [tf.TensorSpec((None, *shape), dtype), tf.TensorSpec((None, k), tf.int32)]
            if weights is None:
                self._functions[key] = tf.function(self._compute, autograph=False, input_signature=signature)
            else:
                specs = [tf.TensorSpec(w.shape, w.dtype) for w in weights]
                self._functions[key] = tf.function(self._compute_at, autograph=False,
                                                   input_signature=[*signature, specs])
        args = (tf.cast(images, self._input[1]), tf.constant(classes, tf.int32))
        with self.strategy.scope():
            maps = self._functions[key](*args, *(() if weights is None else (weights,))).numpy()
        return np.where(classes[:, :, None, None] >= 0, maps, 0.0).astype(np.float32)

    def _compute_at(self, x, classes, weights):
        """`_compute` with the model's weights read from `weights` (a snapshot)."""
        with keras.StatelessScope(state_mapping=list(zip(self._weights, weights, strict=True))):
            return self._compute(x, classes, watch=weights)

    def _compute(self, x, classes, watch=()):
        """One forward pass, one backward pass per column of `classes` (through the layers
        after the feature map only): (N, K, h, w). `watch`: the weights' values when they are
        tensors, not variables (the tape records what depends on them, as it does for variables)."""
        with tf.GradientTape(persistent=True) as tape:
            tape.watch(watch)
            features, source = self._model(x, training=False)
            scores = self._class_scores(self._to_scores(source))
            targets = [tf.reduce_sum(_pick(scores, classes[:, k])) for k in range(classes.shape[1])]
        out = [_cam(features, tape.gradient(t, features)) for t in targets]
        del tape
        return tf.stack(out, axis=1)

    def _class_scores(self, scores):
        """(N, C) scores; a one-unit head's as (N, 2): [-z, z] for logits, [1 - p, p] else."""
        if self.units != 1:
            return scores
        if self.score == LOGITS:
            return tf.concat([-scores, scores], axis=1)
        return tf.concat([1.0 - scores, scores], axis=1)


def _pick(scores, classes):
    """scores[i, classes[i]] where classes[i] >= 0, else 0. A mask rather than a batched gather:
    the same values, and a far cheaper gradient to trace (the gather's gradient was most of the
    backward pass's tracing: the first, traced pass took 0.45 s with it and 0.33 s without, medians
    of 5 interleaved runs on a slow day of the 2-core machine)."""
    chosen = tf.equal(tf.range(tf.shape(scores)[1], dtype=classes.dtype)[None, :], classes[:, None])
    return tf.reduce_sum(tf.where(chosen, scores, tf.zeros_like(scores)), axis=1)


def _cam(features, grads):
    """ReLU(sum_k alpha_k A_k), alpha_k = spatial mean of the gradient, each map over its max."""
    features = tf.cast(features, tf.float32)
    if grads is None:  # the score does not depend on these features
        return tf.zeros(tf.shape(features)[:3], tf.float32)
    alpha = tf.reduce_mean(tf.cast(grads, tf.float32), axis=(1, 2), keepdims=True)
    cam = tf.nn.relu(tf.reduce_sum(alpha * features, axis=-1))
    top = tf.reduce_max(cam, axis=(1, 2), keepdims=True)
    return tf.math.divide_no_nan(cam, top)

