"""The five reference models: exact layer stacks (parameter counts) and recipes."""

import pytest

from monitor.models import MODELS, RECIPES, build, compile_model

PARAMS = {  # docs/recipes.md, re-checked with Keras 3
    ("baseline", (32, 32, 3)): 669_354,
    ("baseline", (28, 28, 1)): 439_402,
    ("dropout", (32, 32, 3)): 669_354,
    ("dropout", (28, 28, 1)): 439_402,
    ("tutorial", (32, 32, 3)): 161_130,
    ("tutorial", (28, 28, 1)): 103_210,
    ("twoblock", (32, 32, 3)): 1_060_138,
    ("twoblock", (28, 28, 1)): 813_802,
    ("simple", (28, 28, 1)): 93_322,
    ("simple", (32, 32, 3)): 122_570,
}


@pytest.mark.parametrize(("name", "shape"), sorted(PARAMS))
def test_parameter_counts_match_reference(name, shape):
    assert build(name, shape, 10).count_params() == PARAMS[(name, shape)]


def test_all_five_models_exist():
    assert set(MODELS) == {"baseline", "dropout", "tutorial", "twoblock", "simple"}


def test_dropout_is_baseline_plus_dropout_layers():
    base = [type(layer).__name__ for layer in build("baseline", (32, 32, 3), 10).layers]
    drop = build("dropout", (32, 32, 3), 10)
    rates = [layer.rate for layer in drop.layers if type(layer).__name__ == "Dropout"]
    assert rates == [0.25, 0.25, 0.25, 0.5]
    assert [type(layer).__name__ for layer in drop.layers if type(layer).__name__ != "Dropout"] == base


def test_weight_paths_are_stable_between_builds():
    # histogram tags are weight paths: a second build must not get "conv2d_1/kernel"
    first = [w.path for w in build("dropout", (32, 32, 3), 10).weights]
    second = [w.path for w in build("dropout", (32, 32, 3), 10).weights]
    assert first == second
    assert "dropout/block1_conv1/kernel" in first


def test_tutorial_outputs_logits_and_rescales_inside():
    model = build("tutorial", (32, 32, 3), 10)
    assert type(model.layers[0]).__name__ == "Rescaling"
    assert model.layers[-1].get_config()["activation"] == "linear"
    assert RECIPES["tutorial"].rescale_in_model and RECIPES["tutorial"].from_logits


@pytest.mark.parametrize("name", MODELS)
def test_recipes_compile(name):
    model = build(name, (28, 28, 1), 10)
    compile_model(model, name, learning_rate=0.01)
    r = RECIPES[name]
    assert type(model.optimizer).__name__ == {"rmsprop": "RMSprop", "adam": "Adam"}[r.optimizer]
    assert float(model.optimizer.learning_rate.numpy()) == pytest.approx(0.01)
    assert model.loss.get_config()["from_logits"] == r.from_logits


def test_recipe_defaults_follow_reference():
    assert (RECIPES["dropout"].epochs, RECIPES["dropout"].batch_size) == (31, 256)
    assert (RECIPES["twoblock"].epochs, RECIPES["twoblock"].batch_size) == (10, 10)
    assert RECIPES["tutorial"].early_stopping == 3 and RECIPES["baseline"].early_stopping == 0
    assert RECIPES["simple"].epochs == 5
