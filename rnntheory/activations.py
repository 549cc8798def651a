"""Element-wise activations of the hidden layer, each with ``f``, ``f′`` and ``γ_h``.

``γ_h = sup_x |f′(x)|`` is the constant of Eq. 10–11 of the article: 1 for tanh,
1/4 for the logistic sigmoid, 1 for the identity (the linear RNN) and for ReLU.

Derivatives are computed in forms that keep their relative accuracy in
saturation: ``tanh′(x) = sech²(x)`` rather than ``1 − tanh²(x)`` (which is 0 in
float64 as soon as ``|x| > 19`` although the true value is about ``4e-17``), and
``σ′(x) = e^{−|x|} / (1 + e^{−|x|})²`` rather than ``σ(x)(1 − σ(x))``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ._validation import check_choice

__all__ = ["ACTIVATIONS", "Activation", "get_activation"]


def _tanh(x: np.ndarray) -> np.ndarray:
    return np.tanh(x)


def _tanh_prime(x: np.ndarray) -> np.ndarray:
    with np.errstate(over="ignore"):  # cosh² = inf for |x| > 355: sech² rounds to 0 there
        c = np.cosh(x)
        return 1.0 / (c * c)


def _sigmoid(x: np.ndarray) -> np.ndarray:
    e = np.exp(-np.abs(x))
    return np.where(x >= 0, 1.0 / (1.0 + e), e / (1.0 + e))


def _sigmoid_prime(x: np.ndarray) -> np.ndarray:
    e = np.exp(-np.abs(x))
    return e / ((1.0 + e) * (1.0 + e))


def _identity(x: np.ndarray) -> np.ndarray:
    return np.array(x, copy=True)


def _identity_prime(x: np.ndarray) -> np.ndarray:
    return np.ones_like(x)


def _relu(x: np.ndarray) -> np.ndarray:
    return np.maximum(x, 0.0)


def _relu_prime(x: np.ndarray) -> np.ndarray:
    # The derivative at 0 is taken to be 0 (PyTorch's convention).
    return (x > 0).astype(np.result_type(x, np.float32))


@dataclass(frozen=True)
class Activation:
    """An element-wise hidden-layer nonlinearity.

    Attributes
    ----------
    name : str
        ``"tanh"``, ``"sigmoid"``, ``"identity"`` or ``"relu"``.
    code : int
        The integer the Numba kernels switch on (private).
    gamma_h : float
        ``sup_x |f′(x)|``, the constant ``γ_h`` of Eq. 10 of the article.
    argmax : float
        A point where the supremum is attained (``0`` for tanh and sigmoid).

    Examples
    --------
    >>> from rnntheory.activations import get_activation
    >>> act = get_activation("sigmoid")
    >>> act.gamma_h
    0.25
    >>> float(act.fprime(0.0))
    0.25
    """

    name: str
    code: int
    gamma_h: float
    argmax: float

    def f(self, x: np.ndarray | float) -> np.ndarray:
        """Apply the activation element-wise.

        Raises
        ------
        TypeError
            If ``x`` is not real (complex, string, object or boolean entries).
        """
        return _FUNCS[self.name][0](_real("x", x))

    def fprime(self, x: np.ndarray | float) -> np.ndarray:
        """Derivative ``f′`` element-wise, in a form stable under saturation.

        Raises
        ------
        TypeError
            If ``x`` is not real (complex, string, object or boolean entries).
        """
        return _FUNCS[self.name][1](_real("x", x))


def _real(name: str, x: object) -> np.ndarray:
    """``x`` as an array of real numbers (integers or floats), or a ``TypeError``."""
    try:
        a = x if isinstance(x, np.ndarray) else np.asarray(x)
    except (TypeError, ValueError):  # ragged nesting
        raise TypeError(f"`{name}` must be a real array, got {type(x).__name__} of ragged shape") from None
    if a.dtype.kind not in "iuf":
        raise TypeError(f"`{name}` must be a real array (integers or floats), got dtype {a.dtype}")
    return a


_FUNCS = {
    "tanh": (_tanh, _tanh_prime),
    "sigmoid": (_sigmoid, _sigmoid_prime),
    "identity": (_identity, _identity_prime),
    "relu": (_relu, _relu_prime),
}

ACTIVATIONS: dict[str, Activation] = {
    "tanh": Activation("tanh", 0, 1.0, 0.0),
    "sigmoid": Activation("sigmoid", 1, 0.25, 0.0),
    "identity": Activation("identity", 2, 1.0, 0.0),
    "relu": Activation("relu", 3, 1.0, 1.0),
}


def get_activation(activation: str | Activation) -> Activation:
    """Look up an activation by name (or pass an :class:`Activation` through).

    Raises
    ------
    ValueError
        If the name is not one of ``tanh``, ``sigmoid``, ``identity``, ``relu``.
    """
    if isinstance(activation, Activation):
        return activation
    return ACTIVATIONS[check_choice("activation", activation, tuple(ACTIVATIONS))]
