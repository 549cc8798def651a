"""Cells of your own: a SymPy update, its step Jacobian, and checks of claims about it.

A recurrent cell is a map ``h_t = F(h_{t−1}, x_t; θ)``. Write ``F`` as a SymPy
column in symbols for the state ``h_{t−1}``, the input ``x_t`` and the
parameters ``θ``, and :func:`custom_cell` gives a :class:`CustomCell` that

* differentiates it: :meth:`CustomCell.step_jacobian` is ``∂h_t/∂h_{t−1}``
  (numerator layout, ``J[a, b] = ∂h_t[a]/∂h_{t−1}[b]``), simplified;
* checks a claimed Jacobian (:func:`check_jacobian`): a proof (the difference
  simplifies to the zero matrix) or a counterexample with numbers, a point
  with exact rational coordinates at which claim and truth differ when both
  are evaluated to 50 significant digits;
* checks a claimed bound ``‖J‖₂ ≤ γ`` (:func:`check_bound`): a proof where
  SymPy finds one (entrywise, for a diagonal Jacobian), else a search (random
  and special points, then a derivative-free optimiser from the worst of them)
  whose worst point is re-evaluated to 50 digits. A sampled search that finds
  no violation says so; it never says "proved";
* compiles to NumPy (:meth:`CustomCell.lambdify`), which
  :class:`rnntheory.cells.CustomRNN` runs over sequences so that
  :mod:`rnntheory.jacobians` and :mod:`rnntheory.bounds` read its trajectories.

Examples: an IndRNN (Li et al. 2018, "Independently recurrent neural network
(IndRNN): building a longer and deeper RNN") ``h_t = f(w ⊙ h_{t−1} + W_x x_t +
b)``, a minimal gated unit (Zhou et al. 2016, "Minimal gated unit for
recurrent neural networks"), a leaky variant of any cell.
"""

from __future__ import annotations

import functools
import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import sympy as sp

from ._base import Identity, check_int_arg, sym_matrix, sym_scalar

__all__ = [
    "VERDICTS",
    "ClaimCheck",
    "Counterexample",
    "CustomCell",
    "NumericCell",
    "check_bound",
    "check_jacobian",
    "claim_expression",
    "custom_cell",
]

VERDICTS = ("proved", "refuted", "not refuted")
# digits of the high-precision re-evaluation of a counterexample
DIGITS = 50
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
# a difference below this (relative to 1 + |value|) at DIGITS digits is not a counterexample
_VERIFY_RTOL = sp.Float(10) ** -30


# ----------------------------------------------------------------------------- the cell
@dataclass(frozen=True)
class CustomCell:
    """One step of a recurrent cell written by the user, ``h_t = F(h_{t−1}, x_t; θ)``.

    Build it with :func:`custom_cell`, which checks that the fields fit together.

    Attributes
    ----------
    name : str
        A label for messages and reports.
    update : sympy.Matrix, shape ``(n, 1)``
        ``F``: the new state ``h_t`` as an expression in the symbols below.
    state : sympy.Matrix, shape ``(n, 1)``
        Distinct symbols for the previous state ``h_{t−1}``.
    inputs : sympy.Matrix, shape ``(n_in, 1)``
        Distinct symbols for the input ``x_t``.
    params : tuple of (str, sympy.Matrix)
        The named parameters ``θ``, each a matrix of distinct symbols (a scalar
        parameter is a ``1 × 1`` matrix; :attr:`param_shapes` keeps its shape).
    param_shapes : tuple of (str, tuple of int)
        The shape a numeric value of each parameter takes: ``()`` for a
        scalar symbol, ``(k,)`` for a column, ``(r, c)`` for a matrix.
    """

    name: str
    update: Any
    state: Any
    inputs: Any
    params: tuple[tuple[str, Any], ...] = ()
    param_shapes: tuple[tuple[str, tuple[int, ...]], ...] = ()

    @property
    def n(self) -> int:
        """State size ``n``."""
        return int(self.state.rows)

    @property
    def n_in(self) -> int:
        """Input size ``n_in``."""
        return int(self.inputs.rows)

    @property
    def symbols(self) -> tuple[Any, ...]:
        """Every symbol of the cell: state, then inputs, then parameters (in order)."""
        return (*self.state, *self.inputs, *(s for _, M in self.params for s in M))

    @property
    def abstract(self) -> bool:
        """Whether ``update`` holds an undefined function (``sympy.Function('f')``):
        SymPy can differentiate and prove with it, but not evaluate it."""
        return bool(_undefined_functions(self.update))

    def step_jacobian(self) -> Any:
        """``∂h_t/∂h_{t−1}`` (numerator layout), each entry simplified (an entry
        too large to simplify in well under a second, as a gated unit's, is
        left as SymPy differentiated it).

        Returns
        -------
        sympy.Matrix, shape ``(n, n)``

        Examples
        --------
        >>> import sympy as sp
        >>> h, x, w = sp.symbols("h x w", real=True)
        >>> custom_cell(sp.tanh(w * h + x), h, x, params={"w": w}).step_jacobian()
        Matrix([[w/cosh(h*w + x)**2]])
        """
        _check_cell(self)
        return sp.Matrix(_jacobian(sp.ImmutableMatrix(self.update), sp.ImmutableMatrix(self.state)))

    def input_jacobian(self) -> Any:
        """``∂h_t/∂x_t`` (numerator layout, shape ``(n, n_in)``), each entry simplified."""
        _check_cell(self)
        return sp.Matrix(_jacobian(sp.ImmutableMatrix(self.update), sp.ImmutableMatrix(self.inputs)))

    def lambdify(self) -> NumericCell:
        """NumPy functions for the update and both Jacobians (see :class:`NumericCell`).

        Raises
        ------
        ValueError
            If the update holds an undefined function (``cell.abstract``):
            give it a concrete definition first (``update.subs(f, sp.tanh)``
            with ``f`` the undefined function, and a new :func:`custom_cell`).
        """
        return NumericCell(self)


def _undefined_functions(expr: Any) -> set[Any]:
    return {a.func for a in expr.atoms(sp.core.function.AppliedUndef)}


# entries larger than this (operations, after generalising) are left as differentiated
_SIMPLIFY_MAX_OPS = 30


