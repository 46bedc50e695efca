"""The HED training and test sets (spectra/hed_data.py; MODELS.md B2, B3): order, sizes, noise, errors."""

import numpy as np
import pytest

from spectra.errors import DataError
from spectra.hed_data import (
    PAPER_TRANSITION,
    TrainingSetSettings,
    anchor_indices,
    build_training_set,
    parse_range,
    test_set,
)

N, L = 349, 16
# Spectrum i is constant i: every row of the training set tells which spectrum it came from.
SERIES = np.repeat(np.arange(N, dtype=np.float32)[:, None], L, axis=1)
ORDER = [*range(0, 151, 10), *range(200, 341, 10)]  # MODELS.md B2
CLEAN = SERIES[ORDER].astype(np.float64)  # O, the anchors in training-set order


def test_paper_anchors_are_on_the_pool():
    idx0, idx1 = anchor_indices(TrainingSetSettings(), N)
    assert list(idx0) == list(range(0, 151, 10)) and list(idx1) == list(range(200, 341, 10))
    assert len(idx0) == 16 and len(idx1) == 15
    pool = list(range(0, N, 10))  # 35 spectra; anchors are pool positions 0–15 and 20–34
    assert [pool.index(i) for i in idx0] == list(range(16))
    assert [pool.index(i) for i in idx1] == list(range(20, 35))


def test_sizes_order_and_labels():
    x, y = build_training_set(SERIES, TrainingSetSettings())
    assert x.shape == (1581, L) and y.shape == (1581,)  # 31 originals + 50 · 31 copies
    assert x.dtype == np.float32 and y.dtype == np.float32
    np.testing.assert_array_equal(x[:31], SERIES[ORDER])  # rows 0–30: the clean originals
    np.testing.assert_array_equal(y, np.tile([0.0] * 16 + [1.0] * 15, 51))
    # Row m·31 + j is a copy of spectrum ORDER[j]: noise < 1/6 never reaches the next spectrum's value.
    source = np.floor(x[:, 0]).astype(int).reshape(51, 31)
    assert (source == np.array(ORDER)).all()


def test_noise_is_uniform_non_negative_and_per_point():
    settings = TrainingSetSettings()
    x, _ = build_training_set(SERIES, settings)
    noise = x[31:].astype(np.float64) - np.tile(SERIES[ORDER], (50, 1))
    assert noise.min() >= 0 and noise.max() < settings.noise_scale + 1e-4  # float32 rounding at ~340
    assert noise.mean() == pytest.approx(settings.noise_scale / 2, rel=0.02)
    assert noise.std() == pytest.approx(settings.noise_scale / 12**0.5, rel=0.03)
    assert np.unique(noise[0]).size == L  # independent per point


def test_deterministic_and_blocks_independent_of_copies():
    settings = TrainingSetSettings(copies=5)
    first, again = build_training_set(SERIES, settings)[0], build_training_set(SERIES, settings)[0]
    np.testing.assert_array_equal(first, again)
    fewer = build_training_set(SERIES, TrainingSetSettings(copies=2))[0]
    np.testing.assert_array_equal(fewer, first[: 3 * 31])  # block m does not depend on `copies`
    other = build_training_set(SERIES, TrainingSetSettings(copies=5, seed=1))[0]
    np.testing.assert_array_equal(other[:31], first[:31])
    assert not np.array_equal(other[31:], first[31:])
    blocks = first.reshape(6, 31, L)
    assert not np.array_equal(blocks[1], blocks[2])  # each block draws its own noise


def test_no_copies_and_other_anchors():
    settings = TrainingSetSettings(pool_step=20, class0="20:141:60", class1="260:301:40", copies=0)
    x, y = build_training_set(SERIES, settings)
    np.testing.assert_array_equal(x[:, 0], [20, 80, 140, 260, 300])
    np.testing.assert_array_equal(y, [0, 0, 0, 1, 1])


def copy_noise(copy: int, settings: TrainingSetSettings) -> np.ndarray:
    """u_copy, as the module docstring defines it: noisy block m = copy + 1 draws U[0, noise_scale)
    from ``default_rng(SeedSequence(seed, spawn_key=(m,)))``."""
    rng = np.random.default_rng(np.random.SeedSequence(settings.seed, spawn_key=(copy + 1,)))
    return rng.random((len(ORDER), L)) * settings.noise_scale


def blocks_of(settings: TrainingSetSettings) -> np.ndarray:
    x, y = build_training_set(SERIES, settings)
    np.testing.assert_array_equal(y, np.tile([0.0] * 16 + [1.0] * 15, settings.copies + 1))
    return x.reshape(settings.copies + 1, len(ORDER), L).astype(np.float64)


