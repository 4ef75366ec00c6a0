"""Trial periods and durations of a transit search, set by the baseline and the star.

Periods: the grid of Ofir (2014), uniform in ``f**(1/3)`` (``f`` the frequency): for a
circular orbit the transit duty cycle scales as ``f**(2/3)``, so a step of constant phase
drift across the baseline (a fraction ``1 / oversampling`` of a central transit's duration)
is constant in ``f**(1/3)``. This is transitleastsquares' ``period_grid`` (Ofir 2014,
eqs. 5-7) written with the stellar density alone, which is all Kepler's third law needs::

    A = (2 pi)**(2/3) / pi * (3 / (4 pi G rho))**(1/3) / (baseline * oversampling)
    f_k**(1/3) = f_min**(1/3) + k * A / 3,  k = 0, 1, ...  until f_max

Durations: the total duration ``T14`` of a transit on a circular orbit of period ``P`` across a
star of density ``rho``, for impact parameter ``b`` and planet-to-star radius ratio ``k``::

    a / R = (G rho P**2 / (3 pi))**(1/3)
    T14 = P / pi * arcsin( sqrt((1 + k)**2 - b**2) / (a / R) / sin i ),  cos i = b / (a / R)

The longest is ``b = 0`` with the largest planet (radius ratio 0.2, two Jupiter radii around
the Sun), the shortest ``b = impact_max`` with the smallest (0.01, 1.1 Earth radii);
:func:`duration_limits` widens both by ``margin`` (default 25 %: ``T14`` scales as
``rho**(-1/3)``, so this covers a density off by a factor of about 2 either way, or an
eccentricity up to about 0.2). ``impact_max`` is 0.95 by default rather than 1: the transit of
a planet of radius ratio 0.01 at ``b = 1`` lasts 14 % of a central one and is a shallow grazing
dip, at ``b = 0.95`` it lasts 34 % and keeps about a third of the central signal-to-noise
(limb-darkened depth 0.6 of the central one, times the square root of the duration ratio);
searching down to ``b = 1`` costs about twice as much (more, finer bins) for transits that
are hardly detectable. ``impact_max=1`` does it.

Units: periods and durations in days, densities in solar units (1 = the Sun's mean density,
1.41 g/cm3, from the IAU 2015 nominal solar GM and radius), masses and radii in solar units.

References
----------
Ofir (2014), A&A 561, A138; Hippke & Heller (2019), A&A 623, A39 (transitleastsquares);
Seager & Mallen-Ornelas (2003), ApJ 585, 1038 (transit duration).
"""
from __future__ import annotations

import math

import numpy as np

SECONDS_PER_DAY = 86400.0
#: IAU 2015 nominal solar mass parameter GM [m3 s-2] and radius [m].
GM_SUN = 1.3271244e20
R_SUN = 6.957e8
#: G times the Sun's mean density [s-2]: 3 GM / (4 pi R**3).
G_RHO_SUN = 3.0 * GM_SUN / (4.0 * math.pi * R_SUN ** 3)
#: Radius ratios of the smallest and largest planets the durations allow (about 1.1 Earth
#: and 2 Jupiter radii around the Sun).
RADIUS_RATIOS = (0.01, 0.2)
#: Largest impact parameter of the shortest duration.
IMPACT_MAX = 0.95
#: Relative widening of the duration limits.
DURATION_MARGIN = 0.25
#: Phase-drift oversampling of the period grid (transitleastsquares' default).
OVERSAMPLING = 3.0


#: Bounds of what an Ofir grid is made from, for every search that makes one (planet_search and
#: transit_search_bls_reference's fast methods): Ofir's oversampling, the star's density [solar]
#: (a supergiant to a white dwarf), the shortest trial period [d] and the most trial periods. Two
#: years at 25 s with the defaults make a grid of about 90,000 periods; MAX_PERIODS is 20 times
#: that, so that a hostile or mistaken setting fails at once instead of after the task's time.
OVERSAMPLING_RANGE = (0.5, 20.0)
DENSITY_RANGE = (1e-4, 1e7)
PERIOD_MIN_FLOOR = 0.1
MAX_PERIODS = 2_000_000