def _simplify_entry(e: Any) -> Any:
    """``e`` simplified with its function arguments generalised (fast, and
    exact: the arguments are put back), or ``e`` if that is not simpler or
    too large to simplify quickly."""
    if e.is_number or e.is_Symbol:
        return e
    back: dict[Any, Any] = {}
    g = _generalised(e, back)
    if sp.count_ops(g) > _SIMPLIFY_MAX_OPS:  # SymPy's simplify takes seconds to minutes here
        return e
    s = sp.simplify(g).xreplace(back)
    # keep the simpler of the raw and the simplified form (simplify can grow a tanh′)
    return s if sp.count_ops(s) <= sp.count_ops(e) else e


@functools.lru_cache(maxsize=64)
def _jacobian(update: Any, wrt: Any) -> Any:
    """The simplified Jacobian of ``update`` by ``wrt`` (immutable matrices: cached)."""
    return sp.ImmutableMatrix(sp.Matrix(update).jacobian(sp.Matrix(wrt)).applyfunc(_simplify_entry))


def _symbol_column(name: str, value: Any) -> Any:
    """``value`` (a Symbol, a sequence of Symbols or a SymPy column of them) as
    an ``(k, 1)`` Matrix of symbols, or a ``TypeError``/``ValueError`` naming ``name``."""
    if isinstance(value, sp.Symbol):
        return sp.Matrix([value])
    if isinstance(value, sp.MatrixBase):
        M = sp.Matrix(value)
    elif isinstance(value, list | tuple):
        if not value:
            raise ValueError(f"`{name}` must hold at least one symbol, got an empty {type(value).__name__}")
        for v in value:
            if not isinstance(v, sp.Symbol):
                raise TypeError(f"`{name}` must be a column of SymPy symbols, got the entry {v!r:.60}")
        M = sp.Matrix(value)
    else:
        raise TypeError(
            f"`{name}` must be a SymPy symbol or a column (Matrix, list) of symbols, got {type(value).__name__}"
        )
    if M.cols != 1 or M.rows == 0:
        raise ValueError(f"`{name}` must be a column of symbols (shape (k, 1), k >= 1), got shape {M.shape}")
    for v in M:
        if not isinstance(v, sp.Symbol):
            raise ValueError(f"`{name}` must be a column of SymPy symbols, got the entry {v}")
    return M


def _param_matrix(key: str, value: Any) -> tuple[Any, tuple[int, ...]]:
    name = f"params[{key!r}]"
    if isinstance(value, sp.Symbol):
        return sp.Matrix([value]), ()
    if isinstance(value, sp.MatrixBase):
        M = sp.Matrix(value)
        if M.rows == 0 or M.cols == 0:
            raise ValueError(f"`{name}` must hold at least one symbol, got shape {M.shape}")
        for v in M:
            if not isinstance(v, sp.Symbol):
                raise ValueError(f"`{name}` must hold SymPy symbols (the parameters), got the entry {v}")
        shape = (M.rows,) if M.cols == 1 else (M.rows, M.cols)
        return M, shape
    raise TypeError(f"`{name}` must be a SymPy symbol or a Matrix of symbols, got {type(value).__name__}")


def _as_update(value: Any, n: int) -> Any:
    if isinstance(value, sp.Expr) and not isinstance(value, sp.MatrixBase):
        U = sp.Matrix([value])
    elif isinstance(value, sp.MatrixBase | list | tuple | np.ndarray):
        U = sym_matrix("update", value)
    else:
        U = sp.Matrix([sym_scalar("update", value)])
    if U.shape == (1, n) and n > 1:
        U = U.T
    if U.shape != (n, 1):
        raise ValueError(f"`update` must have the shape of `state` ({n}, 1), got shape {U.shape}")
    for e in U:
        if e.has(sp.I) or e.has(sp.zoo) or e.has(sp.nan) or e.has(sp.oo):
            raise ValueError(f"`update` must be a real, finite expression, got the entry {e}")
    return U


def custom_cell(
    update: Any,
    state: Any,
    inputs: Any,
    *,
    params: Mapping[str, Any] | None = None,
    name: str = "custom",
) -> CustomCell:
    """A recurrent cell of your own from its SymPy update ``h_t = F(h_{t−1}, x_t; θ)``.

    Parameters
    ----------
    update : sympy.Matrix ``(n, 1)`` (or a SymPy expression when ``n = 1``)
        The new state, in the symbols of ``state``, ``inputs`` and ``params``
        (any other symbol is refused: a cell's value must be determined by its
        state, input and parameters).
    state : sympy.Symbol, or a column (Matrix or list) of distinct symbols
        The previous state ``h_{t−1}``, ``n`` symbols.
    inputs : sympy.Symbol, or a column of distinct symbols
        The input ``x_t``, ``n_in ≥ 1`` symbols.
    params : mapping of str to sympy.Symbol or sympy.Matrix of symbols, optional
        The parameters by name (the names :class:`rnntheory.cells.CustomRNN`
        takes their values by): ``{"w": w_vec, "W_x": W_x, "b": b}``.
        Numbers written into ``update`` are constants of the cell.
    name : str
        A label for reports.

    Returns
    -------
    CustomCell

    Raises
    ------
    TypeError
        If ``state``/``inputs`` are not symbols or columns of symbols, ``params``
        is not a mapping of names to symbols or symbol matrices, ``name`` is
        not a str, or ``update`` holds something that is not a SymPy expression
        or a number (strings are never parsed).
    ValueError
        If a column is empty or not a column, a symbol appears twice (within
        or across ``state``, ``inputs``, ``params``), ``update`` does not have
        the shape of ``state``, holds ``I``, ``oo`` or ``nan``, or holds a
        free symbol that is neither state, input nor parameter, or a parameter
        name is not an identifier.

    Examples
    --------
    An IndRNN unit pair, ``h_t = tanh(w ⊙ h_{t−1} + W_x x_t + b)``:

    >>> import sympy as sp
    >>> h = sp.Matrix(sp.symbols("h0:2", real=True))
    >>> x = sp.Matrix([sp.Symbol("x", real=True)])
    >>> w = sp.Matrix(sp.symbols("w0:2", real=True))
    >>> Wx = sp.Matrix(sp.symbols("u0:2", real=True))
    >>> cell = custom_cell((sp.matrix_multiply_elementwise(w, h) + Wx * x).applyfunc(sp.tanh),
    ...                    h, x, params={"w": w, "W_x": Wx}, name="IndRNN")
    >>> cell.n, cell.n_in, cell.step_jacobian()[0, 1]
    (2, 1, 0)
    """
    if not isinstance(name, str):
        raise TypeError(f"`name` must be a str, got {type(name).__name__}")
    S = _symbol_column("state", state)
    X = _symbol_column("inputs", inputs)
    if params is None:
        params = {}
    if not isinstance(params, Mapping):
        raise TypeError(f"`params` must be a mapping of names to symbols or symbol matrices, got {type(params).__name__}")
    P: list[tuple[str, Any]] = []
    shapes: list[tuple[str, tuple[int, ...]]] = []
    for key, value in params.items():
        if not isinstance(key, str) or not _NAME.match(key):
            raise ValueError(f"`params` names must be identifiers, got {key!r:.60}")
        M, shape = _param_matrix(key, value)
        P.append((key, M))
        shapes.append((key, shape))
    seen: dict[Any, str] = {}
    for label, M in (("state", S), ("inputs", X), *((f"params[{k!r}]", M) for k, M in P)):
        for s in M:
            if s in seen:
                where = "twice" if seen[s] == label else f"(also in `{seen[s]}`)"
                raise ValueError(f"`{label}` must hold distinct symbols, got {s} {where}")
            seen[s] = label
    U = _as_update(update, S.rows)
    extra = sorted((s for s in U.free_symbols if s not in seen), key=str)
    if extra:
        raise ValueError(
            f"`update` holds the free symbol(s) {[str(s) for s in extra]}, which are neither state, "
            "input nor a declared parameter: declare them in `params` (or substitute numbers)"
        )
    return CustomCell(name, U, S, X, tuple(P), tuple(shapes))