def test_independent_copies_are_the_clean_block_then_one_draw_each():
    settings = TrainingSetSettings(copies=15)
    assert settings.noise_mode == "independent"  # the intended design is the default (B5.8 [OURS])
    blocks = blocks_of(settings)
    expected = [CLEAN, *(CLEAN + copy_noise(n, settings) for n in range(15))]  # [O, O+u0, …, O+u14]
    np.testing.assert_allclose(blocks, np.array(expected), rtol=0, atol=1e-4)
    np.testing.assert_array_equal(blocks, blocks_of(TrainingSetSettings(copies=15, noise_mode="independent")))


def test_aliased_copies_as_the_binned_notebook_made_them():
    # B5.8 ⚠: "the final 16 blocks are [O+u0, O+u0, O+u0+u1, …, O+u0+u14] (u_n = noise of copy n)".
    settings = TrainingSetSettings(copies=15, noise_mode="aliased")
    blocks = blocks_of(settings)
    u = [copy_noise(n, settings) for n in range(15)]
    assert len(blocks) == 16
    np.testing.assert_array_equal(blocks[0], blocks[1])
    np.testing.assert_allclose(blocks[0], CLEAN + u[0], rtol=0, atol=1e-4)
    for n in range(1, 15):
        np.testing.assert_allclose(blocks[n + 1], CLEAN + u[0] + u[n], rtol=0, atol=1e-4)
    # No clean curve survives: every point of every block carries u0 on top of the original.
    assert all((block - CLEAN).min() > 0 for block in blocks)
    assert (blocks[2:] - CLEAN).mean() == pytest.approx(settings.noise_scale, rel=0.05)  # two draws


def test_aliased_without_copies_draws_nothing():
    blocks = blocks_of(TrainingSetSettings(copies=0, noise_mode="aliased"))
    np.testing.assert_array_equal(blocks, CLEAN[None])


def test_only_the_binned_reproduction_grid_aliases_its_copies():
    from search_spaces import load_study
    from trials.hed_config import training_settings

    bins, architectures = load_study("hed_bins"), load_study("hed_architectures")
    assert bins.reproduction and all(row.config["data.noise_mode"] == "aliased" for row in bins.reproduction)
    grid_config = bins.grid_config("quick", bins.reproduction[0], {})
    assert training_settings(grid_config).noise_mode == "aliased"  # what the trial builds its data from
    assert bins.config_for("quick")["data.noise_mode"] == "independent"  # tuning: the intended design
    for row in architectures.reproduction:  # the 1-D notebooks kept their clean originals (B2)
        assert architectures.grid_config("quick", row, {})["data.noise_mode"] == "independent"


def test_test_set_in_time_order():
    x, y = test_set(SERIES, PAPER_TRANSITION)
    np.testing.assert_array_equal(x, SERIES)
    assert y.dtype == np.float32 and y[184] == 0 and y[185] == 1 and y.sum() == N - 185
    x, y = test_set(SERIES.astype(np.float64))
    assert y is None and x.dtype == np.float32


def _error(call, *args, **kwargs) -> str:
    with pytest.raises(DataError) as caught:
        call(*args, **kwargs)
    assert "\n" not in str(caught.value)
    return str(caught.value)


@pytest.mark.parametrize("text", ["0:151", "0:151:10:1", "a:b:c", "0:151:0", "-10:151:10", "", "0,151,10"])
def test_malformed_range(text):
    message = _error(TrainingSetSettings, class0=text)
    assert (
        message
        == f"TrainingSetSettings.class0: expected start:stop:step (integers >= 0, step >= 1), got {text!r}"
    )
    assert "start:stop:step" in _error(parse_range, text)


def test_overlapping_classes():
    message = _error(TrainingSetSettings, class0="0:211:10")
    assert message.startswith("TrainingSetSettings.class1: expected no spectrum in both classes")
    assert "share spectra 200, 210" in message


def test_empty_class():
    message = _error(TrainingSetSettings, class1="200:200:10")
    assert (
        message
        == "TrainingSetSettings.class1: expected a range that selects at least one spectrum, got '200:200:10'"
    )


@pytest.mark.parametrize("text", ["5:151:10", "0:151:15"])
def test_anchors_off_the_pool(text):
    assert "multiples of pool_step=10" in _error(TrainingSetSettings, class0=text)


def test_anchors_outside_the_series():
    message = _error(build_training_set, SERIES[:300], TrainingSetSettings())
    assert message == (
        "TrainingSetSettings.class1: '200:341:10' reaches spectrum 340, "
        "but the series has 300 spectra (0..299)"
    )


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("pool_step", 0),
        ("copies", -1),
        ("copies", 2.0),
        ("seed", -1),
        ("noise_scale", -0.1),
        ("noise_scale", np.nan),
        ("noise_mode", "accumulated"),
    ],
)
def test_bad_settings_name_the_field(field, value):
    assert _error(TrainingSetSettings, **{field: value}).startswith(f"TrainingSetSettings.{field}: expected")


def test_bad_spectra_and_transition():
    assert "expected an array [N, L]" in _error(build_training_set, SERIES[0], TrainingSetSettings())
    for transition in (0, N, 18.5):
        assert "transition: expected an integer in 1..348" in _error(test_set, SERIES, transition)