def check_grid_settings(*, oversampling: float, density: float, period_min: float | None) -> None:
    """ValueError naming the first of the grid's inputs outside its bound (above); the searches
    report it as a parameter error."""
    if not OVERSAMPLING_RANGE[0] <= oversampling <= OVERSAMPLING_RANGE[1]:
        raise ValueError(f"search setting 'oversampling' must be from {OVERSAMPLING_RANGE[0]:g} "
                         f"to {OVERSAMPLING_RANGE[1]:g}, got {oversampling!r}")
    if period_min is not None and period_min < PERIOD_MIN_FLOOR:
        raise ValueError(f"search setting 'period_min' must be at least {PERIOD_MIN_FLOOR:g} d "
                         f"(shorter than any known planet's orbit), got {period_min!r}")
    if not DENSITY_RANGE[0] <= density <= DENSITY_RANGE[1]:
        raise ValueError(f"the star's density must be from {DENSITY_RANGE[0]:g} to "
                         f"{DENSITY_RANGE[1]:g} solar (a supergiant to a white dwarf), got {density:g}")


def check_grid_size(n_periods: int) -> None:
    """ValueError when a grid of ``n_periods`` trial periods is above :data:`MAX_PERIODS`."""
    if n_periods > MAX_PERIODS:
        raise ValueError(f"the period grid would hold {n_periods:,} trial periods (at most "
                         f"{MAX_PERIODS:,}): raise period_min, lower period_max or oversampling")


def grid_size(baseline: float, *, density: float, oversampling: float, period_min: float,
              period_max: float) -> int:
    """Trial periods of :func:`ofir_periods` from ``period_min`` to ``period_max`` [d], without
    making the grid."""
    if not 0 < period_min < period_max:
        return 0
    step = ofir_step(baseline, density, oversampling)
    return int((period_min ** (-1 / 3) - period_max ** (-1 / 3)) / step) + 1


def stellar_density(density: float | None = None, mass: float | None = None,
                    radius: float | None = None) -> float:
    """The star's mean density [solar units] from ``density``, or ``mass`` and ``radius``
    [solar units]; the Sun's (1.0) when none is given.

    Raises ValueError naming a value that is not a positive finite number, or when both a
    density and a mass or radius are given, or only one of mass and radius.
    """
    given = {name: value for name, value in
             (("density", density), ("mass", mass), ("radius", radius)) if value is not None}
    for name, value in given.items():
        if isinstance(value, bool) or not isinstance(value, (int, float, np.number)) \
                or not math.isfinite(value) or value <= 0:
            raise ValueError(f"stellar {name} must be a positive number (solar units), "
                             f"got {value!r}")
    if density is not None:
        if mass is not None or radius is not None:
            raise ValueError("give either the stellar density or its mass and radius, not both")
        return float(density)
    if (mass is None) != (radius is None):
        raise ValueError("the stellar mass and radius go together: give both or neither "
                         f"(got mass={mass!r}, radius={radius!r})")
    if mass is None:
        return 1.0
    assert radius is not None               # given with the mass (checked above)
    return float(mass) / float(radius) ** 3


def semi_major_axis(period, density: float = 1.0):
    """Orbital semi-major axis in stellar radii, ``a / R``, for ``period`` [d] (Kepler's
    third law, circular orbit, planet mass neglected)."""
    seconds = np.asarray(period, dtype=np.float64) * SECONDS_PER_DAY
    return np.cbrt(G_RHO_SUN * density * seconds ** 2 / (3.0 * math.pi))


def transit_duration(period, density: float = 1.0, impact: float = 0.0,
                     radius_ratio: float = 0.0):
    """Total transit duration ``T14`` [d] at ``period`` [d] (see the module documentation);
    0 when the planet misses the star."""
    period = np.asarray(period, dtype=np.float64)
    a = semi_major_axis(period, density)
    chord = math.sqrt(max((1.0 + radius_ratio) ** 2 - impact ** 2, 0.0))
    sin_i = np.sqrt(np.maximum(1.0 - (impact / a) ** 2, 0.0))
    with np.errstate(divide="ignore", invalid="ignore"):
        arg = np.where(sin_i > 0, chord / (a * sin_i), 1.0)
    return period / math.pi * np.arcsin(np.clip(arg, 0.0, 1.0))


def roche_period(density: float = 1.0) -> float:
    """Ofir's shortest period [d]: an orbit at three stellar radii (``f_max``)."""
    return 2.0 * math.pi / math.sqrt(G_RHO_SUN * density / 27.0 * 4.0 * math.pi / 3.0) \
        / SECONDS_PER_DAY


