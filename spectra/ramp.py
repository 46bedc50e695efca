"""A simulated compression ramp that stands in for the HED data when no files are given (MODELS.md B1;
DESIGN.md "The two source papers").

What it imitates (a (Mg,Fe)O sample in a diamond-anvil cell, X-ray diffraction while pressure rises):

* Pressure rises linearly with time (spectrum index) from ``pressure_start`` to ``pressure_end``. Every
  phase compresses by the Murnaghan equation of state, V/V0 = (1 + K'·P/K0)^(−1/K'), so its d-spacings
  shrink as (V/V0)^(1/3) and its Bragg peaks (2θ = 2·asin(λ / 2d)) move continuously to higher angle.
* The host is cubic rock-salt (B1, a0 = 4.31 Å): reflections 111, 200, 220, 311, 222, 400 (400 enters
  the window only at high pressure).
* The transition has two parts with different time courses, as real ones often do:
  - a rhombohedral distortion of the host, whose degree grows smoothly and is already half-developed
    ``distortion_lead`` spectra *before* the transition: 111/222 split 1:3, 220 and 311 split 1:1, 200
    stays single. While small it only broadens those peaks (a precursor);
  - a new phase whose fraction g(i) = logistic((i − transition + ½) / transition_width) crosses ½
    between spectra ``transition − 1`` and ``transition`` (that is what ``transition`` means: the 0-based
    index of the first class-1 spectrum). Its peaks sit next to the host's 200 (a shoulder), under its
    220, in place of its 311 (which fades out completely), and one alone; the host's peaks weaken as g
    grows. At g ≈ 0.1, ten spectra before the transition, the new peaks are already faintly there.
* Optionally (``second_transition``), a second reaction later in the ramp ends in a third regime: a
  phase C whose fraction h(i) = logistic((i − second_transition + ½) / transition_width) grows while
  every earlier phase (host and new phase alike) fades by 1 − h. Its peaks sit where neither earlier
  phase has one, so its spectra belong to neither class of a two-class study of the first transition
  (what a real heating ramp ending in a third regime looks like; issue 11).
* A stiffer gasket material (K0 = 360 GPa) adds weak peaks that barely move, so host peaks pass them.
* Peak widths (pseudo-Voigt, η = ½) grow with pressure (non-hydrostatic stress); each peak's intensity
  fluctuates slowly from spectrum to spectrum (grain statistics, a log-normal AR(1) process).
* A broad background hump (diamond Compton scattering, air scatter at low angle) that drifts and varies
  with time: several times the strongest peak, and smooth enough for ALS (``remove_baseline``) to take
  it away. Noise is Gaussian plus a counting (Poisson-like) part growing with the signal.

Heights are relative: the host's strongest peak (200) is 1 at the start. Randomness comes from one
generator seeded with ``seed``, drawn in a fixed order whatever the settings' values, so e.g. turning
the background off leaves the peaks and the noise draws unchanged. Phase C's intensity fluctuations
come from a generator of their own, so a ramp with a second transition has the first part's draws.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

_K_PRIME = 4.0  # Murnaghan K' of every phase


@dataclass(frozen=True)
class RampSettings:
    """Size, 2θ window, transition, physics and noise of a simulated ramp."""

    spectra: int = 349  # MODELS.md B1: 349 spectra × 4023 points, 2θ 9.56°–25.55°
    points: int = 4023
    two_theta_low: float = 9.56
    two_theta_high: float = 25.55
    transition: int = 185  # 0-based index of the first class-1 spectrum (MODELS.md B1: div_num)
    second_transition: int = 0  # 0: none; else the first spectrum where phase C (a third regime) leads
    seed: int = 0
    transition_width: float = 4.0  # spectra; logistic scale of the new-phase fraction
    distortion: float = 0.01  # full rhombohedral splitting, as a fraction of d
    distortion_lead: float = 6.0  # spectra before the transition at which the distortion is half-developed
    distortion_width: float = 5.0  # spectra; logistic scale of the distortion
    pressure_start: float = 5.0  # GPa
    pressure_end: float = 60.0
    wavelength: float = 0.4959  # Å (25 keV)
    peak_width: float = 0.05  # FWHM in degrees at pressure_start
    width_growth: float = 0.8  # relative FWHM growth from pressure_start to pressure_end
    texture: float = 0.1  # σ of the slow log-intensity fluctuation of each peak
    background: float = 2.0  # height of the background hump (strongest peak = 1)
    noise: float = 0.02  # Gaussian noise σ
    counting: float = 0.02  # counting noise: σ² = noise² + counting²·signal

    def __post_init__(self) -> None:
        for field, low in (("spectra", 3), ("points", 8), ("seed", 0)):
            value = getattr(self, field)
            _require(_is_int(value) and value >= low, field, f"an integer >= {low}", value)
        n = self.spectra
        ok = _is_int(self.transition) and 0 < self.transition < n
        _require(ok, "transition", f"an integer in 1..{n - 1}", self.transition)
        second = self.second_transition
        ok = _is_int(second) and (second == 0 or self.transition < second < n)
        _require(ok, "second_transition", f"0 (none) or an integer in {self.transition + 1}..{n - 1}",
                 second)
        _require(
            0 < self.two_theta_low < self.two_theta_high < 180,
            "two_theta_high",
            f"a value in ({self.two_theta_low}, 180)",
            self.two_theta_high,
        )
        _require(
            0 <= self.pressure_start < self.pressure_end,
            "pressure_end",
            f"a pressure > pressure_start={self.pressure_start}",
            self.pressure_end,
        )
        for field in ("transition_width", "distortion_width", "peak_width", "wavelength"):
            _require(_positive(getattr(self, field)), field, "a number > 0", getattr(self, field))
        for field in (
            "distortion",
            "distortion_lead",
            "width_growth",
            "texture",
            "background",
            "noise",
            "counting",
        ):
            value = getattr(self, field)
            _require(_positive(value) or value == 0, field, "a number >= 0", value)


def _is_int(value: object) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool)


def _positive(value: object) -> bool:
    return isinstance(value, (int, float, np.number)) and math.isfinite(value) and value > 0


def _require(ok: bool, field: str, expected: str, got: object) -> None:
    if not ok:
        raise ValueError(f"RampSettings.{field}: expected {expected}, got {got!r}")


@dataclass(frozen=True)
class Ramp:
    """A simulated ramp: the pattern series and what made it."""

    two_theta: np.ndarray  # float64 [L], degrees
    intensity: np.ndarray  # float32 [N, L]
    transition: int  # 0-based index of the first class-1 spectrum
    pressure: np.ndarray  # float64 [N], GPa
    new_phase: np.ndarray  # float64 [N], fraction g of the high-pressure phase
    third_phase: np.ndarray | None = None  # float64 [N], fraction h of phase C (None: no second transition)
    transitions: tuple[int, ...] = ()  # every transition in time order (the first spectrum of each regime)


# Host B1 reflections: (h² + k² + l², height, fraction lost when the new phase is complete,
# split components as (relative d offset in units of the distortion, share of the intensity)).
_TRIPLE = ((-1.0, 0.25), (1 / 3, 0.75))
_PAIR = ((-1.0, 0.5), (1.0, 0.5))
_HOST_A0, _HOST_K0 = 4.31, 160.0
_HOST = (
    (3, 0.55, 0.4, _TRIPLE),
    (4, 1.00, 0.3, ((0.0, 1.0),)),
    (8, 0.55, 0.4, _PAIR),
    (11, 0.30, 1.0, ((-0.6, 0.5), (0.6, 0.5))),  # 311 vanishes
    (12, 0.18, 0.5, _TRIPLE),
    (16, 0.12, 0.3, ((0.0, 1.0),)),
)
# New phase: (host reflection it sits by, relative d offset from it at the transition, height).
_NEW_K0 = 200.0
_NEW = ((4, 0.006, 0.45), (8, 0.002, 0.30), (11, -0.004, 0.25), (4, -0.07, 0.20))
# Phase C, the third regime: (host reflection it is placed by, relative d offset at the second
# transition, height); offsets put its peaks clear of the host's and the new phase's.
_THIRD_K0 = 250.0
_THIRD = ((3, 0.035, 0.50), (4, -0.035, 0.60), (8, 0.03, 0.40), (12, -0.025, 0.30), (3, -0.05, 0.25))
# Gasket (hcp rhenium-like): (d0 in Å, height).
_GASKET_K0 = 360.0
_GASKET = ((2.39, 0.12), (2.11, 0.20), (1.38, 0.10))


def _linear_strain(pressure: np.ndarray | float, k0: float) -> np.ndarray:
    """a/a0 under pressure by the Murnaghan equation of state."""
    return (1.0 + _K_PRIME * np.asarray(pressure) / k0) ** (-1.0 / (3.0 * _K_PRIME))


def _logistic(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def _peak_table(settings: RampSettings) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Per spectrum and component [N, K]: d-spacing, height, FWHM factor; and pressure, g [N]."""
    index = np.arange(settings.spectra, dtype=np.float64)
    u = index / (settings.spectra - 1)
    pressure = settings.pressure_start + (settings.pressure_end - settings.pressure_start) * u
    g = _logistic((index - settings.transition + 0.5) / settings.transition_width)
    lead = settings.transition - settings.distortion_lead
    delta = settings.distortion * _logistic((index - lead) / settings.distortion_width)

    host_a = _HOST_A0 * _linear_strain(pressure, _HOST_K0)
    d, height, width = [], [], []
    for hkl2, amp, loss, components in _HOST:
        for offset, share in components:
            d.append(host_a / math.sqrt(hkl2) * (1.0 + offset * delta))
            height.append(amp * share * (1.0 - loss * g))
            width.append(np.ones_like(g))
    # New-phase d-spacings are placed at the transition pressure, then compress with their own K0.
    p_t = pressure[settings.transition]
    a_t = _HOST_A0 * _linear_strain(p_t, _HOST_K0)
    new_strain = _linear_strain(pressure, _NEW_K0) / _linear_strain(p_t, _NEW_K0)
    for hkl2, offset, amp in _NEW:
        d.append(a_t / math.sqrt(hkl2) * (1.0 + offset) * new_strain)
        height.append(amp * g)
        width.append(np.full_like(g, 1.5))  # small new grains: broader peaks
    gasket_strain = _linear_strain(pressure, _GASKET_K0)
    for d0, amp in _GASKET:
        d.append(d0 * gasket_strain)
        height.append(np.full_like(g, amp))
        width.append(np.full_like(g, 1.2))
    return np.stack(d, 1), np.stack(height, 1), np.stack(width, 1), pressure, g


