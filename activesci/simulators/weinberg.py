r"""e+e- -> mu+mu- at tree level: the forward-backward asymmetry and the weak mixing angle.

The physics follows ``PHYSICS.md`` (massless fermions, gamma + Z exchange)::

    dsigma/dcos = pi alpha^2 / (2 s) [C1 (1 + cos^2) + 2 C2 cos]
    C1 = 1 + 2 v^2 Re(chi) + (v^2 + a^2)^2 |chi|^2,   C2 = 2 a^2 Re(chi) + 4 v^2 a^2 |chi|^2
    v = -1/2 + 2 sin2w,  a = -1/2,  chi = kappa s / (s - M_Z^2 + i M_Z Gamma_Z)

with ``kappa = 1 / (4 sin2w (1 - sin2w))`` (convention ``"a"``, the default: sin2w is the single
knob of the Z couplings) or ``kappa = sqrt(2) G_F M_Z^2 / (4 pi alpha)`` (convention ``"b"``:
sin2w enters only through ``v``). The normalised angular density of the true ``z = cos(theta)``
is ``3/8 (1 + z^2) + 3/4 b z`` with ``b = C2 / C1 = 4/3 A_FB``; the
:class:`~activesci.simulators.detector.AngularDetector` then records ``x``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, Literal, TypedDict, Unpack

import numpy as np

from activesci.errors import ShapeError, ValidationError
from activesci.simulators.base import SimulatorBase
from activesci.simulators.detector import AngularDetector
from activesci.spaces import Real, Space
from activesci.typing import Events, check_positive

__all__ = [
    "ALPHA_MZ",
    "ALPHA_THOMSON",
    "GAMMA_Z",
    "GEV2_TO_PB",
    "G_FERMI",
    "M_Z",
    "BornOptions",
    "WeinbergSimulator",
    "born_coefficients",
    "count_asymmetry",
    "cross_section",
    "dsigma_dcos",
    "forward_backward_asymmetry",
    "lineshape_parameters",
]

M_Z = 91.1876  #: Z mass [GeV]
GAMMA_Z = 2.4952  #: Z width [GeV]
ALPHA_THOMSON = 1.0 / 137.036  #: fine-structure constant at q^2 = 0
ALPHA_MZ = 1.0 / 128.9  #: running alpha(M_Z)
G_FERMI = 1.1663787e-5  #: Fermi constant [GeV^-2]
GEV2_TO_PB = 0.3893794e9  #: (hbar c)^2 [pb GeV^2]

_AXIAL2 = 0.25  # a^2 with a = T3 = -1/2
_PHYSICS_NAMES = ("sin2w", "mz", "gamma_z")
_DEFAULTS = {"sin2w": 0.2315, "mz": M_Z, "gamma_z": GAMMA_Z}
_CHUNK = 1 << 15  # events per block: the block's work arrays stay in the CPU cache

Convention = Literal["a", "b"]


class BornOptions(TypedDict, total=False):
    """Keyword options of the Born-level functions; a missing one takes its default.

    Attributes
    ----------
    convention : {"a", "b"}
        How ``kappa`` is set (see the module docstring); default ``"a"``.
    alpha : "thomson", "mz" or float
        Fine-structure constant, default ``"thomson"``: the cross sections' prefactor and,
        with convention ``"b"``, ``kappa``.
    """

    convention: str
    alpha: float | str


def _born_options(convention: str = "a", alpha: float | str = "thomson") -> BornOptions:
    """The :class:`BornOptions` given as keywords, with the defaults filled in.

    Each is checked where it is used; an unknown keyword raises ``TypeError``.
    """
    return {"convention": convention, "alpha": alpha}


def _alpha(alpha: float | str) -> float:
    if alpha == "thomson":
        return ALPHA_THOMSON
    if alpha == "mz":
        return ALPHA_MZ
    if isinstance(alpha, int | float) and 0.0 < alpha < 1.0:
        return float(alpha)
    raise ValidationError(f"alpha must be 'thomson', 'mz' or a number in (0, 1), got {alpha!r}")


def _convention(convention: str) -> Convention:
    if convention not in ("a", "b"):
        raise ValidationError(f"convention must be 'a' or 'b' (see PHYSICS.md), got {convention!r}")
    return convention  # type: ignore[return-value]


def _collapsed(rows: np.ndarray) -> np.ndarray:
    """``rows`` ``(m, k)``, or its first row ``(1, k)`` where all rows are equal.

    A calibration asks for the joint score of many events at one ``theta`` and design, in
    repeated rows; the coefficients are then computed once and broadcast.
    """
    return rows[:1] if (rows == rows[:1]).all() else rows


def born_coefficients(
    sin2w: Any,
    sqrt_s: Any,
    mz: Any = M_Z,
    gamma_z: Any = GAMMA_Z,
    *,
    grad: bool = False,
    **options: Unpack[BornOptions],
) -> tuple[np.ndarray, ...]:
    """The coefficients ``C1`` and ``C2`` of the Born angular distribution.

    Parameters
    ----------
    sin2w, sqrt_s, mz, gamma_z : array_like
        Weak mixing angle, centre-of-mass energy [GeV], Z mass and width [GeV]; broadcast.
    grad : bool
        Also return the derivatives with respect to ``(sin2w, mz, gamma_z)``.
    **options : BornOptions
        ``convention`` and ``alpha`` (used by convention ``"b"`` only).

    Returns
    -------
    C1, C2 : numpy.ndarray
        Broadcast shape of the inputs.
    dC1, dC2 : numpy.ndarray
        Only with ``grad=True``: shape ``(..., 3)``.
    """
    born = _born_options(**options)
    s2, rs, m, g = np.broadcast_arrays(
        *(np.asarray(v, dtype=float) for v in (sin2w, sqrt_s, mz, gamma_z))
    )
    s = rs * rs
    v = 2.0 * s2 - 0.5
    vv = v * v
    w = vv + _AXIAL2
    if _convention(born["convention"]) == "a":
        kappa = 1.0 / (4.0 * s2 * (1.0 - s2))
        dk = (-kappa * (1.0 - 2.0 * s2) / (s2 * (1.0 - s2)), np.zeros_like(s), np.zeros_like(s))
    else:
        kappa = math.sqrt(2.0) * G_FERMI * m * m / (4.0 * math.pi * _alpha(born["alpha"]))
        dk = (np.zeros_like(s), 2.0 * kappa / m, np.zeros_like(s))
    u = s - m * m
    den = u * u + (m * g) ** 2
    re = kappa * s * u / den  # Re(chi)
    ab2 = kappa * kappa * s * s / den  # |chi|^2
    c1 = 1.0 + 2.0 * vv * re + w * w * ab2
    c2 = 2.0 * _AXIAL2 * re + 4.0 * vv * _AXIAL2 * ab2
    if not grad:
        return c1, c2
    zero = np.zeros_like(s)
    d_den = (zero, -4.0 * m * u + 2.0 * m * g * g, 2.0 * m * m * g)
    d_vv = (4.0 * v, zero, zero)  # d(v^2) = d(w)
    d_re = [re * (dk[i] / kappa - d_den[i] / den) for i in range(3)]
    d_re[1] = d_re[1] - 2.0 * kappa * s * m / den  # from u = s - m^2
    d_ab2 = [ab2 * (2.0 * dk[i] / kappa - d_den[i] / den) for i in range(3)]
    dc1 = [
        2.0 * d_vv[i] * re + 2.0 * vv * d_re[i] + 2.0 * w * d_vv[i] * ab2 + w * w * d_ab2[i]
        for i in range(3)
    ]
    dc2 = [
        2.0 * _AXIAL2 * d_re[i] + 4.0 * _AXIAL2 * (d_vv[i] * ab2 + vv * d_ab2[i]) for i in range(3)
    ]
    return c1, c2, np.stack(dc1, axis=-1), np.stack(dc2, axis=-1)


def forward_backward_asymmetry(
    sin2w: Any, sqrt_s: Any, mz: Any = M_Z, gamma_z: Any = GAMMA_Z, **options: Unpack[BornOptions]
) -> np.ndarray:
    """Born-level ``A_FB = 3/4 C2 / C1`` (arguments as :func:`born_coefficients`).

    Examples
    --------
    >>> round(float(forward_backward_asymmetry(0.2315, 91.1876)), 5)
    0.01615
    """
    c1, c2 = born_coefficients(sin2w, sqrt_s, mz, gamma_z, **options)
    return 0.75 * c2 / c1


def cross_section(
    sin2w: Any, sqrt_s: Any, mz: Any = M_Z, gamma_z: Any = GAMMA_Z, **options: Unpack[BornOptions]
) -> np.ndarray:
    """Born-level total cross section ``4 pi alpha^2 / (3 s) C1`` in pb.

    Arguments as :func:`born_coefficients`.

    Examples
    --------
    >>> round(float(cross_section(0.2315, 91.1876, alpha="mz")) / 1000, 2)  # nb at the pole
    1.98
    """
    c1, _ = born_coefficients(sin2w, sqrt_s, mz, gamma_z, **options)
    a = _alpha(_born_options(**options)["alpha"])
    return 4.0 * math.pi * a * a / (3.0 * np.asarray(sqrt_s, dtype=float) ** 2) * c1 * GEV2_TO_PB


def dsigma_dcos(
    cos_theta: Any,
    sin2w: Any,
    sqrt_s: Any,
    mz: Any = M_Z,
    gamma_z: Any = GAMMA_Z,
    **options: Unpack[BornOptions],
) -> np.ndarray:
    """Born-level ``dsigma / dcos(theta)`` in pb; ``theta`` is the e- to mu- angle.

    The other arguments as :func:`born_coefficients`.
    """
    c1, c2 = born_coefficients(sin2w, sqrt_s, mz, gamma_z, **options)
    a = _alpha(_born_options(**options)["alpha"])
    c = np.asarray(cos_theta, dtype=float)
    s = np.asarray(sqrt_s, dtype=float) ** 2
    return math.pi * a * a / (2.0 * s) * (c1 * (1.0 + c * c) + 2.0 * c2 * c) * GEV2_TO_PB


def count_asymmetry(cos_theta: Any) -> tuple[float, float]:
    """Counting estimate ``(F - B) / (F + B)`` and its binomial standard error.

    Examples
    --------
    >>> count_asymmetry([0.5, 0.2, -0.1, 0.9])
    (0.5, 0.4330127018922193)
    """
    c = np.asarray(cos_theta, dtype=float).reshape(-1)
    forward, backward = int((c > 0).sum()), int((c < 0).sum())
    total = forward + backward
    if total == 0:
        return float("nan"), float("nan")
    a = (forward - backward) / total
    return a, math.sqrt(max(1.0 - a * a, 0.0) / total)


def _inverse_cdf(u: np.ndarray, b: Any, work: np.ndarray) -> np.ndarray:
    """Turn uniforms ``u`` (overwritten) into ``z`` with density ``3/8 (1 + z^2) + 3/4 b z``.

    Solves ``F(z) = u`` exactly with Cardano's formula: for ``|b| < 1`` the cubic is monotone
    and ``z = w - (1 - b^2) / w - b`` with ``w = cbrt(h + sign(h) sqrt(h^2 + (1 - b^2)^3))``,
    ``h = 4u - (b - 1)^2 (b + 2)``; the sign choice avoids cancellation. ``b`` is a scalar
    or broadcasts against ``u``; ``work`` is scratch space of ``u``'s shape.
    """
    r = 1.0 - b * b
    u *= 4.0
    u -= (b - 1.0) ** 2 * (b + 2.0)  # u now holds h
    np.multiply(u, u, out=work)
    work += r**3
    np.sqrt(work, out=work)
    np.copysign(work, u, out=work)
    work += u
    np.cbrt(work, out=work)  # w
    np.divide(r, work, out=u)
    u += b
    np.subtract(work, u, out=u)
    return np.clip(u, -1.0, 1.0, out=u)


class WeinbergSimulator(SimulatorBase):
    """Simulator of ``e+e- -> mu+mu-`` events seen by an :class:`AngularDetector`.

    Parameters
    ----------
    parameters : Space, optional
        The free theory parameters, any of ``sin2w``, ``mz``, ``gamma_z`` (others are fixed at
        ``fixed``). Default: ``sin2w`` in ``[0.15, 0.35]`` with a uniform prior.
    designs : Space, optional
        Default: ``sqrt_s`` in ``[20, 210]`` GeV.
    luminosity : float
        Integrated luminosity of one experiment in pb^-1 (sets the expected event count).
    detector : AngularDetector, optional
        Default ``AngularDetector()``; ``AngularDetector.perfect()`` gives truth level.
    convention : {"a", "b"}
        How the Z coupling strength is set (see the module docstring).
    alpha : "thomson", "mz" or float
        Fine-structure constant; ``"mz"`` (1/128.9) gives cross sections close to measured ones.
    fixed : mapping, optional
        Values of the non-free physics parameters (defaults: PDG ``mz``, ``gamma_z``).

    Examples
    --------
    >>> import numpy as np
    >>> sim = WeinbergSimulator()
    >>> events = sim.sample({"sin2w": 0.2315}, {"sqrt_s": 91.19}, np.random.default_rng(0), n=5)
    >>> events.x.shape, sorted(sim.capabilities)[:2]
    ((5, 1), ['expected_count', 'joint_log_prob'])
    """

    feature_names = ("cos_theta",)
    latent_names = ("cos_theta_true",)

    def __init__(
        self,
        parameters: Space | None = None,
        designs: Space | None = None,
        *,
        luminosity: float = 1.0,
        detector: AngularDetector | None = None,
        convention: str = "a",
        alpha: float | str = "thomson",
        fixed: dict[str, float] | None = None,
    ) -> None:
        self.parameters = parameters or Space([Real("sin2w", 0.15, 0.35, label="sin²θ_W")])
        self.designs = designs or Space([Real("sqrt_s", 20.0, 210.0, unit="GeV", label="√s")])
        unknown = [n for n in self.parameters.names if n not in _PHYSICS_NAMES]
        if unknown:
            raise ValidationError(
                f"unknown Weinberg parameter(s) {unknown}; expected names from {_PHYSICS_NAMES}"
            )
        if self.designs.names != ["sqrt_s"]:
            raise ValidationError(f"the design space must be ['sqrt_s'], got {self.designs.names}")
        self._check_physical()
        self.luminosity = check_positive(luminosity, "luminosity")
        self.detector = detector if detector is not None else AngularDetector()
        self.convention = _convention(convention)
        self.alpha = _alpha(alpha)
        self.fixed = dict(_DEFAULTS)
        for name, value in (fixed or {}).items():
            if name not in _PHYSICS_NAMES:
                raise ValidationError(
                    f"unknown fixed parameter {name!r}; expected {_PHYSICS_NAMES}"
                )
            self.fixed[name] = float(value)
        self._columns = [
            self.parameters.names.index(n) if n in self.parameters.names else None
            for n in _PHYSICS_NAMES
        ]

    def _check_physical(self) -> None:
        limits = {"sin2w": (0.0, 1.0), "mz": (0.0, math.inf), "gamma_z": (0.0, math.inf)}
        limits["sqrt_s"] = (0.0, math.inf)
        for space in (self.parameters, self.designs):
            for d in space:
                lo, hi = limits[d.name]
                if not (lo < d.bounds[0] and d.bounds[1] < hi):
                    raise ValidationError(
                        f"{d.name} range {list(d.bounds)} is unphysical; "
                        f"it must lie inside ({lo}, {hi})"
                    )

    def __repr__(self) -> str:
        return (
            f"WeinbergSimulator(parameters={self.parameters.names}, luminosity={self.luminosity}, "
            f"detector={self.detector!r}, convention={self.convention!r}, alpha={self.alpha:.6g})"
        )

    # -- physics on validated rows ------------------------------------------------------------
    def _physics(self, theta: np.ndarray) -> list[np.ndarray]:
        return [
            theta[:, col] if col is not None else np.full(len(theta), self.fixed[name])
            for name, col in zip(_PHYSICS_NAMES, self._columns, strict=True)
        ]

    def _coefficients(
        self, theta: np.ndarray, design: np.ndarray, grad: bool = False
    ) -> tuple[np.ndarray, ...]:
        s2, mz, gz = self._physics(theta)
        return born_coefficients(
            s2, design[:, 0], mz, gz, convention=self.convention, alpha=self.alpha, grad=grad
        )

    def _b_and_grad(self, theta: np.ndarray, design: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``b = C2 / C1`` and its gradient in the free parameters, shape ``(m, P)``."""
        c1, c2, dc1, dc2 = self._coefficients(theta, design, grad=True)
        b = c2 / c1
        db = (dc2 - b[:, None] * dc1) / c1[:, None]
        free = [i for i, col in enumerate(self._columns) if col is not None]
        order = np.argsort([self._columns[i] for i in free])
        return b, db[:, np.array(free)[order]]

    @staticmethod
    def _truth_polynomial(b: np.ndarray) -> np.ndarray:
        """Coefficients of the normalised truth density in ``1, z, z^2``: shape ``(m, 3)``."""
        return np.stack([np.full_like(b, 0.375), 0.75 * b, np.full_like(b, 0.375)], axis=1)

    # -- sampling -----------------------------------------------------------------------------
    def _sample(
        self, theta: np.ndarray, design: np.ndarray, n: int, rng: np.random.Generator
    ) -> Events:
        c1, c2 = self._coefficients(theta, design)
        b = c2 / c1
        b = float(b[0]) if b.size == 1 else np.broadcast_to(b, (n,))
        z = np.empty(n)
        if self.detector.is_perfect:
            self._fill(z, None, b, rng)
            z.flags.writeable = False  # x and z are the same events: share one read-only array
            return Events(x=z[:, None], z=z[:, None])
        x = np.empty(n)
        todo = self._fill(z, x, b, rng)
        while todo.size:  # draw the rejected events again, each with its own b, until recorded
            zz, xx = np.empty(todo.size), np.empty(todo.size)
            again = self._fill(zz, xx, b if np.isscalar(b) else b[todo], rng)
            ok = np.ones(todo.size, dtype=bool)
            ok[again] = False
            z[todo[ok]], x[todo[ok]] = zz[ok], xx[ok]
            todo = todo[again]
        return Events(x=x[:, None], z=z[:, None])

    def _fill(
        self, z: np.ndarray, x: np.ndarray | None, b: Any, rng: np.random.Generator
    ) -> np.ndarray:
        """Draw true ``z`` and reconstructed ``x`` in place, block by block (cache-sized).

        ``b`` is a scalar or one value per row. Returns the indices of events the detector did
        not record; their entries hold rejected draws.
        """
        work, rejected = np.empty(min(_CHUNK, z.size)), []
        for lo in range(0, z.size, _CHUNK):
            hi = min(lo + _CHUNK, z.size)
            bb = b if np.isscalar(b) else b[lo:hi]
            zz = _inverse_cdf(rng.random(out=z[lo:hi]), bb, work[: hi - lo])
            if x is not None:
                xx = self.detector.respond(zz, rng, x[lo:hi])
                np.abs(xx, out=work[: hi - lo])
                rejected.append(lo + np.flatnonzero(work[: hi - lo] > self.detector.acceptance))
        return np.concatenate(rejected) if rejected else np.empty(0, dtype=np.intp)

    # -- capabilities -------------------------------------------------------------------------
    def expected_count(self, theta: Any, design: Any) -> np.ndarray:
        """Mean number of recorded events: ``sigma x luminosity x P(acc)``, shape ``(n,)``."""
        th, de, _ = self.rows(theta, design)
        c1, c2 = self._coefficients(th, de)
        sigma = 4.0 * math.pi * self.alpha**2 / (3.0 * de[:, 0] ** 2) * c1 * GEV2_TO_PB
        p_acc = self._truth_polynomial(c2 / c1) @ self.detector.acceptance_moments
        return sigma * self.luminosity * p_acc

    def _latent(self, z: Any, n_rows: int) -> np.ndarray:
        zz = np.asarray(z, dtype=float)
        if zz.ndim == 2 and zz.shape[1] == 1:
            zz = zz[:, 0]
        if zz.ndim != 1:
            raise ShapeError(f"z must have shape (n, 1) or (n,), got {np.shape(z)}")
        if n_rows not in (1, zz.size):
            raise ShapeError(f"z has {zz.size} rows but theta/design have {n_rows}")
        if not np.isfinite(zz).all() or (np.abs(zz) > 1.0).any():
            raise ValidationError("z = cos(theta_true) must be finite and within [-1, 1]")
        return zz

    def joint_log_prob(self, z: Any, theta: Any, design: Any) -> np.ndarray:
        """``log p(z | theta, design, recorded)``: density of the true angle of a recorded event.

        Equals ``log p(z | theta) + log P(acc | z) - log P(acc | theta)``. The detector term is
        the same for every theta, so differences are the exact joint log ratios. Shape ``(n,)``.
        """
        th, de, n = self.rows(theta, design)
        zz = self._latent(z, n)
        c1, c2 = self._coefficients(th, de)
        poly = self._truth_polynomial(c2 / c1)
        truth = poly[:, 0] * (1.0 + zz * zz) + poly[:, 1] * zz
        with np.errstate(divide="ignore"):
            return (
                np.log(truth)
                + np.log(self.detector.acceptance_probability(zz))
                - np.log(poly @ self.detector.acceptance_moments)
            )

    def joint_score(self, z: Any, theta: Any, design: Any) -> np.ndarray:
        """Gradient of :meth:`joint_log_prob` in the free parameters, shape ``(n, P)``."""
        th, de, n = self.rows(theta, design)
        zz = self._latent(z, n)
        b, db = self._b_and_grad(_collapsed(th), _collapsed(de))
        truth = 0.375 * (1.0 + zz * zz) + 0.75 * b * zz
        moments = self.detector.acceptance_moments
        p_acc = self._truth_polynomial(b) @ moments
        dlog = (zz / truth)[:, None] - (moments[1] / p_acc)[:, None]
        return 0.75 * db * dlog

    def log_likelihood(self, x: Any, theta: Any, design: Any) -> np.ndarray:
        """Exact ``log p(x | theta, design, recorded)`` on a grid: for validation only.

        Parameters
        ----------
        x : array_like
            Recorded ``cos(theta)``, shape ``(n_x, 1)`` or ``(n_x,)``.
        theta : array_like or mapping
            Shape ``(n_theta, P)``, or one point ``(P,)``.
        design : array_like or mapping
            One design, shared by all ``x``.

        Returns
        -------
        numpy.ndarray
            Shape ``(n_theta, n_x)``; ``(n_x,)`` if ``theta`` was one point given as ``(P,)``.
        """
        th, de = self._one_design(theta, design)
        xx = np.asarray(x, dtype=float)
        if xx.ndim == 2 and xx.shape[1] == 1:
            xx = xx[:, 0]
        if xx.ndim != 1:
            raise ShapeError(f"x must have shape (n, 1) or (n,), got {np.shape(x)}")
        if not np.isfinite(xx).all():
            raise ValidationError("x contains NaN or infinite values")
        c1, c2 = self._coefficients(th, np.broadcast_to(de, (len(th), 1)))
        poly = self._truth_polynomial(c2 / c1)
        poly /= (poly @ self.detector.acceptance_moments)[:, None]
        with np.errstate(divide="ignore"):
            out = np.log(poly @ self.detector.basis(xx).T)
        single = np.ndim(theta) == 1 and not isinstance(theta, dict)
        return out[0] if single else out

    def observed_afb(self, theta: Any, design: Any) -> np.ndarray:
        """Forward-backward asymmetry of the *recorded* ``x`` (what the detector measures).

        Acceptance, smearing and charge mis-identification dilute the Born ``A_FB``; counting
        ``x > 0`` against ``x < 0`` estimates this quantity. Shape ``(n,)``.
        """
        th, de, _ = self.rows(theta, design)
        c1, c2 = self._coefficients(th, de)
        poly = self._truth_polynomial(c2 / c1)
        return (
            poly[:, 1]
            * self.detector.forward_backward_moment
            / (poly @ self.detector.acceptance_moments)
        )

    def summary(self, theta: Any, design: Any) -> dict[str, float]:
        """Born-level predictions at one point: cross section [pb], A_FB, expected count."""
        th, de, _ = self.rows(theta, design)
        c1, c2 = self._coefficients(th, de)
        return {
            "cross_section_pb": float(
                4.0 * math.pi * self.alpha**2 / (3.0 * de[0, 0] ** 2) * c1[0] * GEV2_TO_PB
            ),
            "afb_born": float(0.75 * c2[0] / c1[0]),
            "afb_observed": float(self.observed_afb(th, de)[0]),
            "expected_count": float(self.expected_count(th, de)[0]),
        }


def lineshape_parameters(
    sin2w: Sequence[float] = (0.15, 0.35),
    mz: Sequence[float] = (90.0, 92.5),
    gamma_z: Sequence[float] = (2.0, 3.0),
) -> Space:
    """The parameter space of the line-shape task: ``sin2w``, ``mz`` [GeV], ``gamma_z`` [GeV]."""
    return Space(
        [
            Real("sin2w", *sin2w, label="sin²θ_W"),
            Real("mz", *mz, unit="GeV", label="M_Z"),
            Real("gamma_z", *gamma_z, unit="GeV", label="Γ_Z"),
        ]
    )
