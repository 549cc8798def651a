r"""Echo state networks: reservoirs, the echo-state certificate, ridge readouts.

An echo state network (Jaeger 2001) is a fixed random recurrent *reservoir*
whose only trained part is a linear readout. With leak rate ``a``, input
``u``, output feedback ``y`` and bias ``b`` the state update is

.. math::

    x_{t+1} = (1 - a)\,x_t + a \tanh\!\big(W x_t + W_{in} u_{t+1}
              + W_{fb}\, y_t + b\big),

and the readout is ``y_{t+1} = W_out [x_{t+1}; u_{t+1}; 1]``. Arrays are
time-major: ``inputs[t]`` is ``u_{t+1}``, ``teacher[t]`` is ``y_{t+1}`` and
``states[t]`` is ``x_{t+1}``; ``x_0`` and ``y_0`` default to zero.

* :func:`random_esn` samples a reservoir (dense or sparse) and scales it to a
  requested spectral radius ``ρ(W)`` or spectral norm ``σ_max(W)``.
* :func:`echo_state_certificate` checks the contraction condition
  ``(1 − a) + a γ_h σ_max(W) < 1`` (sufficient for the echo state property).
* :func:`fit` harvests teacher-forced states and solves the ridge regression
  for ``W_out`` in closed form; :meth:`ESN.generate` runs freely, feeding its
  own output back.
* Jaeger's Mackey–Glass (τ = 17) 84-step prediction protocol, which drives
  these pieces, is the ``mg17-esn`` experiment's:
  :func:`rnntheory.experiments.mg17.mackey_glass_protocol`.

Examples
--------
>>> import numpy as np
>>> from rnntheory.esn import random_esn, echo_state_certificate, fit
>>> esn = random_esn(50, n_in=1, n_out=1, spectral_radius=0.9, seed=0)
>>> cert = echo_state_certificate(esn)
>>> bool(abs(esn.spectral_radius - 0.9) < 1e-10)
True
>>> t = np.arange(400.0)
>>> u, y = np.sin(t / 5)[:, None], np.sin((t + 1) / 5)[:, None]  # predict one step ahead
>>> result = fit(esn, u, y, washout=100, ridge=1e-8)
>>> bool(result.train_nrmse < 1e-2)
True
"""

from __future__ import annotations

import importlib
import math
import warnings
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import scipy.linalg

from . import _linalg as LA
from ._validation import (
    all_finite,
    as_float_array,
    as_generator,
    check_choice,
    check_int,
    check_real,
    check_seed,
    deprecated_alias,
    frozen_array,
    renamed_arguments,
)

__all__ = [
    "ESN",
    "ESNFit",
    "EchoStateCertificate",
    "Generation",
    "echo_state_certificate",
    "fit",
    "random_esn",
    "ridge_regression",
    "scale_to_spectral_norm",
    "scale_to_spectral_radius",
]

_F64 = np.dtype(np.float64)

def _square(name: str, W: Any) -> np.ndarray:
    W = as_float_array(name, W, ndim=2, dtype=_F64)
    if W.shape[0] != W.shape[1]:
        raise ValueError(f"`{name}` must be square, got shape {W.shape}")
    if W.shape[0] == 0:
        raise ValueError(f"`{name}` must have at least one row, got shape {W.shape}")
    return W


_HALF_MAX = float(np.finfo(np.float64).max) / 2


def _scale(W: np.ndarray, target: float, measure: Any, what: str) -> np.ndarray:
    """``W · target / measure(W)``, computed on ``W`` brought to unit scale by a
    power of two (the factor cancels), so that neither ``measure(W)`` nor the
    ratio overflows or underflows for entries anywhere in float64's range."""
    e = LA.pow2_exponent(W)
    Wp = np.ldexp(W, -e) if e else W
    current = measure(Wp)
    if current == 0.0:
        if target == 0.0:
            return W.copy()
        raise ValueError(
            f"`W` has {what} 0 and cannot be scaled to {target}"
            " (a zero or nilpotent matrix; raise `connectivity`)"
        )
    if target == 0.0:
        return np.zeros_like(W)
    with np.errstate(over="ignore", under="ignore"):
        c = target / current
        R = Wp * c if math.isfinite(c) else Wp
    got = measure(R) if math.isfinite(c) and all_finite(R) else math.inf
    if not np.isfinite(got):
        raise ValueError(
            f"`W` cannot be scaled to {what} {target}: the scaled entries overflow float64"
            f" (largest entry {float(np.max(np.abs(W))):.6g}, {what} {LA.ldexp(current, e):.6g})"
        )
    # Entries near float64's smallest normal numbers have lost digits: the
    # scaled matrix then no longer has the requested measure.
    if got == 0.0 or (np.max(np.abs(R)) < 2.0**-969 and abs(got - target) > 1e-6 * target):
        raise ValueError(
            f"`W` cannot be scaled to {what} {target}: the scaled entries underflow float64"
            f" (the result would have {what} {got:.6g})"
        )
    # one refinement pass absorbs the rounding of the first measurement
    with np.errstate(over="ignore"):
        R = R * (target / got)
    if not np.all(np.isfinite(R)):
        raise ValueError(
            f"`W` cannot be scaled to {what} {target}: the scaled entries overflow float64"
        )
    return R


