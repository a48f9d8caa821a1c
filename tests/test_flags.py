"""train.py's flags come from RunConfig's fields, and README's flag table says what the parser does."""

from __future__ import annotations

import re
from dataclasses import fields
from pathlib import Path

import pytest

import train
from monitor.recipes import RECIPES
from monitor.settings import RunConfig, SuiteOptions, cli_fields, flag_name

ROOT = Path(__file__).resolve().parent.parent
RECIPE_DEFAULTS = {"epochs", "batch_size", "learning_rate", "early_stopping"}


def readme_flag_table() -> dict[str, tuple[str, str]]:
    """`--flag` -> (default column, whole row) of README's `train.py` flag table."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    section = text.split("## `train.py` flags", 1)[1].split("\n## ", 1)[0]
    rows = {}
    for line in section.splitlines():
        match = re.match(r"\| `(--[a-z-]+)[^`]*` \|\s*([^|]*?)\s*\|", line)
        if match:
            rows[match.group(1)] = (match.group(2).strip().strip("`"), line)
    return rows


def parser_flags() -> dict[str, object]:
    """`--flag` -> default, for every flag of train.py's parser."""
    out = {}
    for action in train.build_parser()._actions:
        for option in action.option_strings:
            if option.startswith("--") and option != "--help":
                out[option] = action.default
    return out


def test_every_flag_is_a_field_of_the_run_settings():
    expected = {flag_name(f.name) for f in cli_fields()} | {"--resume"}
    assert set(parser_flags()) == expected
    assert {f.name for f in fields(SuiteOptions)} < {f.name for f in fields(RunConfig)}


def test_the_readme_table_lists_exactly_the_parser_flags():
    assert set(readme_flag_table()) == set(parser_flags())


@pytest.mark.parametrize("flag", sorted(parser_flags()))
def test_the_readme_table_gives_each_default(flag):
    default, row = readme_flag_table()[flag]
    parsed = parser_flags()[flag]
    name = flag[2:].replace("-", "_")
    if name in RECIPE_DEFAULTS:  # every recipe's own value is named in the row
        values = {str(getattr(r, name)) for r in RECIPES.values()}
        assert all(re.search(rf"(?<![\d.]){re.escape(v)}(?!\d)", row) for v in values), (flag, values, row)
    elif parsed is True:  # --no-<x>: on by default
        assert default == "", (flag, default)
    elif isinstance(parsed, list):
        assert default == parsed[0], (flag, default, parsed)
    elif flag == "--resume":
        assert default == "" and "RUN_DIR" in row
    elif parsed is None:
        assert default not in ("", "None"), (flag, default)  # says what happens without it
    else:
        assert default == str(parsed), (flag, default, parsed)


def test_the_help_comes_from_the_settings():
    text = train.build_parser().format_help()
    for f in cli_fields():
        first_words = " ".join(f.metadata["help"].split()[:3])
        assert first_words in " ".join(text.split()), f.name
    with pytest.raises(SystemExit):
        train.build_parser().parse_args(["--model", "resnet"])  # choices come from the recipes