def _third_phase(settings: RampSettings, pressure: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Phase C [N, K_C]: d-spacing and height, and its fraction h [N] (placed at the second
    transition's pressure, then compressed with its own K0)."""
    index = np.arange(settings.spectra, dtype=np.float64)
    h = _logistic((index - settings.second_transition + 0.5) / settings.transition_width)
    p_c = pressure[settings.second_transition]
    a_c = _HOST_A0 * _linear_strain(p_c, _HOST_K0)
    strain = _linear_strain(pressure, _THIRD_K0) / _linear_strain(p_c, _THIRD_K0)
    d = [a_c / math.sqrt(hkl2) * (1.0 + offset) * strain for hkl2, offset, _ in _THIRD]
    height = [amp * h for _, _, amp in _THIRD]
    return np.stack(d, 1), np.stack(height, 1), h


def _texture(rng: np.random.Generator, shape: tuple[int, int], sigma: float) -> np.ndarray:
    """Slow multiplicative intensity fluctuation [N, K]: exp of a unit AR(1) process, correlated over
    ~5 spectra."""
    draws = rng.standard_normal(shape)
    rho = math.exp(-1 / 5)
    walk = np.empty(shape)
    walk[0] = draws[0]
    for i in range(1, shape[0]):
        walk[i] = rho * walk[i - 1] + math.sqrt(1 - rho * rho) * draws[i]
    return np.exp(sigma * walk - sigma * sigma / 2)


def _background(settings: RampSettings, x: np.ndarray, u: np.ndarray, phase: float) -> np.ndarray:
    """Broad hump whose height and centre drift with time, plus air scatter at low angle [N, L]."""
    level = settings.background * (1.0 + 0.15 * (u - 0.5) + 0.08 * np.sin(2 * np.pi * (1.5 * u + phase)))
    centre = 15.5 + 0.8 * u
    hump = np.exp(-0.5 * ((x[None, :] - centre[:, None]) / 4.0) ** 2)
    air = 0.35 * np.exp(-(x - settings.two_theta_low) / 2.5)
    return level[:, None] * (hump + air[None, :])


def simulate_ramp(settings: RampSettings | None = None) -> Ramp:
    """The simulated ramp of ``settings`` (deterministic per settings)."""
    settings = settings or RampSettings()
    rng = np.random.default_rng(settings.seed)
    x = np.linspace(settings.two_theta_low, settings.two_theta_high, settings.points)
    d, height, width_factor, pressure, g = _peak_table(settings)
    n, k = d.shape
    # Fixed draw order, whatever the settings' values: texture, background phase, noise.
    height = height * _texture(rng, (n, k), settings.texture)
    phase = float(rng.uniform())
    unit_noise = rng.standard_normal((n, settings.points))
    third = None
    if settings.second_transition:  # every earlier phase (not the gasket, last) fades as phase C grows
        d_c, height_c, third = _third_phase(settings, pressure)
        own = np.random.default_rng(np.random.SeedSequence(settings.seed, spawn_key=(3,)))
        height_c = height_c * _texture(own, height_c.shape, settings.texture)
        fade = np.ones(k)
        fade[: k - len(_GASKET)] = 0.0
        height = np.concatenate([height * (fade + (1.0 - fade) * (1.0 - third[:, None])), height_c], 1)
        d = np.concatenate([d, d_c], 1)
        width_factor = np.concatenate([width_factor, np.full_like(d_c, 1.3)], 1)
        k = d.shape[1]

    ratio = np.clip(settings.wavelength / (2.0 * d), 0.0, 1.0)
    centre = np.degrees(2.0 * np.arcsin(ratio))  # [N, K]
    u = np.arange(n) / (n - 1)
    fwhm = settings.peak_width * (1.0 + settings.width_growth * u)[:, None] * width_factor
    signal = np.zeros((n, settings.points))
    for j in range(k):  # one component at a time keeps memory at [N, L]
        offset = (x[None, :] - centre[:, j, None]) / (fwhm[:, j, None] / 2.0)
        sq = offset * offset
        signal += height[:, j, None] * (0.5 / (1.0 + sq) + 0.5 * np.exp(-math.log(2.0) * sq))
    signal += _background(settings, x, u, phase)
    sigma = np.sqrt(settings.noise**2 + settings.counting**2 * np.maximum(signal, 0.0))
    intensity = (signal + sigma * unit_noise).astype(np.float32)
    transitions = (settings.transition, *((settings.second_transition,) if third is not None else ()))
    return Ramp(two_theta=x, intensity=intensity, transition=settings.transition, pressure=pressure,
                new_phase=g, third_phase=third, transitions=transitions)
