"""Training recipes of the reference models (docs/recipes.md); no Keras import here,
so flags can be checked before TensorFlow loads."""

from __future__ import annotations

from dataclasses import dataclass

from monitor.errors import MonitorError


@dataclass(frozen=True)
class Recipe:
    """How a reference model is trained."""

    optimizer: str  # "rmsprop" or "adam"
    learning_rate: float
    one_hot_labels: bool  # categorical (one-hot) vs sparse (integer) labels
    from_logits: bool
    epochs: int
    batch_size: int
    early_stopping: int  # patience on val_loss; 0 = off
    rescale_in_model: bool  # True: the model gets raw 0..255 pixels


_VGG = dict(optimizer="rmsprop", learning_rate=1e-3, one_hot_labels=True, from_logits=False,
            epochs=31, batch_size=256, early_stopping=0, rescale_in_model=False)

RECIPES: dict[str, Recipe] = {
    "baseline": Recipe(**_VGG),
    "dropout": Recipe(**_VGG),
    "tutorial": Recipe("adam", 1e-3, False, True, 50, 256, 3, True),
    "twoblock": Recipe("adam", 1e-3, False, False, 10, 10, 0, False),
    "simple": Recipe("adam", 1e-3, False, False, 5, 32, 0, False),
}

MODELS = tuple(RECIPES)


def model_input(pixels, rescale_in_model: bool):
    """Pixels as a model takes them: 0..255 floats scaled to [0, 1] exactly once, or left raw
    for a model that rescales inside itself (`tutorial`)."""
    return pixels if rescale_in_model else pixels / 255.0


def recipe(name: str) -> Recipe:
    if name not in RECIPES:
        raise MonitorError(
            f"unknown model {name!r}: choose one of {', '.join(MODELS)}"
        )
    return RECIPES[name]