def ofir_step(baseline: float, density: float = 1.0, oversampling: float = OVERSAMPLING) -> float:
    """Ofir's step ``A / 3`` in ``f**(1/3)`` [d**(-1/3)] for a ``baseline`` [d]."""
    if not (math.isfinite(baseline) and baseline > 0):
        raise ValueError(f"the baseline must be a positive number of days, got {baseline!r}")
    if not (math.isfinite(oversampling) and oversampling > 0):
        raise ValueError(f"oversampling must be a positive number, got {oversampling!r}")
    g_rho = G_RHO_SUN * density
    a = (2.0 * math.pi) ** (2.0 / 3.0) / math.pi * (3.0 / (4.0 * math.pi * g_rho)) ** (1.0 / 3.0) \
        / (baseline * SECONDS_PER_DAY * oversampling)
    return a / 3.0 * SECONDS_PER_DAY ** (1.0 / 3.0)


def ofir_periods(baseline: float, *, density: float = 1.0, period_min: float | None = None,
                 period_max: float | None = None, oversampling: float = OVERSAMPLING,
                 min_transits: float = 2.0) -> np.ndarray:
    """Trial periods [d], ascending, uniform in ``f**(1/3)`` with Ofir's step.

    Parameters
    ----------
    baseline : float
        Time from the first to the last sample [d].
    density : float
        Stellar density [solar units].
    period_min, period_max : float, optional
        The range [d]; defaults: :func:`roche_period` and ``baseline / min_transits``. The grid
        starts at ``period_max`` exactly and steps towards shorter periods.
    oversampling : float
        Trial phases per central transit duration of phase drift across the baseline.

    Raises ValueError for an empty range.
    """
    step = ofir_step(baseline, density, oversampling)
    if period_min is None:
        period_min = roche_period(density)
    if period_max is None:
        period_max = baseline / min_transits
    if not (0 < period_min < period_max and math.isfinite(period_max)):
        raise ValueError(f"empty period range {period_min!r} .. {period_max!r} d "
                         f"(baseline {baseline:.6g} d)")
    lo, hi = (1.0 / period_max) ** (1.0 / 3.0), (1.0 / period_min) ** (1.0 / 3.0)
    n = math.floor((hi - lo) / step * (1.0 + 1e-12)) + 1
    cube_root = lo + step * np.arange(n)
    periods = np.clip(1.0 / cube_root[::-1] ** 3, period_min, period_max)
    periods[-1] = period_max                      # exactly, not to the last bit of a cube
    return periods


def duration_limits(periods, density: float = 1.0, *,
                    radius_ratios: tuple[float, float] = RADIUS_RATIOS,
                    impact_max: float = IMPACT_MAX,
                    margin: float = DURATION_MARGIN) -> tuple[np.ndarray, np.ndarray]:
    """(shortest, longest) transit duration [d] at each of ``periods`` [d]: ``T14`` at
    ``b = impact_max`` for the smaller radius ratio, divided by ``1 + margin``, and ``T14`` at
    ``b = 0`` for the larger one, times ``1 + margin`` (at most half the period)."""
    k_min, k_max = radius_ratios
    if not 0 < k_min <= k_max:
        raise ValueError(f"radius_ratios must be 0 < smallest <= largest, got {radius_ratios!r}")
    if not (math.isfinite(margin) and margin >= 0):
        raise ValueError(f"margin must be a number >= 0, got {margin!r}")
    if not (math.isfinite(impact_max) and 0 <= impact_max < 1 + k_min):
        raise ValueError(f"impact_max must be in [0, 1 + smallest radius ratio), "
                         f"got {impact_max!r}")
    periods = np.asarray(periods, dtype=np.float64)
    shortest = transit_duration(periods, density, impact_max, k_min) / (1.0 + margin)
    longest = np.minimum(transit_duration(periods, density, 0.0, k_max) * (1.0 + margin),
                         0.5 * periods)
    return shortest, longest


def duration_grid(shortest: float, longest: float, step: float = 1.1) -> np.ndarray:
    """Durations [d] from ``shortest`` to ``longest`` in ratios of at most ``step``
    (both ends included)."""
    if not 0 < shortest <= longest:
        raise ValueError(f"need 0 < shortest <= longest duration, got {shortest!r}, {longest!r}")
    if not step > 1:
        raise ValueError(f"the duration step must be a ratio > 1, got {step!r}")
    n = max(math.ceil(math.log(longest / shortest) / math.log(step)), 0) + 1
    return shortest * (longest / shortest) ** (np.arange(n) / max(n - 1, 1))
