"""Model registry in timm's shape: ``@register_model`` fills it, ``create_model`` builds by name.

Every factory takes the common keywords ``num_classes`` and ``length`` (a reconstructor accepts and
ignores ``num_classes``) plus the model's own options, each with the paper's default. Every model it
returns takes a float32 batch of shape ``(batch, length)`` and carries an ``output`` attribute saying
what its forward returns (one of :data:`OUTPUTS`), so the trial can pick the matching loss.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass

from torch import nn

KINDS = ("classifier", "reconstructor")

# What a model's forward returns; the trial picks its loss from this.
OUTPUTS = (
    "logits",  # class scores, (batch, num_classes): cross-entropy
    "softmax",  # class probabilities, (batch, num_classes): TeaNet USGS quirk, CE applied to them (A5)
    "sigmoid",  # one probability per sample: binary cross-entropy (HED models, part B)
    "spectrum",  # a reconstruction of the input, (batch, length): reconstruction loss (A6)
)

Factory = Callable[..., nn.Module]


@dataclass(frozen=True)
class _Entry:
    factory: Factory
    kind: str


_REGISTRY: dict[str, _Entry] = {}


class UnknownModelError(KeyError, ValueError):
    """No model is registered under that name (a ``KeyError`` and a ``ValueError``, catch either)."""

    def __str__(self) -> str:  # KeyError would print the message in quotes
        return str(self.args[0])


def register_model(name: str, *, kind: str) -> Callable[[Factory], Factory]:
    """Decorator registering a model factory under ``name``; ``kind`` is one of :data:`KINDS`."""
    if kind not in KINDS:
        raise ValueError(f"model {name!r}: kind must be one of {', '.join(KINDS)}, got {kind!r}")

    def decorator(factory: Factory) -> Factory:
        if name in _REGISTRY:
            raise ValueError(f"model {name!r} is already registered")
        # The trial passes these two to every model, so a factory without them is a bug caught here.
        missing = {"num_classes", "length"} - set(_keyword_defaults(factory))
        if missing:
            raise TypeError(f"model {name!r}: factory must take keyword-only {', '.join(sorted(missing))}")
        _REGISTRY[name] = _Entry(factory, kind)
        return factory

    return decorator


def list_models(kind: str | None = None) -> list[str]:
    """Sorted names of the registered models, optionally only those of one ``kind``."""
    if kind is not None and kind not in KINDS:
        raise ValueError(f"kind must be one of {', '.join(KINDS)}, got {kind!r}")
    return sorted(name for name, entry in _REGISTRY.items() if kind is None or entry.kind == kind)


def _entry(name: str) -> _Entry:
    if name not in _REGISTRY:
        raise UnknownModelError(f"unknown model {name!r}; known models: {', '.join(list_models())}")
    return _REGISTRY[name]


def model_kind(name: str) -> str:
    """``"classifier"`` or ``"reconstructor"``."""
    return _entry(name).kind


def model_options(name: str) -> dict[str, object]:
    """The keyword options of a model's factory with their defaults (the paper's settings)."""
    return _keyword_defaults(_entry(name).factory)


def _keyword_defaults(factory: Factory) -> dict[str, object]:
    params = inspect.signature(factory).parameters.values()
    return {p.name: p.default for p in params if p.kind is p.KEYWORD_ONLY}


def create_model(name: str, **options: object) -> nn.Module:
    """Build the model registered as ``name``; ``options`` override the factory's defaults."""
    entry = _entry(name)
    known = model_options(name)
    for key in options:
        if key not in known:
            raise TypeError(f"model {name!r} has no option {key!r}; options: {', '.join(sorted(known))}")
    model = entry.factory(**options)
    if getattr(model, "output", None) not in OUTPUTS:
        raise TypeError(f"model {name!r} must set .output to one of {', '.join(OUTPUTS)}")
    return model


def count_parameters(model: nn.Module) -> int:
    """Number of trainable parameters (those with ``requires_grad``)."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)