def _check_cell(cell: Any) -> CustomCell:
    """``cell`` if it is a :class:`CustomCell` whose fields are what
    :func:`custom_cell` builds from them, else a ``TypeError``/``ValueError``
    naming ``cell`` (a record passed back to the library is checked again)."""
    if not isinstance(cell, CustomCell):
        raise TypeError(f"`cell` must be a CustomCell (from `custom_cell`), got {type(cell).__name__}")
    try:
        params, shapes = cell.params, cell.param_shapes
        for label, pairs in (("params", params), ("param_shapes", shapes)):
            if not isinstance(pairs, tuple) or not all(isinstance(p, tuple) and len(p) == 2 for p in pairs):
                raise TypeError(f"`cell.{label}` must be a tuple of (name, value) pairs, got {pairs!r:.60}")
        if [k for k, _ in params] != [k for k, _ in shapes]:
            raise ValueError("`cell.param_shapes` must name the parameters of `cell.params`, in order")
        for (key, M), (_, shape) in zip(params, shapes, strict=True):
            size = M.rows * M.cols if isinstance(M, sp.MatrixBase) else -1
            full = (M.rows, M.cols) if size > 0 else None
            ok = isinstance(shape, tuple) and (
                (shape == () and size == 1) or (len(shape) == 1 and full == (shape[0], 1))
                or (len(shape) == 2 and full == shape)
            )
            if not ok:
                raise ValueError(f"`cell.param_shapes` gives {key!r} the shape {shape!r:.40}, which does not fit its symbols")
        for label in ("update", "state", "inputs"):
            if not isinstance(getattr(cell, label), sp.MatrixBase):
                raise TypeError(f"`cell.{label}` must be a SymPy column, got {type(getattr(cell, label)).__name__}")
        built = custom_cell(cell.update, cell.state, cell.inputs, params=dict(params), name=cell.name)
        if built.update.shape != cell.update.shape:
            raise ValueError(f"`cell.update` must have shape {built.update.shape}, got {cell.update.shape}")
    except (TypeError, ValueError) as err:
        raise type(err)(f"`cell` is not a well-formed CustomCell (build it with custom_cell): {err}") from None
    return cell


# ----------------------------------------------------------------------------- numbers
_MODULES: list[Any] = [{"Heaviside": lambda x, h0=0.5: np.heaviside(x, 0.5)}, "numpy"]