def scale_to_spectral_radius(W: Any, rho: float) -> np.ndarray:
    """Return ``W · rho / ρ(W)``, whose spectral radius is ``rho``.

    Parameters
    ----------
    W : array_like, shape (n, n)
    rho : float
        The requested spectral radius, ``>= 0``.

    Returns
    -------
    ndarray, shape (n, n)

    Raises
    ------
    ValueError
        If ``ρ(W) = 0`` (nilpotent) and ``rho > 0``.

    Examples
    --------
    >>> W = scale_to_spectral_radius([[0.0, 2.0], [1.0, 0.0]], 0.5)
    >>> round(float(np.max(np.abs(np.linalg.eigvals(W)))), 12)
    0.5
    """
    W = _square("W", W)
    rho = check_real("rho", rho, low=0.0)
    return _scale(W, rho, LA.spectral_radius, "spectral radius")


def scale_to_spectral_norm(W: Any, sigma: float) -> np.ndarray:
    """Return ``W · sigma / σ_max(W)``, whose spectral norm is ``sigma``.

    Examples
    --------
    >>> W = scale_to_spectral_norm([[0.0, 2.0], [1.0, 0.0]], 0.5)
    >>> round(float(np.linalg.norm(W, 2)), 12)
    0.5
    """
    W = _square("W", W)
    sigma = check_real("sigma", sigma, low=0.0)
    return _scale(W, sigma, LA.spectral_norm, "spectral norm")


@dataclass(frozen=True, eq=False)
class Generation:
    """Free-running output of an ESN.

    Attributes
    ----------
    outputs : ndarray, shape (n_steps, n_out)
        ``outputs[t]`` is ``ŷ_{t+1}``, fed back to make ``x_{t+2}``.
    states : ndarray, shape (n_steps, n)
        ``states[t]`` is ``x_{t+1}``.
    """

    outputs: np.ndarray
    states: np.ndarray


