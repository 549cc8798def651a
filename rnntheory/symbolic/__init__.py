"""SymPy derivations of the article's equations (imported lazily; never by the numeric core).

Cells of your own: :func:`custom_cell` (in :mod:`rnntheory.symbolic.custom`),
with :func:`check_jacobian` and :func:`check_bound`.
"""

from .custom import ClaimCheck, Counterexample, CustomCell, check_bound, check_jacobian, custom_cell

__all__ = ["ClaimCheck", "Counterexample", "CustomCell", "check_bound", "check_jacobian", "custom_cell"]
