"""One conformance test over every registered model (timm's tests/test_models.py shape, STYLE.md),
plus the exact parameter counts of MODELS.md parts A and B, the HED models' quirk options and the
registry's error messages."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

import models
from models.binned import bin_rows, majority_vote
from models.registry import OUTPUTS, model_options

# Small sizes so the conformance test runs in seconds; a model not listed here is built with the
# defaults below and its own paper defaults (keep new models small enough for that, or add a row).
SMALL_DEFAULTS = {"num_classes": 5, "length": 64}
BINARY = {"num_classes": 1}  # the HED models (part B) have one sigmoid output
SMALL_OPTIONS: dict[str, dict] = {
    "teanet_unet": {"depth": 3, "base_channels": 4, "kernel": 5},
    "lenet_ir": {"layers": "4,4,M", "kernel": 5},
    "lenet_usgs": {"layers": "4,4,M,8,8,M", "kernel": 5, "hidden": 32},
    "fcnn_1d": {**BINARY, "widths": "16,8"},
    "cnn": {**BINARY, "length": 128, "channels": "4,4,2"},  # three unpadded convs + pools need > 64
    "msresnet": {**BINARY, "length": 1024, "planes": "4,4,2", "stem": 4},  # stem + 3 stride-2 blocks
    "lstm": {**BINARY, "embed": 16, "hidden": 16},
    "transformer": {**BINARY, "d_model": 16, "heads": 2, "ff": 16},
    "sc_attention": {**BINARY, "channels": "8,4", "heads": 2, "embed": 16, "ff": 32},
    "sct_attention": {**BINARY, "channels": "8,4", "heads": 2, "embed": 16, "ff": 32, "temporal_heads": 2},
    "binned_fcnn": {**BINARY, "bins": 3, "hidden": 8},
}
BATCH = 16


def small_options(name: str) -> dict:
    return {**SMALL_DEFAULTS, **SMALL_OPTIONS.get(name, {})}


def small_model(name: str) -> nn.Module:
    return models.create_model(name, **small_options(name))


def sample_input(name: str, options: dict, batch: int = BATCH) -> torch.Tensor:
    """A batch the model takes: spectra (batch, length), except binned_fcnn, whose rows hold a
    (2-theta, intensity) pair per bin, (batch, 2 * bins) (MODELS.md B5.8)."""
    if name == "binned_fcnn":
        return torch.rand(batch, 2 * options["bins"])
    return torch.rand(batch, options["length"])


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
    options = small_options(name)
    model = models.create_model(name, **options)
    assert model.output in OUTPUTS
    assert {"num_classes", "length"} <= set(model_options(name))
    num_classes = options["num_classes"]
    x = sample_input(name, options)
    y = torch.arange(BATCH) % max(num_classes, 2)  # a sigmoid model's labels are y % 2

    out = model(x)
    expected = (BATCH, x.shape[1]) if models.model_kind(name) == "reconstructor" else (BATCH, num_classes)
    assert out.shape == expected and out.dtype == torch.float32
    assert torch.isfinite(out).all()
    if model.output == "softmax":
        torch.testing.assert_close(out.sum(dim=1), torch.ones(BATCH))
    if model.output == "sigmoid":
        assert num_classes == 1 and ((out >= 0) & (out <= 1)).all()

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


HED = {"num_classes": 1, "length": 4023}


@pytest.mark.parametrize(
    ("name", "options", "expected"),
    [
        ("teanet_unet", {}, 11_367_281),  # A3: = 43.36 MiB of fp32 weights (paper Table 6)
        ("teanet_unet", {"keep_unused_linear": True}, 11_418_531),
        ("lenet_ir", {"num_classes": 430}, 3_528_798),  # A4, RRUFF-IR
        ("lenet_ir", {"num_classes": 855}, 7_010_823),  # A4, ReLab
        ("lenet_usgs", {"num_classes": 212}, 17_858_156),  # A5, 5-block default
        ("lenet_usgs", {"num_classes": 212, "layers": "16,16,M,32,32,M,64,64,M"}, 17_192_300),
        # Part B (HED), at the spectrum length 4023 (B1); the values of Table 1 (B7).
        ("fcnn_1d", HED, 1_204_335),  # B5.1
        ("cnn", HED, 23_307),  # B5.2, Appendix C (flatten 496)
        ("msresnet", HED, 2_354_535),  # B5.3, as counted: with the dead Linear(4023 -> 512)
        ("msresnet", {**HED, "keep_unused_linear": False}, 294_247),  # B5.3, effective
        ("lstm", HED, 6_273_391),  # B5.4
        ("transformer", HED, 1_830_511),  # B5.5
        ("sc_attention", HED, 659_525),  # B5.6, = the checkpoint's tensors
        ("sct_attention", HED, 1_953_353),  # B5.7: 659,525 + 1,030,656 + 263,168 + 4
        ("sc_attention", {**HED, "ffn": "bypassed"}, 659_525),  # B5.6 step 8: the skipped block counts
        ("sct_attention", {**HED, "ffn": "bypassed"}, 1_953_353),
        *[("binned_fcnn", {**HED, "bins": bins}, 1058 * bins + 1) for bins in (1, 11, 16)],  # B5.8
    ],
)
def test_paper_parameter_counts(name: str, options: dict, expected: int) -> None:
    model = models.create_model(name, **{"length": 1024, **options})  # TeaNet counts at length 1024
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


# --- HED models (MODELS.md part B) -------------------------------------------------------------------

HED_MODELS = ["fcnn_1d", "cnn", "msresnet", "lstm", "transformer", "sc_attention", "sct_attention",
              "binned_fcnn"]
PAPER_ROWS, COLUMNS = 1581, 51  # B2: X2 = 31 originals x 51 blocks, reshaped to (31, 51) (B5.4)


@pytest.mark.parametrize("name", HED_MODELS)
def test_hed_models_are_binary(name: str) -> None:
    model = small_model(name)
    assert model.output == "sigmoid" and model_options(name)["num_classes"] == 1
    with pytest.raises(ValueError, match="binary"):
        models.create_model(name, num_classes=2)


def test_derived_widths_at_4023() -> None:
    # B5.3: the streams end at 126/121/116 and pool by 16/11/6 to 8 x 111 = 888.
    resnet = models.create_model("msresnet", keep_unused_linear=False)
    assert [stream[-1].kernel_size for stream in resnet.streams] == [(16,), (11,), (6,)]
    assert resnet.head[0].normalized_shape == (888,)
    # B5.6: the convs leave (8, 500), embedded by Linear(500 -> 256).
    assert models.create_model("sc_attention").branch.embedding[0].in_features == 500


def test_fcnn_paper_init_has_mean_one_weights() -> None:
    linears = [m for m in models.create_model("fcnn_1d").modules() if isinstance(m, nn.Linear)]
    assert len(linears) == 4
    for linear in linears:  # B5.1 quirk: N(1.0, 0.02), biases 0
        assert abs(linear.weight.mean().item() - 1.0) < 0.01
        assert abs(linear.weight.std().item() - 0.02) < 0.005
        assert not linear.bias.any()
    default = models.create_model("fcnn_1d", init="default", length=64)
    assert all(abs(m.weight.mean().item()) < 0.05 for m in default.modules() if isinstance(m, nn.Linear))
    with pytest.raises(ValueError, match="init"):
        models.create_model("fcnn_1d", init="xavier")


@torch.no_grad()
def test_lstm_paper_sequences_are_row_major() -> None:
    torch.manual_seed(0)
    model = models.create_model("lstm", length=8, embed=4, hidden=4, layers=1, sequence="paper").train()
    x = torch.rand(PAPER_ROWS, 8)
    out = model(x)
    # B5.4: (1581, L) -> (31 batch, 51 time), sequence a = rows a*51 ... a*51 + 50; back to row order.
    core = model.head(model.lstm(model.embed(x).reshape(31, COLUMNS, -1))[0]).reshape(PAPER_ROWS, 1)
    torch.testing.assert_close(out, core)
    with pytest.raises(ValueError, match="sequence_length"):
        model(x[:349])  # a training batch must fold into sequences of 51

    # A test batch (eval mode, or test=True in train mode) is length-1 sequences, as per_spectrum.
    test = model(x[:349], test=True)
    model.sequence = "per_spectrum"
    torch.testing.assert_close(test, model(x[:349]))
    torch.testing.assert_close(model.eval()(x[:349]), test)
    assert not torch.allclose(out, model.train()(x))  # per_spectrum differs from the paper's sequences


@torch.no_grad()
def test_transformer_paper_sequences() -> None:
    torch.manual_seed(0)
    options = {"length": 8, "d_model": 8, "heads": 2, "ff": 8, "layers": 1, "sequence": "paper"}
    model = models.create_model("transformer", **options).train()
    x = torch.rand(PAPER_ROWS, 8)
    out = model(x)
    # B5.5: (31, 51) read sequence-first, attention over the 31 rows a*51 + b for each b.
    seq = model.embed(x).reshape(31, COLUMNS, -1)
    torch.testing.assert_close(out, model.head(model.encoder(model.position(seq))).reshape(PAPER_ROWS, 1))
    changed = x.clone()
    changed[0] = torch.rand(changed.shape[1])  # not a constant shift: the input LayerNorm removes it
    moved = (model(changed) - out).abs().view(-1)
    assert moved[COLUMNS] > 0 and moved[1] == 0  # row 51 shares row 0's sequence, row 1 does not


@torch.no_grad()
@pytest.mark.parametrize("name", ["transformer", "sct_attention"])
def test_paper_mode_is_transductive_at_test(name: str) -> None:
    # B5.5: a test batch is ONE sequence, so changing one test spectrum changes the others' outputs;
    # per_spectrum predictions are independent.
    torch.manual_seed(0)
    x = torch.rand(349, 64)
    changed = x.clone()
    changed[0] = torch.rand(changed.shape[1])
    for sequence, coupled in (("paper", True), ("per_spectrum", False)):
        torch.manual_seed(0)
        model = models.create_model(name, **{**small_options(name), "sequence": sequence}).eval()
        moved = (model(changed) - model(x)).abs()[1:]
        assert bool(moved.max() > 1e-6) is coupled, sequence


@torch.no_grad()
def test_sct_paper_training_layout() -> None:
    torch.manual_seed(0)
    model = models.create_model("sct_attention", **{**small_options("sct_attention"), "sequence": "paper"})
    x = torch.rand(PAPER_ROWS, 64)
    assert model.train()(x).shape == (PAPER_ROWS, 1)
    with pytest.raises(ValueError, match="columns"):
        model(x[:100])
    model.eval()  # BatchNorm frozen, so only the attention couples rows: (31, 51) read sequence-first
    changed = x.clone()
    changed[0] = torch.rand(changed.shape[1])
    moved = (model.temporal_branch(changed, test=False) - model.temporal_branch(x, test=False)).abs()
    assert moved[COLUMNS].max() > 0 and moved[1].max() == 0


def attention_pair(name: str) -> tuple[nn.Module, nn.Module]:
    """The same weights with the feed-forward block used and bypassed (B5.6 step 8)."""
    torch.manual_seed(0)
    used = models.create_model(name, **{**small_options(name), "ffn": "used"})
    bypassed = models.create_model(name, **{**small_options(name), "ffn": "bypassed"})
    bypassed.load_state_dict(used.state_dict())
    return used, bypassed


@torch.no_grad()
@pytest.mark.parametrize("name", ["sc_attention", "sct_attention"])
def test_bypassed_ffn_feeds_the_fused_features_to_fc1(name: str) -> None:
    used, bypassed = (model.eval() for model in attention_pair(name))
    x = torch.rand(BATCH, 64)
    assert not torch.allclose(used(x), bypassed(x))
    fused = bypassed.branch(x)
    if name == "sct_attention":
        fused = fused + bypassed.temporal_branch(x, test=None)
    torch.testing.assert_close(bypassed(x), torch.sigmoid(bypassed.fc1(fused.flatten(1))))
    torch.testing.assert_close(used(x), torch.sigmoid(used.fc1(used.ffn(fused).flatten(1))))
    with pytest.raises(ValueError, match="ffn"):
        models.create_model(name, **{**small_options(name), "ffn": "skipped"})


@pytest.mark.parametrize("name", ["sc_attention", "sct_attention"])
def test_bypassed_ffn_gets_no_gradient(name: str) -> None:
    # The published checkpoint's FFN kept its init: no gradient reached it (B5.6 step 8 ⚠).
    for model in attention_pair(name):
        model(torch.rand(BATCH, 64)).sum().backward()
        ffn_grads = [p.grad for p in model.ffn.parameters()]
        assert model.fc1.weight.grad is not None and model.branch.embedding[0].weight.grad is not None
        if model.ffn_mode == "bypassed":
            assert all(grad is None for grad in ffn_grads)
        else:
            assert all(grad is not None and grad.abs().sum() > 0 for grad in ffn_grads)
    used, bypassed = attention_pair(name)
    assert models.count_parameters(used) == models.count_parameters(bypassed)


@pytest.mark.parametrize("name", ["sc_attention", "sct_attention"])
def test_ffn_is_bypassed_only_when_reproducing(name: str) -> None:
    from search_spaces.hed_architectures import STUDY

    key = f"model.{name}.ffn"
    row = next(row for row in STUDY.reproduction if row.label == name)
    assert row.config[key] == "bypassed"
    assert STUDY.grid_config("quick", row, {})[key] == "bypassed"
    assert STUDY.config_for("quick", {"model.name": name})[key] == "used"
    assert model_options(name)["ffn"] == "used"


def test_bin_rows_layout() -> None:
    two_theta = np.arange(10.0, 17.0)  # L = 7, bins = 2: N2 = 3, the last point is dropped
    spectra = np.array([np.arange(7.0), 100 + np.arange(7.0)])
    rows = bin_rows(two_theta, spectra, bins=2)
    expected = [
        [10, 0, 13, 3], [11, 1, 14, 4], [12, 2, 15, 5],  # spectrum 0, ix = 0, 1, 2
        [10, 100, 13, 103], [11, 101, 14, 104], [12, 102, 15, 105],  # spectrum 1
    ]
    np.testing.assert_array_equal(rows, np.array(expected, dtype=np.float32))
    assert rows.dtype == np.float32


def test_majority_vote() -> None:
    # N2 = 4: class 0 iff more than 2 zero-votes; a 2-2 tie is class 1. Probabilities vote by > 0.5.
    votes = np.array([0, 0, 0, 1, 0, 0, 1, 1, 1, 1, 1, 0, 0.2, 0.4, 0.6, 0.1])
    np.testing.assert_array_equal(majority_vote(votes, 4), [0, 1, 1, 0])
    np.testing.assert_array_equal(majority_vote(np.array([0, 0, 1, 1, 1, 0]), 2), [0, 1])  # N2 = 3
    with pytest.raises(ValueError, match="n_spectra"):
        majority_vote(votes, 3)


def test_binned_model_on_bin_rows() -> None:
    model = models.create_model("binned_fcnn", length=64, bins=3, hidden=8)
    rows = torch.from_numpy(bin_rows(np.linspace(10, 20, 64), np.random.rand(5, 64), bins=3))
    assert rows.shape == (5 * 21, 6)
    with torch.no_grad():
        labels = majority_vote(model(rows).numpy(), 5)
    assert labels.shape == (5,) and set(labels) <= {0, 1}
    with pytest.raises(ValueError, match=r"\(rows, 6\)"):
        model(torch.rand(4, 64))  # spectra are not rows


@pytest.mark.parametrize("bins", [0, 65])
def test_bad_bins(bins: int) -> None:
    with pytest.raises(ValueError, match="bins"):
        models.create_model("binned_fcnn", length=64, bins=bins)
    with pytest.raises(ValueError, match="bins"):
        bin_rows(np.arange(64.0), np.zeros((2, 64)), bins=bins)