@dataclass(frozen=True, eq=False)
class ESN:
    """An echo state network: reservoir, input, feedback, bias, leak, readout.

    Attributes
    ----------
    W : ndarray, shape (n, n)
        Reservoir matrix.
    W_in : ndarray, shape (n, n_in)
        Input weights (``n_in`` may be 0).
    W_fb : ndarray, shape (n, n_out)
        Output-feedback weights (all zero: no feedback).
    b : ndarray, shape (n,)
        Bias.
    leak_rate : float
        Leak rate ``a ∈ (0, 1]`` (1: no leak), the ``1 − α`` of a leaky
        Elman unit's retention ``α`` (Eq. 14). Formerly ``leak``: the keyword
        and the attribute still work for one release, with a
        ``DeprecationWarning``.
    W_out : ndarray, shape (n_out, n + n_in + 1), optional
        Readout on ``[x; u; 1]``; None until trained (see :func:`fit`).

    The ESN owns its arrays: it holds read-only float64 copies of what it was
    given (writing into ``esn.W`` raises ``ValueError``; changing the caller's
    array afterwards does not change the ESN). A changed ESN is a new one:
    ``dataclasses.replace(esn, W=...)``.
    """

    W: np.ndarray
    W_in: np.ndarray
    W_fb: np.ndarray
    b: np.ndarray
    leak_rate: float = 1.0
    W_out: np.ndarray | None = field(default=None)

    def __post_init__(self) -> None:
        W = _square("W", self.W)
        n = W.shape[0]
        W_in = as_float_array("W_in", self.W_in, ndim=2, dtype=_F64)
        W_fb = as_float_array("W_fb", self.W_fb, ndim=2, dtype=_F64)
        b = as_float_array("b", self.b, ndim=1, dtype=_F64)
        for name, arr in (("W_in", W_in), ("W_fb", W_fb), ("b", b)):
            if arr.shape[0] != n:
                raise ValueError(
                    f"`{name}` must have {n} rows (the reservoir size), got shape {arr.shape}"
                )
        leak_rate = check_real("leak_rate", self.leak_rate, low=0.0, high=1.0, low_open=True)
        # the ESN owns read-only copies of its arrays (see the class docstring)
        object.__setattr__(self, "W", frozen_array(W))
        object.__setattr__(self, "W_in", frozen_array(W_in))
        object.__setattr__(self, "W_fb", frozen_array(W_fb))
        object.__setattr__(self, "b", frozen_array(b))
        object.__setattr__(self, "leak_rate", leak_rate)
        if self.W_out is not None:
            W_out = as_float_array("W_out", self.W_out, ndim=2, dtype=_F64)
            want = (W_fb.shape[1], n + W_in.shape[1] + 1)
            if W_out.shape != want:
                raise ValueError(f"`W_out` must have shape {want}, got shape {W_out.shape}")
            object.__setattr__(self, "W_out", frozen_array(W_out))

    @property
    def n_hidden(self) -> int:
        """Reservoir size ``n`` (the hidden size, as every model names it)."""
        return int(self.W.shape[0])

    n_units = deprecated_alias("n_hidden")
    leak = deprecated_alias("leak_rate")

    @property
    def n_in(self) -> int:
        """Input size (0: no external input)."""
        return int(self.W_in.shape[1])

    @property
    def n_out(self) -> int:
        """Output size."""
        return int(self.W_fb.shape[1])

    @property
    def has_feedback(self) -> bool:
        """Whether any output-feedback weight is nonzero."""
        return bool(np.any(self.W_fb != 0))

    @property
    def spectral_radius(self) -> float:
        """``ρ(W)``, the largest eigenvalue modulus."""
        return LA.spectral_radius(self.W)

    @property
    def spectral_norm(self) -> float:
        """``σ_max(W)``, the largest singular value."""
        return LA.spectral_norm(self.W)

    def __repr__(self) -> str:
        return (
            f"ESN(n_hidden={self.n_hidden}, n_in={self.n_in}, n_out={self.n_out}, "
            f"leak_rate={self.leak_rate}, feedback={self.has_feedback}, trained={self.W_out is not None})"
        )

    # ------------------------------------------------------------------ helpers
    def _inputs(self, inputs: Any, T: int | None) -> np.ndarray:
        if inputs is None:
            if self.n_in != 0:
                raise ValueError(f"`inputs` is required: the ESN has n_in={self.n_in}")
            if T is None:  # pragma: no cover - callers always know T
                raise ValueError("`inputs` or a length is required")
            return np.zeros((T, 0))
        u = as_float_array("inputs", inputs, ndim=2, dtype=_F64)
        if u.shape[1] != self.n_in or (T is not None and u.shape[0] != T):
            want = f"({'T' if T is None else T}, {self.n_in})"
            raise ValueError(f"`inputs` must have shape {want}, got shape {u.shape}")
        return u

    def _vec(self, name: str, value: Any, size: int) -> np.ndarray:
        if value is None:
            return np.zeros(size)
        v = as_float_array(name, value, ndim=1, dtype=_F64)
        if v.shape != (size,):
            raise ValueError(f"`{name}` must have shape ({size},), got shape {v.shape}")
        return v

    def _step(self, x: np.ndarray, drive: np.ndarray) -> np.ndarray:
        a = self.leak_rate
        new = np.tanh(self.W @ x + drive)
        return new if a == 1.0 else (1.0 - a) * x + a * new

    def features(self, states: Any, inputs: Any = None) -> np.ndarray:
        """The readout's regressors ``[x_t; u_t; 1]``, shape ``(T, n + n_in + 1)``."""
        X = as_float_array("states", states, ndim=2, dtype=_F64)
        if X.shape[1] != self.n_hidden:
            raise ValueError(f"`states` must have shape (T, {self.n_hidden}), got shape {X.shape}")
        u = self._inputs(inputs, X.shape[0])
        return np.hstack([X, u, np.ones((X.shape[0], 1))])

    def readout(self, states: Any, inputs: Any = None) -> np.ndarray:
        """``W_out [x_t; u_t; 1]`` for every step, shape ``(T, n_out)``.

        Raises
        ------
        ValueError
            When the ESN has no readout yet, and when a readout value leaves
            float64's range (naming ``states`` or ``inputs``, whichever carries
            the larger values): an overflowed output is never returned.
        """
        if self.W_out is None:
            raise ValueError("`esn` has no readout yet: train it with `fit` first")
        Z = self.features(states, inputs)
        with np.errstate(over="ignore", invalid="ignore"):
            out = Z @ self.W_out.T
        if not np.all(np.isfinite(out)):
            n = self.W.shape[0]
            big_x = float(np.max(np.abs(Z[:, :n]), initial=0.0))
            big_u = float(np.max(np.abs(Z[:, n:-1]), initial=0.0))
            name, big = ("inputs", big_u) if big_u > big_x else ("states", big_x)
            raise ValueError(
                f"`{name}` is too large for this readout: W_out [x_t; u_t; 1] leaves float64's "
                f"range (max |{name}| = {big:.3g}); rescale `{name}`"
            )
        return out

    # ------------------------------------------------------------------ running
    def run(
        self, inputs: Any = None, teacher: Any = None, *, x0: Any = None, y0: Any = None,
        n_steps: int | None = None, noise: float = 0.0, seed: Any = None,
    ) -> np.ndarray:
        """Drive the reservoir; with output feedback, teacher-forced.

        Parameters
        ----------
        inputs : array_like, shape (T, n_in), optional
            ``u_1 … u_T`` (omit when ``n_in == 0``; then ``T`` comes from
            ``teacher`` or ``n_steps``).
        teacher : array_like, shape (T, n_out), optional
            ``y_1 … y_T``; ``x_{t+1}`` sees ``y_t`` (``y_0 = y0``). Required
            when the ESN has output feedback.
        x0 : array_like, shape (n,), optional
            Initial state (zeros).
        y0 : array_like, shape (n_out,), optional
            Output fed back into ``x_1`` (zeros).
        n_steps : int, optional
            ``T`` when neither ``inputs`` nor ``teacher`` is given.
        noise : float
            Half-width ``s`` of i.i.d. ``U[−s, s]`` noise added to every state
            after its update (Jaeger's stabiliser for feedback training; 0: none).
            Any finite ``s`` is drawn; a ``ValueError`` names ``noise`` when the
            states it makes leave float64's range.
        seed : int, Generator or None
            Seed for the noise (an int in ``[0, 2**64)``; checked even when
            ``noise`` is 0).

        Returns
        -------
        ndarray, shape (T, n)
            ``states[t] = x_{t+1}``.
        """
        T: int | None = None
        if teacher is not None:
            Y = as_float_array("teacher", teacher, ndim=2, dtype=_F64)
            if Y.shape[1] != self.n_out:
                raise ValueError(
                    f"`teacher` must have shape (T, {self.n_out}), got shape {Y.shape}"
                )
            T = Y.shape[0]
        elif self.has_feedback:
            raise ValueError(
                "`teacher` is required: the ESN has output feedback"
                " (use `generate` to feed back its own outputs)"
            )
        if inputs is None and T is None:
            if n_steps is None:
                raise ValueError("`n_steps` is required when neither `inputs` nor `teacher` is given")
            T = check_int("n_steps", n_steps, minimum=0)
        u = self._inputs(inputs, T)
        T = u.shape[0]
        x = self._vec("x0", x0, self.n_hidden)
        y_prev = self._vec("y0", y0, self.n_out)
        with np.errstate(over="ignore", invalid="ignore"):
            drive = u @ self.W_in.T + self.b
            if teacher is not None:
                fb = np.vstack([y_prev[None, :], Y[:-1]]) @ self.W_fb.T
                drive = drive + fb
        noise = check_real("noise", noise, low=0.0)
        seed = check_seed("seed", seed)
        if not all_finite(drive):
            raise ValueError(
                "`inputs`/`teacher` drive the reservoir beyond float64's range: "
                "W_in u + W_fb y + b overflows (rescale them)"
            )
        states = np.empty((T, self.n_hidden))
        if noise > 0:
            rng = as_generator("seed", seed)
            if noise <= _HALF_MAX:
                nu = rng.uniform(-noise, noise, (T, self.n_hidden))
            else:  # the width 2·noise overflows: draw at half the width and double (exact)
                nu = 2.0 * rng.uniform(-noise / 2, noise / 2, (T, self.n_hidden))
            with np.errstate(over="ignore", invalid="ignore"):
                for t in range(T):
                    x = self._step(x, drive[t]) + nu[t]
                    states[t] = x
            if not all_finite(states):
                raise ValueError(
                    f"`noise` = {noise:.6g} drives the reservoir state beyond float64's range"
                    " (the noise accumulates in the leaky state, and W x grows with it); "
                    "lower `noise`"
                )
        else:
            for t in range(T):
                x = self._step(x, drive[t])
                states[t] = x
        if not all_finite(states):
            raise ValueError(
                "the reservoir state left float64's range: W x overflows for this `W`"
                f" (largest entry {float(np.max(np.abs(self.W))):.6g}); rescale `W`"
            )
        return states

    def generate(
        self, n_steps: int, *, x0: Any, y0: Any, inputs: Any = None
    ) -> Generation:
        """Run freely for ``n_steps``, feeding the readout's output back.

        ``x_{t+1} = (1 − a) x_t + a tanh(W x_t + W_in u_{t+1} + W_fb ŷ_t + b)``,
        ``ŷ_{t+1} = W_out [x_{t+1}; u_{t+1}; 1]``, from ``x_0 = x0`` and
        ``ŷ_0 = y0`` (typically the last teacher-forced state and the last
        teacher value, as :class:`ESNFit` records them).

        Returns
        -------
        Generation
        """
        if self.W_out is None:
            raise ValueError("`esn` has no readout yet: train it with `fit` first")
        n_steps = check_int("n_steps", n_steps, minimum=0)
        u = self._inputs(inputs, n_steps)
        x = self._vec("x0", x0, self.n_hidden)
        y = self._vec("y0", y0, self.n_out)
        W_out_x = self.W_out[:, : self.n_hidden]
        W_out_rest = self.W_out[:, self.n_hidden :]
        outputs = np.empty((n_steps, self.n_out))
        states = np.empty((n_steps, self.n_hidden))
        with np.errstate(over="ignore", invalid="ignore"):
            drive = u @ self.W_in.T + self.b
            rest = np.hstack([u, np.ones((n_steps, 1))]) @ W_out_rest.T
            for t in range(n_steps):
                x = self._step(x, drive[t] + self.W_fb @ y)
                y = W_out_x @ x + rest[t]
                states[t] = x
                outputs[t] = y
        if not (all_finite(outputs) and all_finite(states)):
            raise ValueError(
                "the free run left float64's range: the fed-back output overflows"
                " (the readout `W_out` or the feedback `W_fb` is too large)"
            )
        return Generation(outputs, states)


