"""The five reference CNNs of docs/recipes.md and their training recipes.

Every layer has a fixed name so that TensorBoard tags (weight histograms) are
the same in every run. Models contain only stock Keras layers, so a saved
`model.keras` loads anywhere with plain Keras and `safe_mode=True`.
"""

from __future__ import annotations

import keras
from keras import layers

from monitor.recipes import MODELS, RECIPES, Recipe, recipe

__all__ = ["MODELS", "RECIPES", "Recipe", "build", "compile_model", "recipe"]


def _conv(filters: int, name: str, padding: str = "same") -> layers.Layer:
    return layers.Conv2D(filters, 3, padding=padding, activation="relu", name=name)


def _vgg_blocks(dropout: bool) -> list[layers.Layer]:
    stack: list[layers.Layer] = []
    for block, filters in enumerate((32, 64, 64), start=1):
        stack += [
            _conv(filters, f"block{block}_conv1"),
            _conv(filters, f"block{block}_conv2"),
            layers.MaxPooling2D(2, name=f"block{block}_pool"),
        ]
        if dropout:
            stack.append(layers.Dropout(0.25, name=f"block{block}_dropout"))
    stack += [layers.Flatten(name="flatten"), layers.Dense(512, activation="relu", name="dense")]
    if dropout:
        stack.append(layers.Dropout(0.5, name="dense_dropout"))
    return stack


def _baseline(num_classes: int) -> list[layers.Layer]:
    return _vgg_blocks(dropout=False) + [
        layers.Dense(num_classes, activation="softmax", name="predictions")
    ]


def _dropout(num_classes: int) -> list[layers.Layer]:
    return _vgg_blocks(dropout=True) + [
        layers.Dense(num_classes, activation="softmax", name="predictions")
    ]


def _tutorial(num_classes: int) -> list[layers.Layer]:
    return [
        layers.Rescaling(1.0 / 255, name="rescaling"),
        _conv(32, "conv1"),
        layers.MaxPooling2D(2, name="pool1"),
        _conv(32, "conv2"),
        layers.MaxPooling2D(2, name="pool2"),
        _conv(64, "conv3"),
        layers.MaxPooling2D(2, name="pool3"),
        layers.Dropout(0.2, name="dropout"),
        layers.Flatten(name="flatten"),
        layers.Dense(128, activation="relu", name="dense"),
        layers.Dense(num_classes, name="logits"),
    ]


def _twoblock(num_classes: int) -> list[layers.Layer]:
    return [
        _conv(32, "conv1"),
        _conv(32, "conv2"),
        layers.MaxPooling2D(2, strides=2, padding="valid", name="pool"),
        layers.Dropout(0.5, name="dropout"),
        layers.Flatten(name="flatten"),
        layers.Dense(128, activation="relu", name="dense"),
        layers.Dense(num_classes, activation="softmax", name="predictions"),
    ]


def _simple(num_classes: int) -> list[layers.Layer]:
    return [
        _conv(32, "conv1", padding="valid"),
        layers.MaxPooling2D(2, name="pool1"),
        _conv(64, "conv2", padding="valid"),
        layers.MaxPooling2D(2, name="pool2"),
        _conv(64, "conv3", padding="valid"),
        layers.Flatten(name="flatten"),
        layers.Dense(64, activation="relu", name="dense"),
        layers.Dense(num_classes, activation="softmax", name="predictions"),
    ]


_STACKS = {
    "baseline": _baseline,
    "dropout": _dropout,
    "tutorial": _tutorial,
    "twoblock": _twoblock,
    "simple": _simple,
}

def build(name: str, input_shape: tuple[int, int, int], num_classes: int,
          binary: bool = False) -> keras.Model:
    """An uncompiled reference model for `input_shape` (H, W, C) and `num_classes`; `binary`
    (two classes): one output unit instead, a sigmoid (a logit for a recipe trained on logits)."""
    r = recipe(name)
    stack = _STACKS[name](num_classes)
    if binary:
        if num_classes != 2:
            raise ValueError(f"a binary model has 2 classes, got num_classes={num_classes}")
        head = stack[-1]
        stack[-1] = layers.Dense(1, activation=None if r.from_logits else "sigmoid", name=head.name)
    return keras.Sequential([keras.Input(shape=tuple(input_shape), name="image"), *stack], name=name)


def compile_model(model: keras.Model, name: str, learning_rate: float | None = None,
                  binary: bool = False) -> None:
    """Compile `model` with the optimiser, loss and metric of recipe `name` (`binary`: binary
    cross-entropy on 0/1 labels, whatever the recipe's label form)."""
    r = recipe(name)
    lr = r.learning_rate if learning_rate is None else learning_rate
    optimizer = (
        keras.optimizers.RMSprop(learning_rate=lr)
        if r.optimizer == "rmsprop"
        else keras.optimizers.Adam(learning_rate=lr)
    )
    if binary:
        loss = keras.losses.BinaryCrossentropy(from_logits=r.from_logits)
        metric = keras.metrics.BinaryAccuracy(name="accuracy", threshold=0.0 if r.from_logits else 0.5)
    elif r.one_hot_labels:
        loss = keras.losses.CategoricalCrossentropy(from_logits=r.from_logits)
        metric = keras.metrics.CategoricalAccuracy(name="accuracy")
    else:
        loss = keras.losses.SparseCategoricalCrossentropy(from_logits=r.from_logits)
        metric = keras.metrics.SparseCategoricalAccuracy(name="accuracy")
    model.compile(optimizer=optimizer, loss=loss, metrics=[metric])