class NumericCell:
    """A :class:`CustomCell` compiled to NumPy by ``sympy.lambdify``.

    Every function takes the state ``h`` ``(m, n)``, the input ``x``
    ``(m, n_in)`` (``m`` points at once) and the parameter values (a dict keyed
    by the cell's parameter names, float64 arrays of the shapes in
    ``cell.param_shapes``), and evaluates in float64 with floating-point
    warnings silenced: an overflow gives ``inf`` or NaN, which the caller sees.

    Attributes
    ----------
    cell : CustomCell
    """

    def __init__(self, cell: CustomCell) -> None:
        _check_cell(cell)
        if cell.abstract:
            names = sorted(str(f) for f in _undefined_functions(cell.update))
            raise ValueError(
                f"`cell` ({cell.name}) holds the undefined function(s) {names}: SymPy can prove "
                "identities with them but cannot evaluate them; write the cell with a concrete "
                "activation (sp.tanh, sp.Max(0, a), 1/(1 + sp.exp(-a)), ...) to get numbers"
            )
        self.cell = cell
        syms = list(cell.symbols)
        self._fu = sp.lambdify(syms, list(cell.update), _MODULES)
        self._fj = sp.lambdify(syms, list(cell.step_jacobian()), _MODULES)
        self._fx = sp.lambdify(syms, list(cell.input_jacobian()), _MODULES)

    def expression(self, expr: Any) -> Callable[..., np.ndarray]:
        """A function ``(h, x, params) -> (m,)`` evaluating the scalar ``expr`` (in
        the cell's symbols) at ``m`` points (a claimed bound, for instance).

        Raises
        ------
        TypeError, ValueError
            If ``expr`` is not a scalar SymPy expression (or number) in the
            cell's symbols.
        """
        expr = claim_expression(self.cell, expr, name="expr")
        f = sp.lambdify(list(self.cell.symbols), [expr], _MODULES)

        def g(h: Any, x: Any, params: Mapping[str, Any]) -> np.ndarray:
            return self._call(f, h, x, params, (1,))[:, 0]

        return g

    def _args(self, h: Any, x: Any, params: Any) -> tuple[int, list[Any]]:
        """The lambdified functions' arguments, checked: ``h`` ``(m, n)``, ``x``
        ``(m, n_in)``, ``params`` a mapping with every parameter's value."""
        from .._validation import as_float_array

        cell = self.cell
        f64 = np.dtype(np.float64)
        h = as_float_array("h", h, dtype=f64, finite=False)
        x = as_float_array("x", x, dtype=f64, finite=False)
        if h.ndim != 2 or h.shape[1] != cell.n:
            raise ValueError(f"`h` must have shape (m, n) = (m, {cell.n}), got shape {h.shape}")
        if x.ndim != 2 or x.shape != (h.shape[0], cell.n_in):
            raise ValueError(f"`x` must have shape (m, n_in) = ({h.shape[0]}, {cell.n_in}), got shape {x.shape}")
        if not isinstance(params, Mapping):
            raise TypeError(f"`params` must be a mapping of parameter names to arrays, got {type(params).__name__}")
        args: list[Any] = [h[:, i] for i in range(cell.n)] + [x[:, i] for i in range(cell.n_in)]
        for key, M in cell.params:
            if key not in params:
                raise ValueError(f"`params` must hold every parameter {[k for k, _ in cell.params]}, missing {key!r}")
            v = as_float_array(f"params[{key!r}]", params[key], dtype=f64, finite=False)
            if v.size != M.rows * M.cols:
                raise ValueError(f"`params[{key!r}]` must have {M.rows * M.cols} entries, got shape {v.shape}")
            args.extend(v.ravel())
        return h.shape[0], args

    def _call(
        self, f: Callable[..., Any], h: Any, x: Any, params: Mapping[str, Any], shape: tuple[int, ...],
    ) -> np.ndarray:
        m, args = self._args(h, x, params)
        with np.errstate(all="ignore"):
            vals = f(*args)
            out = np.empty((m, len(vals)))
            for j, v in enumerate(vals):
                out[:, j] = np.broadcast_to(np.asarray(v, np.float64), (m,))
        return out.reshape(m, *shape)

    def step_function(self, params: Mapping[str, Any]) -> Callable[[Any, Any], np.ndarray]:
        """``F(·, ·; θ)`` with the parameters fixed, for one point: ``(h (n,), x
        (n_in,)) -> (n,)`` float64. ``params`` is checked once, here; the
        returned function does no checking (a loop over time calls it ``T``
        times).

        Raises
        ------
        TypeError, ValueError
            As :meth:`update`, for ``params``.
        """
        n, n_in = self.cell.n, self.cell.n_in
        _, args = self._args(np.zeros((1, n)), np.zeros((1, n_in)), params)
        pargs = [float(v) for v in args[n + n_in:]]
        f = self._fu

        def step(h: Any, x: Any) -> np.ndarray:
            with np.errstate(all="ignore"):
                return np.array(f(*h, *x, *pargs), dtype=np.float64)

        return step

    def update(self, h: Any, x: Any, params: Mapping[str, Any]) -> np.ndarray:
        """``F(h, x; θ)`` at ``m`` points: ``(m, n)``.

        Raises
        ------
        TypeError, ValueError
            If ``h`` is not ``(m, n)``, ``x`` not ``(m, n_in)`` (real arrays;
            NaN and inf are evaluated, not refused), or ``params`` lacks a
            parameter or gives one the wrong number of entries.
        """
        return self._call(self._fu, h, x, params, (self.cell.n,))

    def step_jacobian(self, h: Any, x: Any, params: Mapping[str, Any]) -> np.ndarray:
        """``∂F/∂h`` at ``m`` points: ``(m, n, n)`` (arguments as :meth:`update`)."""
        n = self.cell.n
        return self._call(self._fj, h, x, params, (n, n))

    def input_jacobian(self, h: Any, x: Any, params: Mapping[str, Any]) -> np.ndarray:
        """``∂F/∂x`` at ``m`` points: ``(m, n, n_in)`` (arguments as :meth:`update`)."""
        return self._call(self._fx, h, x, params, (self.cell.n, self.cell.n_in))


# ----------------------------------------------------------------------------- results
@dataclass(frozen=True)
class Counterexample:
    """A point where a claim fails, with both values, verified at high precision.

    Attributes
    ----------
    point : dict
        Every symbol of the cell and the claim mapped to an exact rational
        (``sympy.Rational``): the counterexample is exact, its values are not
        rounding artefacts.
    claimed : sympy.Matrix or sympy.Float
        The claimed value there (a matrix for a Jacobian claim, the bound γ
        for a bound claim), to :data:`DIGITS` significant digits.
    actual : sympy.Matrix or sympy.Float
        The true value there (the step Jacobian, or its spectral norm).
    gap : float
        ``max |claimed − actual|`` over the entries (a Jacobian claim) or
        ``actual − claimed`` (a bound claim: how far the norm exceeds it).
    digits : int
        The precision of the evaluation.
    """

    point: dict[Any, Any]
    claimed: Any
    actual: Any
    gap: float
    digits: int = DIGITS

    def values(self) -> dict[str, float]:
        """The point as ``{symbol name: float}`` (for printing and for NumPy)."""
        return {str(k): float(v) for k, v in self.point.items()}


@dataclass(frozen=True)
class ClaimCheck:
    """The outcome of :func:`check_jacobian` or :func:`check_bound`.

    Attributes
    ----------
    statement : str
        The claim, in symbols.
    verdict : {"proved", "refuted", "not refuted"}
        ``"proved"``: SymPy showed it for every value of the symbols (within
        their assumptions and the ``domain`` given). ``"refuted"``: a
        :class:`Counterexample` was found and verified at high precision.
        ``"not refuted"``: neither; a search of ``n_samples`` points found no
        violation, which is evidence, not a proof.
    evidence : str
        What the verdict rests on, in words.
    identity : Identity or None
        For a proof: the simplified residual (zero) as an :class:`Identity`.
    counterexample : Counterexample or None
        For a refutation.
    n_samples : int
        Points evaluated by the numeric search (0 when a proof was found).
    worst : Counterexample or None
        For a bound claim that was not refuted: the point with the smallest
        margin ``γ − ‖J‖₂`` found (``gap ≤ 0``), evaluated at high precision.
    """

    statement: str
    verdict: str
    evidence: str
    identity: Identity | None = None
    counterexample: Counterexample | None = None
    n_samples: int = 0
    worst: Counterexample | None = field(default=None, repr=False)

    @property
    def proved(self) -> bool:
        """Whether the verdict is ``"proved"``."""
        return self.verdict == "proved"

    @property
    def refuted(self) -> bool:
        """Whether the verdict is ``"refuted"`` (a verified counterexample)."""
        return self.verdict == "refuted"

    def __bool__(self) -> bool:
        """True only for a proof (a claim that was merely not refuted is falsy)."""
        return self.proved

    def __str__(self) -> str:
        lines = [f"{self.verdict.upper()}: {self.statement}", f"  {self.evidence}"]
        ce = self.counterexample
        if ce is not None:
            pt = ", ".join(f"{k} = {v}" for k, v in ce.point.items())
            lines += [f"  at {pt}", f"  claimed {_short(ce.claimed)}", f"  actual  {_short(ce.actual)}"]
        return "\n".join(lines)


