"""One conformance test over every registered model (timm's tests/test_models.py shape, STYLE.md),
plus the exact parameter counts of MODELS.md part A and the registry's error messages."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import models
from models.registry import OUTPUTS, model_options

# Small sizes so the conformance test runs in seconds; a model not listed here is built with the
# defaults below and its own paper defaults (keep new models small enough for that, or add a row).
SMALL_DEFAULTS = {"num_classes": 5, "length": 64}
SMALL_OPTIONS: dict[str, dict] = {
    "teanet_unet": {"depth": 3, "base_channels": 4, "kernel": 5},
    "lenet_ir": {"layers": "4,4,M", "kernel": 5},
    "lenet_usgs": {"layers": "4,4,M,8,8,M", "kernel": 5, "hidden": 32},
}
BATCH = 16


def small_model(name: str) -> nn.Module:
    return models.create_model(name, **{**SMALL_DEFAULTS, **SMALL_OPTIONS.get(name, {})})


def loss_for(output: str, out: torch.Tensor, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """The loss the trial would use for this kind of ``model.output``."""
    if output in ("logits", "softmax"):  # "softmax": CE on probabilities, as the TeaNet repo does (A5)
        return F.cross_entropy(out, y)
    if output == "sigmoid":
        return F.binary_cross_entropy(out, (y % 2).float().view(-1, 1).expand_as(out))
    return F.mse_loss(out, x)  # "spectrum": reconstruct the input


@pytest.mark.parametrize("name", models.list_models())
def test_model_conformance(name: str) -> None:
    torch.manual_seed(0)
    model = small_model(name)
    assert model.output in OUTPUTS
    assert {"num_classes", "length"} <= set(model_options(name))
    length, num_classes = SMALL_DEFAULTS["length"], SMALL_DEFAULTS["num_classes"]
    x = torch.rand(BATCH, length)
    y = torch.arange(BATCH) % num_classes

    out = model(x)
    expected = (BATCH, length) if models.model_kind(name) == "reconstructor" else (BATCH, num_classes)
    assert out.shape == expected and out.dtype == torch.float32
    assert torch.isfinite(out).all()
    if model.output == "softmax":
        torch.testing.assert_close(out.sum(dim=1), torch.ones(BATCH))

    def loss_now() -> torch.Tensor:
        torch.manual_seed(1)  # the same dropout masks before and after, so only the weights differ
        return loss_for(model.output, model(x), x, y)

    model.train()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    with torch.no_grad():
        before = loss_now()
    for _ in range(5):
        optimizer.zero_grad()
        loss = loss_now()
        loss.backward()
        optimizer.step()
    with torch.no_grad():
        after = loss_now()
    assert torch.isfinite(after) and after < before, f"{name}: loss {before.item():.4f} -> {after.item():.4f}"


@pytest.mark.parametrize(
    ("name", "options", "expected"),
    [
        ("teanet_unet", {}, 11_367_281),  # A3: = 43.36 MiB of fp32 weights (paper Table 6)
        ("teanet_unet", {"keep_unused_linear": True}, 11_418_531),
        ("lenet_ir", {"num_classes": 430}, 3_528_798),  # A4, RRUFF-IR
        ("lenet_ir", {"num_classes": 855}, 7_010_823),  # A4, ReLab
        ("lenet_usgs", {"num_classes": 212}, 17_858_156),  # A5, 5-block default
        ("lenet_usgs", {"num_classes": 212, "layers": "16,16,M,32,32,M,64,64,M"}, 17_192_300),
    ],
)
def test_paper_parameter_counts(name: str, options: dict, expected: int) -> None:
    model = models.create_model(name, length=1024, **options)
    assert models.count_parameters(model) == expected


def test_unet_layer_counts() -> None:
    # MODELS.md A3: "34 trainable conv layers" = 34 Conv1d; the 5 transposed convs are not counted.
    model = models.create_model("teanet_unet")
    assert sum(isinstance(m, nn.Conv1d) for m in model.modules()) == 34
    assert sum(isinstance(m, nn.ConvTranspose1d) for m in model.modules()) == 5


def test_unet_length_not_divisible_by_two_to_the_depth() -> None:
    model = models.create_model("teanet_unet", depth=3, base_channels=4, kernel=5, length=100).eval()
    with torch.no_grad():
        assert model(torch.rand(2, 100)).shape == (2, 100)  # 100 -> 50 -> 25 -> 12, padded back up


def test_unet_too_short_for_depth() -> None:
    with pytest.raises(ValueError, match=r"length=16.*depth=5"):
        models.create_model("teanet_unet", length=16)


def test_usgs_output_modes() -> None:
    assert models.create_model("lenet_usgs").output == "softmax"  # the repo's quirk is the default
    assert models.create_model("lenet_usgs", output="logits", hidden=8, length=64).output == "logits"
    with pytest.raises(ValueError, match="output"):
        models.create_model("lenet_usgs", output="probabilities")


@pytest.mark.parametrize("layers", ["16,16,X", "", "M,M", "16,,M", "-4,M"])
def test_bad_layers_string(layers: str) -> None:
    with pytest.raises(ValueError, match="layers: expected"):
        models.create_model("lenet_usgs", layers=layers, length=64, hidden=8)


def test_unknown_model_lists_known_names() -> None:
    with pytest.raises(KeyError) as info:
        models.create_model("resnet50")
    for name in models.list_models():
        assert name in str(info.value)
    with pytest.raises(ValueError):  # the same error is also a ValueError
        models.model_kind("resnet50")


def test_unknown_option_names_it() -> None:
    with pytest.raises(TypeError, match="'widht'"):
        models.create_model("teanet_unet", widht=2)


def test_registry() -> None:
    assert models.list_models("reconstructor") == ["teanet_unet"]
    assert {"lenet_ir", "lenet_usgs"} <= set(models.list_models("classifier"))
    with pytest.raises(ValueError, match="already registered"):
        models.register_model("lenet_ir", kind="classifier")(lambda *, num_classes, length: nn.Linear(1, 1))
    with pytest.raises(ValueError, match="kind"):
        models.register_model("some_model", kind="detector")

    model = models.create_model("lenet_ir", num_classes=3, length=32, layers="2,M", kernel=3)
    total = models.count_parameters(model)
    model.features.requires_grad_(False)  # frozen parameters are not counted
    assert models.count_parameters(model) == total - sum(p.numel() for p in model.features.parameters())