@renamed_arguments(n_units="n_hidden", leak="leak_rate")
def random_esn(
    n_hidden: int,
    n_in: int = 0,
    n_out: int = 1,
    *,
    spectral_radius: float | None = None,
    spectral_norm: float | None = None,
    connectivity: float = 1.0,
    input_scaling: float = 1.0,
    feedback_scaling: float = 0.0,
    bias_scaling: float = 0.0,
    leak_rate: float = 1.0,
    seed: int | np.random.Generator | None = None,
) -> ESN:
    """Sample a reservoir and scale it.

    Every weight is uniform on ``[−1, 1]`` times its scaling: ``W`` keeps each
    entry with probability ``connectivity`` (1: dense) and is then scaled to
    exactly ``spectral_radius`` (``ρ(W)``) or ``spectral_norm``
    (``σ_max(W)``), exactly one of which must be given; ``W_in`` uses
    ``input_scaling``, ``W_fb`` ``feedback_scaling`` (0: no feedback), ``b``
    ``bias_scaling``.

    Parameters
    ----------
    n_hidden, n_in, n_out : int
        Reservoir, input and output sizes.
    spectral_radius, spectral_norm : float, optional
        The scale of ``W`` (exactly one).
    connectivity : float
        Fraction of nonzero reservoir weights, in ``(0, 1]``.
    input_scaling, feedback_scaling, bias_scaling : float
        Half-widths of the uniform distributions.
    leak_rate : float
        Leak rate ``a ∈ (0, 1]``.
    seed : int, Generator or None
        Seed (an int in ``[0, 2**64)``), or a Generator to draw from.
        (``n_units`` and ``leak`` are the former names of ``n_hidden`` and
        ``leak_rate``; they still work as keywords for one release, with a
        ``DeprecationWarning``.)

    Returns
    -------
    ESN

    Raises
    ------
    ValueError
        On a bad size or scaling; naming ``spectral_radius`` (or
        ``spectral_norm``) when the scaled reservoir cannot carry the target in
        float64 (``5e-324``: its entries would underflow).

    Examples
    --------
    >>> esn = random_esn(30, n_in=2, spectral_norm=0.5, connectivity=0.2, seed=1)
    >>> esn.n_hidden, esn.n_in, esn.n_out, round(esn.spectral_norm, 12)
    (30, 2, 1, 0.5)
    """
    n_hidden = check_int("n_hidden", n_hidden, minimum=1)
    n_in = check_int("n_in", n_in, minimum=0)
    n_out = check_int("n_out", n_out, minimum=1)
    if (spectral_radius is None) == (spectral_norm is None):
        raise ValueError(
            "exactly one of `spectral_radius` and `spectral_norm` must be given,"
            f" got spectral_radius={spectral_radius}, spectral_norm={spectral_norm}"
        )
    connectivity = check_real("connectivity", connectivity, low=0.0, high=1.0, low_open=True)
    input_scaling = check_real("input_scaling", input_scaling, low=0.0)
    feedback_scaling = check_real("feedback_scaling", feedback_scaling, low=0.0)
    bias_scaling = check_real("bias_scaling", bias_scaling, low=0.0)
    rng = as_generator("seed", seed)
    W = rng.uniform(-1.0, 1.0, (n_hidden, n_hidden))
    if connectivity < 1.0:
        W *= rng.random((n_hidden, n_hidden)) < connectivity
    if spectral_radius is not None:
        name, target = "spectral_radius", check_real("spectral_radius", spectral_radius, low=0.0)
    else:
        assert spectral_norm is not None
        name, target = "spectral_norm", check_real("spectral_norm", spectral_norm, low=0.0)
    try:
        if spectral_radius is not None:
            W = scale_to_spectral_radius(W, target)
        else:
            W = scale_to_spectral_norm(W, target)
    except ValueError as exc:  # a target the scaled entries cannot carry (5e-324)
        raise ValueError(
            f"`{name}` = {target!r} is out of reach for the sampled reservoir: {exc}"
        ) from None
    W_in = input_scaling * rng.uniform(-1.0, 1.0, (n_hidden, n_in))
    W_fb = feedback_scaling * rng.uniform(-1.0, 1.0, (n_hidden, n_out))
    b = bias_scaling * rng.uniform(-1.0, 1.0, n_hidden)
    return ESN(W, W_in, W_fb, b, leak_rate)


