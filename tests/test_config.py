"""Flat typed configs (trials/config.py): Field checks and parsing, layering, ``--set key=value``."""

import math

import pytest

from trials.config import ConfigError, Field, check_keys, complete_config, parse_assignment

FIELDS = {
    "train.amp": Field(False, "mixed precision"),
    "train.epochs": Field(300, "training epochs", low=1, high=1000),
    "loss.gamma": Field(0.3, "reconstruction weight", low=0.0, high=1.0, low_open=True, high_open=True),
    "mask.a": Field(0.0, "relative start", low=0.0, high=1.0, high_open=True),
    "mask.fill": Field(-1.0, "fill value"),
    "mask.scheme": Field("MS4", "mask scheme", choices=("MS1", "MS4")),
    "model.layers": Field("16,M", "conv layers"),
}


def check(key, value):
    return FIELDS[key].check(key, value)


def parse(key, text):
    return FIELDS[key].parse(key, text)


def error_of(call, *args) -> str:
    with pytest.raises(ConfigError) as info:
        call(*args)
    return str(info.value)


# --- Field.check ---------------------------------------------------------------------------------

@pytest.mark.parametrize(("key", "value"), [
    ("train.amp", True), ("train.epochs", 1), ("train.epochs", 1000), ("loss.gamma", 0.5),
    ("mask.a", 0.0), ("mask.fill", -1e9), ("mask.scheme", "MS1"), ("model.layers", "4,M,8"),
])
def test_valid_values_pass_unchanged(key, value):
    checked = check(key, value)
    assert checked == value and type(checked) is type(value)


def test_int_is_accepted_for_a_float_and_becomes_a_float():
    assert check("mask.fill", 0) == 0.0 and type(check("mask.fill", 0)) is float


def test_integral_float_is_accepted_for_an_int():
    assert check("train.epochs", 20.0) == 20 and type(check("train.epochs", 20.0)) is int


@pytest.mark.parametrize(("key", "value"), [
    ("train.amp", 1), ("train.amp", "true"),  # a bool field takes only bools
    ("train.epochs", True), ("train.epochs", 2.5), ("train.epochs", "3"),  # bools are not ints
    ("mask.fill", True), ("mask.fill", "0"),
    ("mask.scheme", 4), ("model.layers", None),
])
def test_wrong_type_is_rejected(key, value):
    check_message = error_of(check, key, value)
    assert f"'{key}'" in check_message and repr(value) in check_message


@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf])
@pytest.mark.parametrize("key", ["mask.fill", "loss.gamma", "train.epochs"])
def test_nan_and_inf_are_rejected(key, value):
    assert f"'{key}'" in error_of(check, key, value)


@pytest.mark.parametrize(("key", "value"), [
    ("loss.gamma", 0.0), ("loss.gamma", 1.0), ("loss.gamma", -0.1),  # open at both ends
    ("mask.a", 1.0), ("mask.a", -1e-9),  # closed below, open above
    ("train.epochs", 0), ("train.epochs", 1001),  # closed at both ends
    ("mask.scheme", "MS9"),
])
def test_out_of_range_is_rejected(key, value):
    assert f"'{key}'" in error_of(check, key, value)


@pytest.mark.parametrize(("key", "expected"), [
    ("train.amp", "expected true or false"),
    ("train.epochs", "expected an integer in [1, 1000]"),
    ("loss.gamma", "expected a number in (0, 1)"),
    ("mask.a", "expected a number in [0, 1)"),
    ("mask.fill", "expected a number,"),
    ("mask.scheme", "expected one of MS1, MS4"),
    ("model.layers", "expected a string"),
])
def test_error_names_the_key_and_what_was_expected(key, expected):
    message = error_of(check, key, object())
    assert message.startswith(f"config key '{key}': ") and expected in message


def test_one_sided_bounds_are_described():
    assert Field(0, "", low=0).expected() == "an integer >= 0"
    assert Field(1.0, "", low=0.0, low_open=True).expected() == "a number > 0"
    assert Field(1.0, "", high=2.0).expected() == "a number <= 2"


