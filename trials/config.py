"""Flat, typed, validated trial configs (the nanoGPT ``configurator`` idea, made explicit).

A trial's config is one flat dict with dotted keys (``mask.scheme``, ``loss.gamma``, ...). Each trial
type declares its keys once as :class:`Field` s; the default of a field fixes its type. The same
declaration validates a config before any training starts, parses ``--set key=value`` text on the
driver, and gives the MLflow params exactly as the trial saw them.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any


class ConfigError(ValueError):
    """A config key is unknown, of the wrong type or out of range. The message names the key."""


@dataclass(frozen=True)
class Field:
    """One config key: its default (which fixes the type), its allowed values and what it means."""

    default: bool | int | float | str
    help: str
    low: float | None = None
    high: float | None = None
    low_open: bool = False  # True: the bound itself is not allowed, e.g. gamma in (0, 1)
    high_open: bool = False
    choices: tuple[Any, ...] | None = None

    @property
    def kind(self) -> type:
        return type(self.default)

    def expected(self) -> str:
        """Human description of the allowed values, for error messages and ``--show``."""
        if self.choices is not None:
            return "one of " + ", ".join(str(c) for c in self.choices)
        text = {bool: "true or false", int: "an integer", float: "a number", str: "a string"}[self.kind]
        if self.low is not None and self.high is not None:
            left, right = "(" if self.low_open else "[", ")" if self.high_open else "]"
            return f"{text} in {left}{self.low:g}, {self.high:g}{right}"
        if self.low is not None:
            return f"{text} {'>' if self.low_open else '>='} {self.low:g}"
        if self.high is not None:
            return f"{text} {'<' if self.high_open else '<='} {self.high:g}"
        return text

    def check(self, key: str, value: Any) -> bool | int | float | str:
        """Return ``value`` as this field's type, or raise :class:`ConfigError` naming ``key``."""
        value = self._coerce(key, value)
        if self.choices is not None and value not in self.choices:
            raise self._error(key, value)
        if isinstance(value, float) and not math.isfinite(value):
            raise self._error(key, value)
        if self.low is not None and (value < self.low or (self.low_open and value == self.low)):
            raise self._error(key, value)
        if self.high is not None and (value > self.high or (self.high_open and value == self.high)):
            raise self._error(key, value)
        return value

    def parse(self, key: str, text: str) -> bool | int | float | str:
        """Parse command-line text (``--set key=text``) into a checked value."""
        if self.kind is bool:
            lowered = text.strip().lower()
            if lowered not in {"true", "false", "1", "0", "yes", "no"}:
                raise self._error(key, text)
            return self.check(key, lowered in {"true", "1", "yes"})
        if self.kind in (int, float):
            try:
                number = float(text)
            except ValueError:
                raise self._error(key, text) from None
            if self.kind is int and number.is_integer():
                number = int(number)
            return self.check(key, number)
        return self.check(key, text)

    def _coerce(self, key: str, value: Any) -> bool | int | float | str:
        if self.kind is bool:
            if isinstance(value, bool):
                return value
        elif self.kind is int:
            if isinstance(value, int) and not isinstance(value, bool):
                return value
            if isinstance(value, float) and value.is_integer():
                return int(value)
        elif self.kind is float:
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                return float(value)
        elif isinstance(value, str):
            return value
        raise self._error(key, value)

    def _error(self, key: str, value: Any) -> ConfigError:
        return ConfigError(f"config key '{key}': expected {self.expected()}, got {value!r}")


Fields = Mapping[str, Field]


def unknown_key_error(key: str, fields: Fields) -> ConfigError:
    return ConfigError(f"unknown config key '{key}'; known keys: {', '.join(sorted(fields))}")


def check_keys(config: Mapping[str, Any], fields: Fields) -> dict[str, Any]:
    """Check every key of a (possibly partial) config; return it with values in their field types."""
    checked = {}
    for key, value in config.items():
        if key not in fields:
            raise unknown_key_error(key, fields)
        checked[key] = fields[key].check(key, value)
    return checked


def complete_config(fields: Fields, *layers: Mapping[str, Any]) -> dict[str, Any]:
    """The defaults of ``fields`` overlaid by each layer in turn (later wins), every key checked."""
    config = {key: field.default for key, field in fields.items()}
    for layer in layers:
        config.update(check_keys(layer, fields))
    return config


def parse_assignment(text: str, fields: Fields) -> tuple[str, Any]:
    """Parse one ``key=value`` from the command line against ``fields``."""
    key, sep, raw = text.partition("=")
    key = key.strip()
    if not sep or not key:
        raise ConfigError(f"--set expects key=value, got {text!r}")
    if key not in fields:
        raise unknown_key_error(key, fields)
    return key, fields[key].parse(key, raw.strip())