@dataclass(frozen=True)
class EchoStateCertificate:
    r"""The contraction certificate for the echo state property.

    ``rate = (1 − a) + a γ_h σ_max(W)`` bounds the Lipschitz constant of the
    state map ``x ↦ (1 − a) x + a tanh(W x + c)`` in the Euclidean norm, for
    every drive ``c`` (``tanh`` is ``γ_h = 1``-Lipschitz). ``holds`` is
    ``rate < 1``: then two states driven by the same input sequence approach
    each other at least as ``rate^t`` (the echo state property). With output
    feedback this covers teacher forcing (the fed-back values are inputs);
    free-running generation closes a loop through ``W_out`` it does not bound.
    ``ρ(W) < 1`` is *not* sufficient (non-normal ``W`` can expand), and with
    input it is not necessary either.

    Attributes
    ----------
    rate : float
        ``(1 − a) + a γ_h σ_max(W)``.
    holds : bool
        ``rate < 1``.
    spectral_norm, spectral_radius : float
        ``σ_max(W)`` and ``ρ(W)``.
    leak_rate, gamma_h : float
        ``a`` and ``γ_h`` (1 for tanh). (``leak`` is the former name of
        ``leak_rate``, kept for one release with a ``DeprecationWarning``.)
    """

    rate: float
    holds: bool
    spectral_norm: float
    spectral_radius: float
    leak_rate: float
    gamma_h: float = 1.0

    leak = deprecated_alias("leak_rate")