def _short(v: Any) -> str:
    if isinstance(v, sp.MatrixBase):
        return str(v.applyfunc(lambda e: sp.Float(e, 8)).tolist())
    return str(sp.Float(v, 8))


# ----------------------------------------------------------------------------- sampling
class _Space:
    """The sample space of the free symbols: assumptions and ``domain`` respected."""

    def __init__(self, syms: list[Any], domain: Mapping[Any, tuple[Any, Any]]) -> None:
        self.syms = syms
        lo = np.full(len(syms), -np.inf)
        hi = np.full(len(syms), np.inf)
        for i, s in enumerate(syms):
            if s in domain:
                lo[i], hi[i] = domain[s]
            elif s.is_positive:
                lo[i] = 0.0
            elif s.is_nonnegative:
                lo[i] = 0.0
            elif s.is_negative or s.is_nonpositive:
                hi[i] = 0.0
        self.lo, self.hi = lo, hi
        self.strict_lo = np.array([bool(s.is_positive) and s not in domain for s in syms])
        self.strict_hi = np.array([bool(s.is_negative) and s not in domain for s in syms])
        self.integer = np.array([bool(s.is_integer) for s in syms])

    def project(self, P: np.ndarray) -> np.ndarray:
        P = np.clip(P, self.lo, self.hi)
        tiny = 1e-3
        P = np.where(self.strict_lo & (P <= 0), tiny, P)
        P = np.where(self.strict_hi & (P >= 0), -tiny, P)
        return np.where(self.integer, np.round(P), P)

    def sample(self, rng: np.random.Generator, m: int) -> np.ndarray:
        d = len(self.syms)
        parts = []
        # special points: 0, ±1, ±1/2, 2 in every coordinate, then mixtures
        for v in (0.0, 1.0, -1.0, 0.5, -0.5, 2.0, -2.0):
            parts.append(np.full((1, d), v))
        scales = np.array([0.1, 0.5, 1.0, 2.0, 5.0])
        k = max(m - len(parts), 1)
        Z = rng.standard_normal((k, d)) * scales[rng.integers(0, len(scales), (k, 1))]
        special = rng.random((k, d)) < 0.15
        Z = np.where(special, rng.choice([0.0, 1.0, -1.0], size=(k, d)), Z)
        P = np.concatenate([*parts, Z])
        lo = np.where(np.isfinite(self.lo), self.lo, 0.0)
        hi = np.where(np.isfinite(self.hi), self.hi, 0.0)
        bounded = np.isfinite(self.lo) & np.isfinite(self.hi)
        if bounded.any():
            r = rng.random(P.shape)
            U = lo * (1.0 - r) + hi * r  # a convex combination: no overflow for ends near ±1e308
            P = np.where(bounded, U, P)
            # the ends of bounded intervals are special points too
            ends = np.where(rng.random(P.shape) < 0.5, lo, hi)
            P = np.where(bounded & (rng.random(P.shape) < 0.1), ends, P)
        P = np.where(np.isfinite(self.lo) & ~np.isfinite(self.hi), lo + np.abs(P), P)
        P = np.where(~np.isfinite(self.lo) & np.isfinite(self.hi), hi - np.abs(P), P)
        return self.project(P)

    def to_rational(self, p: np.ndarray, digits: int | None) -> dict[Any, Any]:
        """The point as exact rationals: rounded to ``digits`` decimals (short
        numbers to read) or, with ``None``, the float64 values exactly."""
        out = {}
        for i, (s, v) in enumerate(zip(self.syms, p, strict=True)):
            scale = 10 ** (digits or 0)
            scaled = float(v) * scale if digits is not None else math.inf
            r = sp.Rational(round(scaled), scale) if math.isfinite(scaled) else sp.Rational(float(v))
            # a rounded value that leaves the symbol's interval (or its sign) is not used
            fv = float(r)
            if (fv < self.lo[i] or fv > self.hi[i] or (self.strict_lo[i] and fv <= 0)
                    or (self.strict_hi[i] and fv >= 0)):
                r = sp.Rational(float(v))
            out[s] = r
        return out


def _check_domain(domain: Any, syms: set[Any]) -> dict[Any, tuple[float, float]]:
    if domain is None:
        return {}
    if not isinstance(domain, Mapping):
        raise TypeError(f"`domain` must be a mapping of symbols to (low, high), got {type(domain).__name__}")
    out: dict[Any, tuple[float, float]] = {}
    for s, iv in domain.items():
        if not isinstance(s, sp.Symbol) or s not in syms:
            raise ValueError(f"`domain` keys must be symbols of the cell or the claim, got {s!r:.60}")
        if not isinstance(iv, tuple | list) or len(iv) != 2:
            raise ValueError(f"`domain[{s}]` must be a pair (low, high), got {iv!r:.60}")
        lo, hi = (float(sym_scalar(f"domain[{s}]", v)) for v in iv)
        if not (math.isfinite(lo) and math.isfinite(hi) and lo <= hi):
            raise ValueError(f"`domain[{s}]` must be finite with low <= high, got ({lo}, {hi})")
        out[s] = (lo, hi)
    return out


