"""A simple, exactly solvable detector for a measured angle ``cos(theta)``.

The detector smears the true ``z = cos(theta)`` with a Gaussian of width ``resolution``, flips
its sign with probability ``misid`` (charge mis-identification swaps mu- and mu+), and records
the event only if the reconstructed ``|x| <= acceptance``. It does not depend on the theory
parameters, which is what makes the simulator's joint likelihood ratio exact ("gold").

For a truth density that is a polynomial ``sum_k c_k z^k`` on ``[-1, 1]`` the density of the
recorded ``x`` is ``sum_k c_k B_k(x) / P(acc)`` with ``P(acc) = sum_k c_k A_k``; both ``B_k``
(moments of a truncated normal) and ``A_k`` (integrals of the normal CDF) are closed forms, so
the exact likelihood costs a few special-function calls per event.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from activesci.errors import ValidationError

__all__ = ["AngularDetector"]

#: Highest power of ``z`` in truth densities the detector knows how to fold.
DEGREE = 2


def _phi(t: np.ndarray) -> np.ndarray:
    return np.exp(-0.5 * t * t) / math.sqrt(2.0 * math.pi)


def _cdf_moment_antiderivatives(u: float) -> np.ndarray:
    """Antiderivatives of ``u^j Phi(u)`` for ``j = 0, 1, 2`` at ``u``."""
    cdf, pdf = 0.5 * math.erfc(-u / math.sqrt(2.0)), _phi(np.float64(u))
    return np.array(
        [
            u * cdf + pdf,
            ((u * u - 1.0) * cdf + u * pdf) / 2.0,
            (u**3 * cdf + (u * u + 2.0) * pdf) / 3.0,
        ]
    )


@dataclass(frozen=True)
class AngularDetector:
    """Acceptance, Gaussian angular resolution and charge mis-identification.

    Parameters
    ----------
    acceptance : float
        Events are recorded if the reconstructed ``|cos(theta)| <= acceptance``; ``0 < a <= 1``.
    resolution : float
        Standard deviation of the Gaussian smearing of ``cos(theta)``; ``0`` for none.
    misid : float
        Probability of reconstructing the wrong charge, which flips the sign of ``cos(theta)``;
        ``0 <= misid < 0.5``.

    Examples
    --------
    >>> det = AngularDetector(acceptance=0.95, resolution=0.02, misid=0.005)
    >>> round(float(det.acceptance_moments[0]) / 2, 4)  # P(acc) for a flat truth density
    0.95
    """

    acceptance: float = 0.95
    resolution: float = 0.02
    misid: float = 0.005
    _moments: np.ndarray = field(init=False, repr=False, compare=False)
    _odd: float = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not 0.0 < self.acceptance <= 1.0:
            raise ValidationError(
                f"acceptance must be in (0, 1] (|cos theta| cut), got {self.acceptance!r}"
            )
        if not (math.isfinite(self.resolution) and 0.0 <= self.resolution <= 1.0):
            raise ValidationError(f"resolution must be in [0, 1], got {self.resolution!r}")
        if not 0.0 <= self.misid < 0.5:
            raise ValidationError(f"misid must be in [0, 0.5), got {self.misid!r}")
        object.__setattr__(self, "_moments", self._compute_moments())
        object.__setattr__(self, "_odd", self._compute_odd_moment())

    @classmethod
    def perfect(cls) -> AngularDetector:
        """A detector that records every event exactly (truth level)."""
        return cls(acceptance=1.0, resolution=0.0, misid=0.0)

    @property
    def is_perfect(self) -> bool:
        """Whether the recorded ``x`` equals the true ``z`` for every event."""
        return self.acceptance == 1.0 and self.resolution == 0.0 and self.misid == 0.0

    # -- sampling -----------------------------------------------------------------------------
    def respond(self, z: np.ndarray, rng: np.random.Generator, out: np.ndarray) -> np.ndarray:
        """Reconstruct the true values ``z`` (1-D) into ``out`` (may not alias ``z``)."""
        if self.resolution > 0.0:
            rng.standard_normal(out=out)
            out *= self.resolution
            out += z
        else:
            out[...] = z
        if self.misid > 0.0:
            out[self._flipped(out.shape[0], rng)] *= -1.0
        return out

    def _flipped(self, n: int, rng: np.random.Generator) -> np.ndarray:
        """Indices of the events whose charge is mis-identified (exact Bernoulli(misid) each).

        The gaps between flipped events are geometric, so this draws about ``n * misid``
        numbers instead of ``n``.
        """
        chunks, last = [], -1
        batch = int(n * self.misid * 1.2) + 16
        while last < n:
            # a gap longer than n ends the sample; capping it keeps the sum from overflowing
            gaps = np.minimum(rng.geometric(self.misid, size=batch), n + 1)
            idx = last + np.cumsum(gaps)
            chunks.append(idx)
            last = int(idx[-1])
        idx = np.concatenate(chunks)
        return idx[idx < n]

    def accepted(self, x: np.ndarray) -> np.ndarray:
        """Boolean mask of the reconstructed values inside the acceptance."""
        return np.abs(x) <= self.acceptance

    # -- exact densities ----------------------------------------------------------------------
    def acceptance_probability(self, z: np.ndarray) -> np.ndarray:
        """Probability that an event with true ``z`` is recorded (``misid`` does not matter)."""
        z = np.asarray(z, dtype=float)
        a, s = self.acceptance, self.resolution
        if s == 0.0:
            return (np.abs(z) <= a).astype(float)
        from scipy import special  # densities only: a simulation step runs without scipy

        return special.ndtr((a - z) / s) - special.ndtr((-a - z) / s)

    @property
    def acceptance_moments(self) -> np.ndarray:
        """``A_k = int_{-1}^{1} z^k P(acc | z) dz`` for ``k = 0..2``, shape ``(3,)``."""
        return self._moments.copy()

    def _cdf_moments(self, c: float) -> np.ndarray:
        """``int_{-1}^{1} z^k P(x_smeared <= c | z) dz`` for ``k = 0..2``, shape ``(3,)``.

        The smeared ``x ~ N(z, resolution^2)``; with ``u = (c - z) / s`` each is a sum of the
        antiderivatives of ``u^j Phi(u)``, in closed form.
        """
        s = self.resolution
        if s == 0.0:
            top = min(max(c, -1.0), 1.0)
            return np.array([(top ** (k + 1) - (-1.0) ** (k + 1)) / (k + 1) for k in range(3)])
        j = _cdf_moment_antiderivatives((c + 1) / s) - _cdf_moment_antiderivatives((c - 1) / s)
        return s * np.array(
            [j[0], c * j[0] - s * j[1], c * c * j[0] - 2 * c * s * j[1] + s * s * j[2]]
        )

    def _compute_moments(self) -> np.ndarray:
        return self._cdf_moments(self.acceptance) - self._cdf_moments(-self.acceptance)

    @property
    def forward_backward_moment(self) -> float:
        """``int sign(x) B_1(x) dx``: recorded forward minus backward for the truth term ``z``.

        The even terms cancel, so a truth density ``sum_k c_k z^k`` is recorded with the
        asymmetry ``c_1 * forward_backward_moment / P(acc)``.
        """
        return self._odd

    def _compute_odd_moment(self) -> float:
        # int_0^a B_1(x) dx = (1 - 2 misid) int z [P(x <= a | z) - P(x <= 0 | z)] dz
        forward = self._cdf_moments(self.acceptance)[1] - self._cdf_moments(0.0)[1]
        return 2.0 * (1.0 - 2.0 * self.misid) * float(forward)

    def basis(self, x: np.ndarray) -> np.ndarray:
        """Density of the recorded ``x`` for each truth monomial ``z^k``, shape ``(n, 3)``.

        ``B_k(x) = [(1 - misid) + misid (-1)^k] * int_{-1}^{1} z^k N(x; z, resolution^2) dz``
        inside the acceptance and 0 outside; not yet divided by the acceptance probability.
        """
        x = np.asarray(x, dtype=float).reshape(-1)
        s = self.resolution
        if s == 0.0:
            inside = np.abs(x) <= 1.0
            b = np.stack([np.ones_like(x), x, x * x], axis=1) * inside[:, None]
        else:
            from scipy import special

            t_lo, t_hi = (-1.0 - x) / s, (1.0 - x) / s
            pdf_lo, pdf_hi = _phi(t_lo), _phi(t_hi)
            m0 = special.ndtr(t_hi) - special.ndtr(t_lo)
            m1 = pdf_lo - pdf_hi
            m2 = m0 + t_lo * pdf_lo - t_hi * pdf_hi
            b = np.stack([m0, x * m0 + s * m1, x * x * m0 + 2 * x * s * m1 + s * s * m2], axis=1)
        sign = np.array([1.0, 1.0 - 2.0 * self.misid, 1.0])
        return b * sign * self.accepted(x)[:, None]