ESN.__init__ = renamed_arguments(leak="leak_rate")(ESN.__init__)  # type: ignore[method-assign]
EchoStateCertificate.__init__ = renamed_arguments(leak="leak_rate")(  # type: ignore[method-assign]
    EchoStateCertificate.__init__
)


def echo_state_certificate(esn: ESN) -> EchoStateCertificate:
    """Certify the echo state property by contraction (Jaeger 2001; a sufficient condition).

    Parameters
    ----------
    esn : ESN

    Returns
    -------
    EchoStateCertificate

    Examples
    --------
    >>> cert = echo_state_certificate(random_esn(40, spectral_norm=0.9, leak_rate=0.5, seed=0))
    >>> round(cert.rate, 12), cert.holds
    (0.95, True)
    >>> echo_state_certificate(random_esn(40, spectral_radius=0.9, seed=0)).holds
    False
    """
    if not isinstance(esn, ESN):
        raise TypeError(f"`esn` must be an ESN, got {type(esn).__name__}")
    sigma = esn.spectral_norm
    gamma_h = 1.0
    rate = (1.0 - esn.leak_rate) + esn.leak_rate * gamma_h * sigma
    return EchoStateCertificate(
        rate=rate,
        holds=bool(rate < 1.0),
        spectral_norm=sigma,
        spectral_radius=esn.spectral_radius,
        leak_rate=esn.leak_rate,
        gamma_h=gamma_h,
    )