def _claim_expr(name: str, value: Any, shape: tuple[int, int] | None, cell: CustomCell) -> Any:
    if shape is None:
        if isinstance(value, sp.MatrixBase):
            if value.shape != (1, 1):
                raise ValueError(f"`{name}` must be a scalar expression, got a matrix of shape {value.shape}")
            value = value[0, 0]
        E = sym_scalar(name, value)
        free = E.free_symbols
    else:
        if isinstance(value, sp.Expr) and not isinstance(value, sp.MatrixBase) and shape == (1, 1):
            E = sp.Matrix([value])
        else:
            E = sym_matrix(name, value)
        if E.shape != shape:
            raise ValueError(f"`{name}` must have the shape of the step Jacobian {shape}, got shape {E.shape}")
        free = E.free_symbols
    known = set(cell.symbols)
    extra = sorted((s for s in free if s not in known), key=str)
    if extra:
        raise ValueError(
            f"`{name}` holds the symbol(s) {[str(s) for s in extra]}, which are not the cell's: a "
            "claim about the cell must be in its state, input and parameter symbols"
        )
    return E


def claim_expression(cell: CustomCell, value: Any, *, name: str = "bound") -> Any:
    """``value`` as a scalar SymPy expression in ``cell``'s symbols (a claimed
    bound), or a ``TypeError``/``ValueError`` naming ``name``: strings are never
    parsed, and a symbol that is not the cell's is refused.

    Examples
    --------
    >>> import sympy as sp
    >>> h, x = sp.symbols("h x", real=True)
    >>> claim_expression(custom_cell(sp.tanh(h + x), h, x), 1)
    1
    """
    _check_cell(cell)
    return _claim_expr(name, value, None, cell)


def _evalf(expr: Any, point: Mapping[Any, Any]) -> Any:
    return expr.xreplace(dict(point)).evalf(DIGITS)


def _is_finite_number(v: Any) -> bool:
    return bool(v.is_number and v.is_finite and v.is_extended_real)


# ----------------------------------------------------------------------------- Jacobian claims
def _generalised(e: Any, back: dict[Any, Any] | None = None) -> Any:
    """``e`` with the argument of every innermost one-argument function
    application that is not a symbol (``tanh(w h + x)``) replaced by a fresh
    real symbol, the same argument by the same symbol (``back``, when given,
    receives the map from the fresh symbols to the arguments). Only real
    arguments are replaced. What SymPy shows for every value of the fresh
    symbols holds in particular at the arguments they replaced, so a proof
    about the result is a proof about ``e``; and SymPy's simplifier is much
    faster on it."""
    apps = sorted(
        (a for a in e.atoms(sp.Function) if len(a.args) == 1 and not a.args[0].is_Symbol
         and not a.args[0].atoms(sp.Function) and a.args[0].is_extended_real is True),
        key=sp.default_sort_key,
    )
    dummies: dict[Any, Any] = {}
    repl = {}
    for a in apps:
        d = dummies.setdefault(a.args[0], sp.Dummy("a", real=True))
        repl[a] = a.func(d)
    if back is not None:
        back.update({d: arg for arg, d in dummies.items()})
    return e.xreplace(repl)


def _zero_matrix(M: Any, thorough: bool) -> tuple[bool, Any]:
    """Whether every entry of ``M`` is zero: expanded; then with the function
    arguments generalised (:func:`_generalised`) and simplified, also as
    exponentials (where ``w/cosh(a)²`` and ``w(1 − tanh(a)²)`` meet); and
    when ``thorough``, the original entries simplified (slow)."""
    R = sp.Matrix(M).doit().applyfunc(sp.expand)
    if R.is_zero_matrix:
        return True, R
    steps: list[Callable[[Any], Any]] = [
        lambda v: sp.simplify(_generalised(v)),
        lambda v: sp.simplify(sp.expand(_generalised(v).rewrite(sp.exp))),
    ]
    if thorough:
        steps += [sp.simplify, lambda v: sp.simplify(sp.expand(v.rewrite(sp.exp)))]

    def tries(e: Any) -> Any:
        if e == 0:
            return e
        for f in steps:
            r = f(e)
            if r == 0:
                return r
        return e

    R = R.applyfunc(tries)
    return bool(R.is_zero_matrix), R


def check_jacobian(
    cell: CustomCell,
    claim: Any,
    *,
    n_samples: int = 200,
    seed: int = 0,
    domain: Mapping[Any, tuple[Any, Any]] | None = None,
) -> ClaimCheck:
    """Check a claimed step Jacobian of ``cell``: a proof or a counterexample.

    The claim is compared with ``cell.step_jacobian()``. First symbolically:
    if every entry of ``truth − claim`` simplifies to zero the claim is
    **proved**. Otherwise both are evaluated at ``n_samples`` points (special
    values 0, ±1/2, ±1, ±2 and random ones of several scales, within the
    symbols' assumptions and ``domain``); the points where they differ most
    are rounded to short rationals and re-evaluated exactly at
    :data:`DIGITS` significant digits. A point where they still differ by more
    than ``10⁻³⁰·(1 + |truth|)`` **refutes** the claim. A claim that differs
    nowhere sampled (say only on a set of measure zero) is reported as **not
    refuted**, never as proved.

    Parameters
    ----------
    cell : CustomCell
    claim : sympy.Matrix ``(n, n)`` (a SymPy expression when ``n = 1``)
        The claimed ``∂h_t/∂h_{t−1}``, in the cell's symbols.
    n_samples : int
        Points of the numeric search, 1 to 10⁶.
    seed : int
        Seed of the random points.
    domain : mapping of symbol to (low, high), optional
        Intervals to sample some symbols from (a retention coefficient in
        ``[0, 1]``); a claim is then proved or refuted on that domain.

    Returns
    -------
    ClaimCheck

    Raises
    ------
    TypeError, ValueError
        If ``cell`` is not a :class:`CustomCell`, ``claim`` is not a matrix
        (or expression) of the step Jacobian's shape in the cell's symbols,
        or ``n_samples``, ``seed`` or ``domain`` are not valid.

    Examples
    --------
    >>> import sympy as sp
    >>> h, x, w = sp.symbols("h x w", real=True)
    >>> cell = custom_cell(sp.tanh(w * h + x), h, x, params={"w": w})
    >>> check_jacobian(cell, w / sp.cosh(w * h + x) ** 2).verdict
    'proved'
    >>> check_jacobian(cell, w * (1 - sp.tanh(h) ** 2)).verdict   # f′ at the wrong point
    'refuted'
    """
    _check_cell(cell)
    n_samples = check_int_arg("n_samples", n_samples, 1, 10**6)
    seed = check_int_arg("seed", seed, 0, 2**63 - 1)
    C = _claim_expr("claim", claim, (cell.n, cell.n), cell)
    J = cell.step_jacobian()
    statement = f"∂h_t/∂h_(t−1) of {cell.name} = {C.tolist() if cell.n > 1 else C[0, 0]}"
    ok, R = _zero_matrix(J - C, thorough=False)
    if ok:
        return _proved_jacobian(statement, R)
    if _undefined_functions(J) or _undefined_functions(C):
        ok, R = _zero_matrix(J - C, thorough=True)
        if ok:
            return _proved_jacobian(statement, R)
        return ClaimCheck(
            statement, "not refuted",
            "the difference did not simplify to zero, and undefined functions cannot be evaluated: no search was run",
            identity=Identity(statement, False, R),
        )
    # search before the slow simplifications: a false claim is refuted quickly
    syms = sorted(set(cell.symbols) | C.free_symbols, key=cell.symbols.index)
    space = _Space(syms, _check_domain(domain, set(syms)))
    fJ = sp.lambdify(syms, list(J), _MODULES)
    fC = sp.lambdify(syms, list(C), _MODULES)
    P = space.sample(np.random.default_rng(seed), n_samples)
    gap = _entry_gap(fJ, fC, P)
    order = np.argsort(-gap)
    for i in order[:8]:
        if not gap[i] > 1e-9:
            break
        for digits in (2, 4, None):
            point = space.to_rational(space.project(P[i : i + 1])[0], digits)
            ce = _verify_entries(J, C, point)
            if ce is not None:
                return ClaimCheck(
                    statement, "refuted",
                    f"a counterexample with exact rational coordinates: the claim and the true Jacobian "
                    f"differ by {ce.gap:.3g} when both are evaluated to {DIGITS} significant digits",
                    identity=Identity(statement, False, R), counterexample=ce, n_samples=len(P),
                )
    ok, R = _zero_matrix(J - C, thorough=True)
    if ok:
        return _proved_jacobian(statement, R)
    return ClaimCheck(
        statement, "not refuted",
        f"the difference did not simplify to zero, but no point of {len(P)} sampled showed a "
        "difference: not refuted, which is not a proof",
        identity=Identity(statement, False, R), n_samples=len(P),
    )