# --- Field.parse ---------------------------------------------------------------------------------

@pytest.mark.parametrize(("key", "text", "value"), [
    ("train.amp", "true", True), ("train.amp", " No ", False), ("train.amp", "1", True),
    ("train.epochs", "20", 20), ("train.epochs", "1e2", 100), ("train.epochs", "20.0", 20),
    ("loss.gamma", "0.5", 0.5), ("mask.fill", "-1", -1.0), ("mask.fill", "0", 0.0),
    ("mask.scheme", "MS1", "MS1"), ("model.layers", "4,M", "4,M"),
])
def test_parse_gives_the_field_type(key, text, value):
    parsed = parse(key, text)
    assert parsed == value and type(parsed) is type(value)


@pytest.mark.parametrize(("key", "text"), [
    ("train.amp", "maybe"), ("train.epochs", "2.5"), ("train.epochs", "ten"), ("train.epochs", "0"),
    ("loss.gamma", "1"), ("loss.gamma", "nan"), ("mask.fill", "inf"), ("mask.scheme", "ms1"),
])
def test_parse_rejects_bad_text(key, text):
    message = error_of(parse, key, text)
    assert f"'{key}'" in message and "expected" in message


# --- check_keys / complete_config ----------------------------------------------------------------

def test_complete_config_starts_from_the_defaults():
    assert complete_config(FIELDS) == {key: field.default for key, field in FIELDS.items()}


def test_complete_config_later_layers_win():
    config = complete_config(FIELDS, {"train.epochs": 2, "loss.gamma": 0.5}, {"train.epochs": 3})
    assert config["train.epochs"] == 3 and config["loss.gamma"] == 0.5
    assert config["mask.scheme"] == "MS4"  # untouched keys keep their defaults
    assert set(config) == set(FIELDS)


def test_complete_config_converts_values_to_their_field_types():
    config = complete_config(FIELDS, {"mask.fill": 0, "train.epochs": 5.0})
    assert type(config["mask.fill"]) is float and type(config["train.epochs"]) is int


def test_complete_config_checks_every_layer():
    message = error_of(complete_config, FIELDS, {"loss.gamma": 0.5}, {"loss.gamma": 1.5})
    assert "'loss.gamma'" in message and "1.5" in message


def test_unknown_key_lists_the_known_keys():
    message = error_of(complete_config, FIELDS, {"loss.gama": 0.5})
    assert "unknown config key 'loss.gama'" in message
    assert all(key in message for key in FIELDS)


def test_check_keys_keeps_a_partial_config_partial():
    checked = check_keys({"mask.fill": 0}, FIELDS)
    assert checked == {"mask.fill": 0.0} and type(checked["mask.fill"]) is float


# --- parse_assignment ----------------------------------------------------------------------------

@pytest.mark.parametrize(("text", "pair"), [
    ("loss.gamma=0.5", ("loss.gamma", 0.5)),
    (" loss.gamma = 0.5 ", ("loss.gamma", 0.5)),
    ("model.layers=4,M,8", ("model.layers", "4,M,8")),
    ("mask.scheme=MS1", ("mask.scheme", "MS1")),
])
def test_parse_assignment(text, pair):
    assert parse_assignment(text, FIELDS) == pair


@pytest.mark.parametrize("text", ["loss.gamma", "loss.gamma 0.5", "=0.5", ""])
def test_parse_assignment_without_key_or_equals_says_key_value(text):
    assert "key=value" in error_of(parse_assignment, text, FIELDS)


def test_parse_assignment_unknown_key_lists_known_keys():
    message = error_of(parse_assignment, "loss.gama=0.5", FIELDS)
    assert "'loss.gama'" in message and "loss.gamma" in message and "mask.scheme" in message


@pytest.mark.parametrize("text", ["loss.gamma=x", "loss.gamma=1.5", "loss.gamma="])
def test_parse_assignment_bad_value_names_the_key(text):
    message = error_of(parse_assignment, text, FIELDS)
    assert message.startswith("config key 'loss.gamma': expected a number in (0, 1)")