def ridge_regression(
    features: Any, targets: Any, ridge: float, *, solver: str = "lstsq"
) -> np.ndarray:
    r"""Ridge regression in closed form: ``W_outᵀ = (ZᵀZ + λI)⁻¹ ZᵀY``.

    The regulariser ``λ‖W_out‖_F²`` applies to every column, the bias
    column included. ``solver="normal"`` solves the normal equations with
    :func:`scipy.linalg.solve` (``assume_a="pos"``); ``solver="lstsq"``
    (default, better conditioned) uses the SVD ``Z = U diag(s) Vᵀ``:
    ``W_outᵀ = V diag(s/(s² + λ)) UᵀY``, and for ``λ = 0`` the minimum-norm
    least-squares solution of :func:`scipy.linalg.lstsq`.

    Parameters
    ----------
    features : array_like, shape (T, p)
        ``Z``.
    targets : array_like, shape (T, m)
        ``Y``.
    ridge : float
        ``λ >= 0``.
    solver : {"lstsq", "normal"}

    Returns
    -------
    ndarray, shape (m, p)
        ``W_out``.

    Raises
    ------
    ValueError
        On empty ``features``/``targets``, mismatched rows, ``λ < 0``; with
        ``solver="normal"`` when ``ZᵀZ + λI`` is singular (``λ = 0`` and
        linearly dependent features); when ``W_out`` is beyond float64's range.

    Notes
    -----
    ``Z`` and ``Y`` whose entries lie outside ``[2⁻⁴⁰⁰, 2⁴⁰⁰]`` are first
    brought to unit scale by powers of two, ``Z = 2ᵃ Z′`` and ``Y = 2ᵇ Y′``
    (exact); with ``w = 2ᵇ⁻ᵃ v`` the problem becomes
    ``min ‖Z′ v − Y′‖² + λ 4⁻ᵃ ‖v‖²``, so entries anywhere in float64's range
    (``1e300``, subnormals) give the readout to working precision.

    Examples
    --------
    >>> Z = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
    >>> ridge_regression(Z, Z @ np.array([[2.0], [-1.0]]), 0.0).round(12)
    array([[ 2., -1.]])
    """
    Z = as_float_array("features", features, ndim=2, dtype=_F64)
    Y = as_float_array("targets", targets, ndim=2, dtype=_F64)
    if 0 in Z.shape:
        raise ValueError(f"`features` must have at least one row and one column, got shape {Z.shape}")
    if Y.shape[0] != Z.shape[0]:
        raise ValueError(
            f"`targets` must have {Z.shape[0]} rows (one per feature row), got shape {Y.shape}"
        )
    if Y.shape[1] == 0:
        raise ValueError(f"`targets` must have at least one column, got shape {Y.shape}")
    lam = check_real("ridge", ridge, low=0.0)
    check_choice("solver", solver, ("lstsq", "normal"))
    p = Z.shape[1]
    a, b = LA.pow2_exponent(Z), LA.pow2_exponent(Y)
    Zp = np.ldexp(Z, -a) if a else Z
    Yp = np.ldexp(Y, -b) if b else Y
    lam_p = lam
    if a and lam > 0:
        mant, le = math.frexp(lam)
        k = le - 2 * a  # λ 4⁻ᵃ = mant · 2ᵏ
        if k > 1000:
            # λ 4⁻ᵃ exceeds ‖Z′‖² (≤ T p) by a factor 2¹⁰⁰⁰/(T p): v = Z′ᵀY′/(λ 4⁻ᵃ)
            # to that relative accuracy, and w = 2ᵇ⁻ᵃ v.
            return _readout_from((Zp.T @ Yp) / mant, b - a - k)
        lam_p = math.ldexp(mant, k) if k > -1100 else 0.0
    if solver == "normal":
        A = Zp.T @ Zp + lam_p * np.eye(p)
        try:
            v = scipy.linalg.solve(A, Zp.T @ Yp, assume_a="pos")
        except np.linalg.LinAlgError:
            raise ValueError(
                f"`features` give a singular ZᵀZ + λI with `ridge` = {lam} (linearly dependent"
                " columns): use ridge > 0 or solver='lstsq'"
            ) from None
    elif lam_p > 0:
        # w = V diag(s/(s² + λ)) Uᵀ Y from the SVD Z = U diag(s) Vᵀ: the
        # minimiser of ‖Z w − Y‖² + λ‖w‖², accurate for every λ (the stacked
        # system [Z; √λ I] loses digits in Householder QR once √λ ≫ ‖Z‖).
        U, sv, Vt = np.linalg.svd(Zp, full_matrices=False)
        v = Vt.T @ ((sv / (sv * sv + lam_p))[:, None] * (U.T @ Yp))
    else:
        v = scipy.linalg.lstsq(Zp, Yp)[0]
    return _readout_from(np.asarray(v), b - a)


def nrmse(resid: np.ndarray, Y: np.ndarray) -> float:
    """Package-internal (the Mackey–Glass protocol uses it): ``sqrt(mean(resid²) / var(Y))`` without overflow or underflow: both arrays
    are brought to unit scale by powers of two first. A constant ``Y`` gives 0
    for a zero residual and ``inf`` otherwise (the ratio has no finite value)."""
    er = math.frexp(float(np.max(np.abs(resid))))[1] if resid.size else 0
    ey = math.frexp(float(np.max(np.abs(Y))))[1] if Y.size else 0
    num = float(np.sqrt(np.mean(np.ldexp(resid, -er) ** 2)))
    den = float(np.std(np.ldexp(Y, -ey)))
    if den == 0.0:
        return 0.0 if num == 0.0 else math.inf
    return LA.ldexp(num / den, er - ey)