def _proved_jacobian(statement: str, R: Any) -> ClaimCheck:
    return ClaimCheck(
        statement, "proved", "the difference of the true and the claimed Jacobian simplifies to the zero matrix",
        identity=Identity(statement, True, R),
    )


def _columns(P: np.ndarray) -> list[np.ndarray]:
    return [P[:, j] for j in range(P.shape[1])]


def _eval_entries(f: Callable[..., Any], P: np.ndarray) -> np.ndarray:
    m = P.shape[0]
    with np.errstate(all="ignore"):
        vals = f(*_columns(P))
        return np.stack([np.broadcast_to(np.asarray(v, np.float64), (m,)) for v in vals], axis=1)


def _entry_gap(fJ: Callable[..., Any], fC: Callable[..., Any], P: np.ndarray) -> np.ndarray:
    with np.errstate(all="ignore"):
        J, C = _eval_entries(fJ, P), _eval_entries(fC, P)
        g = np.abs(J - C) / (1.0 + np.abs(J))
        ok = np.isfinite(J).all(axis=1) & np.isfinite(C).all(axis=1)
        return np.where(ok, g.max(axis=1), -1.0)


def _verify_entries(J: Any, C: Any, point: Mapping[Any, Any]) -> Counterexample | None:
    Jv, Cv = _evalf(J, point), _evalf(C, point)
    if not all(_is_finite_number(v) for v in (*Jv, *Cv)):
        return None
    diffs = [abs(a - b) for a, b in zip(Jv, Cv, strict=True)]
    if not any(d > _VERIFY_RTOL * (1 + abs(a)) for d, a in zip(diffs, Jv, strict=True)):
        return None
    return Counterexample(dict(point), Cv, Jv, float(max(diffs)))


# ----------------------------------------------------------------------------- bound claims
def _prove_nonnegative(e: Any) -> bool:
    """Whether SymPy shows ``e ≥ 0`` for every value the symbols' assumptions
    allow: as it is, then generalised (:func:`_generalised`) and simplified."""
    tries = (
        lambda v: v,
        lambda v: sp.simplify(_generalised(v)),
        lambda v: sp.factor(sp.simplify(_generalised(v))),
    )
    for f in tries:
        try:
            if f(e).is_nonnegative is True:
                return True
        except (TypeError, ValueError, NotImplementedError):  # pragma: no cover - SymPy internals
            continue
    return False


def _prove_at_most(lhs: Any, rhs: Any) -> bool:
    """Whether SymPy shows ``lhs ≤ rhs``: directly, or, for ``rhs = Max(r_1, …)``,
    ``lhs ≤ r_k`` for some ``k``."""
    if _prove_nonnegative(rhs - lhs):
        return True
    return isinstance(rhs, sp.Max) and any(_prove_at_most(lhs, r) for r in rhs.args)


def _spectral_norm_mp(M: Any) -> Any:
    import mpmath

    with mpmath.workdps(DIGITS + 10):
        A = mpmath.matrix([[mpmath.mpf(str(M[i, j])) for j in range(M.cols)] for i in range(M.rows)])
        G = A.T * A
        ev = mpmath.eigsy(G, eigvals_only=True)
        top = max(ev)
        top = max(top, mpmath.mpf(0))
        return sp.Float(mpmath.sqrt(top), DIGITS)