def _readout_from(v: np.ndarray, e: int) -> np.ndarray:
    """``(v · 2**e)ᵀ`` as a C-contiguous array, or a ``ValueError`` if it overflows."""
    with np.errstate(over="ignore", under="ignore"):
        w = np.ldexp(v, e) if e else v
    if not all_finite(w):
        raise ValueError(
            "`targets` are too large relative to `features`: the readout W_out"
            " is beyond float64's range"
        )
    return np.ascontiguousarray(w.T)


@dataclass(frozen=True, eq=False)
class ESNFit:
    """The result of :func:`fit`.

    Attributes
    ----------
    esn : ESN
        The network with its trained ``W_out``.
    states : ndarray, shape (T, n)
        All teacher-forced states (washout included).
    train_nrmse : float
        ``sqrt(mean squared error / var(teacher))`` after the washout (for a
        constant teacher: 0 if it is fitted exactly, ``inf`` otherwise).
    final_state : ndarray, shape (n,)
        ``x_T``, where :meth:`ESN.generate` continues.
    final_output : ndarray, shape (n_out,)
        ``y_T``, the last teacher value (fed back into ``x_{T+1}``).
    washout, ridge : int, float
        The settings used.
    """

    esn: ESN
    states: np.ndarray
    train_nrmse: float
    final_state: np.ndarray
    final_output: np.ndarray
    washout: int
    ridge: float


def fit(
    esn: ESN,
    inputs: Any,
    teacher: Any,
    *,
    washout: int = 0,
    ridge: float = 1e-8,
    x0: Any = None,
    y0: Any = None,
    solver: str = "lstsq",
    noise: float = 0.0,
    seed: Any = None,
) -> ESNFit:
    """Teacher-forced training of the readout by ridge regression.

    Runs :meth:`ESN.run` with the teacher fed back, drops the first
    ``washout`` states, and solves ``W_out = ridge_regression([x; u; 1], y, λ)``.

    Parameters
    ----------
    esn : ESN
    inputs : array_like, shape (T, n_in) or None
    teacher : array_like, shape (T, n_out)
    washout : int
        Initial steps excluded from the regression (``< T``).
    ridge : float
        ``λ``, see :func:`ridge_regression`.
    x0, y0 : array_like, optional
        Initial state and fed-back output (zeros).
    solver : {"lstsq", "normal"}
    noise : float
        State noise during harvesting, see :meth:`ESN.run` (0: none).
    seed : int, Generator or None
        Seed for the noise, see :meth:`ESN.run`.

    Returns
    -------
    ESNFit
    """
    if not isinstance(esn, ESN):
        raise TypeError(f"`esn` must be an ESN, got {type(esn).__name__}")
    Y = as_float_array("teacher", teacher, ndim=2, dtype=_F64)
    washout = check_int("washout", washout, minimum=0)
    if washout >= Y.shape[0]:
        raise ValueError(f"`washout` must be < the number of steps {Y.shape[0]}, got {washout}")
    states = esn.run(inputs, Y, x0=x0, y0=y0, noise=noise, seed=seed)
    u = esn._inputs(inputs, Y.shape[0])
    Z = esn.features(states[washout:], u[washout:])
    W_out = ridge_regression(Z, Y[washout:], ridge, solver=solver)
    trained = replace(esn, W_out=W_out)
    resid = Z @ W_out.T - Y[washout:]
    nrmse_ = nrmse(resid, Y[washout:])
    return ESNFit(
        esn=trained,
        states=states,
        train_nrmse=nrmse_,
        final_state=states[-1].copy(),
        final_output=Y[-1].copy(),
        washout=washout,
        ridge=float(ridge),
    )



# ----------------------------------------------------------------------------- moved names

_MOVED = {  # old name here -> (new home, name there)
    "mackey_glass_protocol": ("rnntheory.experiments.mg17", "mackey_glass_protocol"),
    "MG17Result": ("rnntheory.experiments.mg17", "MG17Result"),
    "RIDGE_GRID": ("rnntheory.experiments.mg17", "RIDGE_GRID"),
    "JAEGER_2001_NRMSE84": ("rnntheory.experiments.mg17", "JAEGER_2001"),
}


def __getattr__(name: str) -> Any:
    """The Mackey–Glass protocol moved to its experiment, :mod:`rnntheory.experiments.mg17`.

    Its old names here keep working for one release with a ``DeprecationWarning``.
    The lookup is by module name at call time on purpose: the ESN sits below
    the experiments and imports nothing from them; this shim (and the upward
    lookup with it) goes away in the next release.
    """
    if name not in _MOVED:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    home, new = _MOVED[name]
    warnings.warn(
        f"`rnntheory.esn.{name}` is deprecated and will be removed in the next release; "
        f"use `{home}.{new}`",
        DeprecationWarning,
        stacklevel=2,
    )
    return getattr(importlib.import_module(home), new)