def check_bound(
    cell: CustomCell,
    bound: Any,
    *,
    n_samples: int = 400,
    n_starts: int = 4,
    seed: int = 0,
    domain: Mapping[Any, tuple[Any, Any]] | None = None,
) -> ClaimCheck:
    """Check a claimed bound ``‖∂h_t/∂h_{t−1}‖₂ ≤ γ`` for every state, input and parameter.

    **Proof** where SymPy finds one: when the step Jacobian is diagonal its
    spectral norm is ``max_i |J_ii|``, and the claim holds if SymPy shows
    ``γ − |J_ii| ≥ 0`` for every ``i`` (after simplification, from the symbols'
    assumptions; for ``γ = Max(r_1, …)`` it suffices that ``|J_ii| ≤ r_k`` for
    one ``k``). Otherwise a **search**: ``‖J‖₂ − γ`` at ``n_samples``
    points (special and random, within assumptions and ``domain``), then
    Powell's derivative-free method from the ``n_starts`` worst points; the
    worst point found is rounded to short rationals (or kept as the exact
    float64 values) and re-evaluated at :data:`DIGITS` digits (the norm as the
    square root of the largest eigenvalue of ``JᵀJ`` in mpmath). If it
    exceeds ``γ`` there by more than ``10⁻³⁰·(1 + |γ|)`` the claim is
    **refuted**; otherwise it is **not refuted** and ``worst`` holds the
    smallest margin found.

    Parameters
    ----------
    cell : CustomCell
    bound : SymPy expression or number
        ``γ``, in the cell's symbols (``max|f′|·‖W‖`` written out, or a constant).
    n_samples : int
        Sampled points, 1 to 10⁶.
    n_starts : int
        Local optimisations from the worst samples, 0 to 100.
    seed : int
    domain : mapping of symbol to (low, high), optional
        As in :func:`check_jacobian`.

    Returns
    -------
    ClaimCheck

    Raises
    ------
    TypeError, ValueError
        As :func:`check_jacobian`, for a ``bound`` that is not a scalar
        expression in the cell's symbols.

    Examples
    --------
    >>> import sympy as sp
    >>> h, x, w = sp.symbols("h x w", real=True)
    >>> cell = custom_cell(sp.tanh(w * h + x), h, x, params={"w": w})
    >>> check_bound(cell, sp.Abs(w)).verdict          # |w tanh′| ≤ |w|: proved
    'proved'
    >>> check_bound(cell, sp.Abs(w) / 2).verdict      # false at w h + x = 0
    'refuted'
    """
    _check_cell(cell)
    n_samples = check_int_arg("n_samples", n_samples, 1, 10**6)
    n_starts = check_int_arg("n_starts", n_starts, 0, 100)
    seed = check_int_arg("seed", seed, 0, 2**63 - 1)
    G = _claim_expr("bound", bound, None, cell)
    J = cell.step_jacobian()
    statement = f"‖∂h_t/∂h_(t−1)‖₂ ≤ {G} for {cell.name}"
    diagonal = all(J[i, j] == 0 for i in range(cell.n) for j in range(cell.n) if i != j)
    if diagonal and not _undefined_functions(J):
        margins = [G - sp.Abs(J[i, i]) for i in range(cell.n)]
        if all(_prove_at_most(sp.Abs(J[i, i]), G) for i in range(cell.n)):
            return ClaimCheck(
                statement, "proved",
                "the step Jacobian is diagonal, so its spectral norm is max_i |J_ii|, and SymPy shows "
                "γ − |J_ii| ≥ 0 for every i",
                identity=Identity(f"γ − |J_ii| ≥ 0, i = 1..{cell.n}", True, sp.Matrix(margins)),
            )
    if _undefined_functions(J) or _undefined_functions(G):
        return ClaimCheck(statement, "not refuted",
                          "no proof found, and undefined functions cannot be evaluated: no search was run")
    syms = sorted(set(cell.symbols) | G.free_symbols, key=cell.symbols.index)
    space = _Space(syms, _check_domain(domain, set(syms)))
    fJ = sp.lambdify(syms, list(J), _MODULES)
    fG = sp.lambdify(syms, [G], _MODULES)
    n = cell.n

    def excess(P: np.ndarray) -> np.ndarray:
        with np.errstate(all="ignore"):
            Jm = _eval_entries(fJ, P).reshape(-1, n, n)
            g = _eval_entries(fG, P)[:, 0]
            ok = np.isfinite(Jm).all(axis=(1, 2)) & np.isfinite(g)
            norms = np.zeros(len(P))
            if ok.any():
                norms[ok] = np.linalg.norm(Jm[ok], 2, axis=(1, 2))
            return np.where(ok, (norms - g) / (1.0 + np.abs(g)), -np.inf)

    rng = np.random.default_rng(seed)
    P = space.sample(rng, n_samples)
    e = excess(P)
    count = len(P)
    best_p, best_e = P[int(np.argmax(e))], float(np.max(e))
    # the optimiser looks for a violation only where the samples found none, in
    # a box around each start (an unbounded search runs off to huge values)
    starts = [int(i) for i in np.argsort(-e)[:n_starts] if np.isfinite(e[i])] if best_e <= 0 else []
    if starts:
        from scipy.optimize import minimize

        for i in starts:
            r = 10.0 + 2.0 * np.abs(P[i])
            lo = np.maximum(space.lo, P[i] - r)
            hi = np.minimum(space.hi, P[i] + r)

            def obj(p: np.ndarray) -> float:
                v = excess(space.project(p[None, :]))[0]
                return float(-v) if np.isfinite(v) else 1e300

            res = minimize(obj, P[i], method="Powell", bounds=list(zip(lo, hi, strict=True)),
                           options={"maxfev": 200 * len(syms), "xtol": 1e-10, "ftol": 1e-14})
            count += int(res.nfev)
            p = space.project(np.asarray(res.x)[None, :])[0]
            v = float(excess(p[None, :])[0])
            if v > best_e:
                best_p, best_e = p, v
    candidates = [best_p] + [P[i] for i in np.argsort(-e)[:3] if np.isfinite(e[i])]
    worst: Counterexample | None = None
    for p in candidates:
        for digits in (2, 4, None):
            point = space.to_rational(space.project(p[None, :])[0], digits)
            norm = _spectral_norm_mp(_evalf(J, point))
            gamma = _evalf(G, point)
            if not (_is_finite_number(norm) and _is_finite_number(gamma)):
                continue
            ce = Counterexample(dict(point), gamma, norm, float(norm - gamma))
            if norm - gamma > _VERIFY_RTOL * (1 + abs(gamma)):
                return ClaimCheck(
                    statement, "refuted",
                    f"a counterexample with exact rational coordinates: ‖J‖₂ exceeds the bound by "
                    f"{ce.gap:.3g} when both are evaluated to {DIGITS} significant digits",
                    counterexample=ce, n_samples=count,
                )
            if worst is None or ce.gap > worst.gap:
                worst = ce
    return ClaimCheck(
        statement, "not refuted",
        f"no proof found; {count} points evaluated (samples and {n_starts} local searches) and none "
        "violates the bound: not refuted, which is not a proof",
        n_samples=count, worst=worst,
    )
