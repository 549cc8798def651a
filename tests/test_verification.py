"""Argument checks of ``rnntheory.verification`` and the checks registry (the
numbers of each check are asserted by the checks themselves and by
tests/test_cli.py)."""

from __future__ import annotations

import ast
import itertools
import sys
from pathlib import Path

import pytest

from rnntheory import checks
from rnntheory.checks import CheckContext, check
from rnntheory.verification import (
    CheckResult,
    VerifyConfig,
    default_models,
    run_checks,
    write_report,
)

ROW = CheckResult("demo", "a claim", 1, 1, 0.0, True)

# Each of these reached NumPy or attribute access with the bad value and raised
# an error naming nothing (found by tests/test_fuzz.py); a falsy config such as
# 0 or "" silently ran the default configuration.
BAD = [
    (lambda: VerifyConfig(T=0), ValueError, "`T` must be >= 1, got 0"),
    (lambda: VerifyConfig(T=2.5), TypeError, "`T` must be an integer"),
    (lambda: VerifyConfig(n_hidden=-1), ValueError, "`n_hidden` must be >= 1"),
    (lambda: VerifyConfig(seed=-1), ValueError, "`seed` must be >= 0"),
    (lambda: VerifyConfig(seed="0"), TypeError, "`seed` must be an integer"),
    (lambda: VerifyConfig(scales=(0.5, float("nan"))), ValueError, "`scales` must be finite"),
    (lambda: VerifyConfig(scales=(0.0,)), ValueError, "`scales` must be > 0.0"),
    (lambda: VerifyConfig(scales=0.5), TypeError, "`scales` must be a tuple of positive numbers"),
    (lambda: VerifyConfig(extra=[]), TypeError, "`extra` must be a dict"),
    (lambda: default_models(None), TypeError, "`cfg` must be a VerifyConfig, got NoneType"),
    (lambda: next(run_checks(0)), TypeError, "`cfg` must be a VerifyConfig, got int"),
    (lambda: next(run_checks(progress="yes")), TypeError, "`progress` must be True, False or None"),
    (lambda: write_report(ROW, "out"), TypeError, "`rows` must be a list of CheckResult"),
    (lambda: write_report([ROW, "x"], "out"), TypeError, "`rows` must hold CheckResult records, got str"),
    (lambda: write_report([ROW], 3), TypeError, "`out_dir` must be a non-empty str or os.PathLike"),
    (lambda: write_report([ROW], ""), TypeError, "`out_dir` must be a non-empty str or os.PathLike"),
    (lambda: write_report([ROW], "out", cfg={}), TypeError, "`cfg` must be a VerifyConfig, got dict"),
    (lambda: write_report([ROW], "out", claims=[1]), TypeError, "`claims` must hold ledger results"),
]


@pytest.mark.parametrize(("call", "exc", "match"), BAD)
def test_bad_inputs_name_the_argument(call, exc, match, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(exc, match=match):
        call()
    assert not any(tmp_path.iterdir()), "nothing is written when an argument is refused"


def test_the_model_set_follows_the_config():
    """Two tanh initialisations and one sigmoid, plus one Gaussian per scale for
    each activation, in two forms, with and without leak; sizes from the config."""
    cfg = VerifyConfig(T=5, n_hidden=3, n_in=2, scales=[0.5, 2.0])
    assert cfg.scales == (0.5, 2.0)
    models = default_models(cfg)
    assert len(models) == ((2 + 2) + (1 + 2)) * 2 * 2
    for _, m, x in models:
        assert m.W_hh.shape == (3, 3) and x.shape == (5, 2)


# ----------------------------------------------------------------------------- the checks registry
ROWS = [  # the table of `rnntheory verify`, in its order before the checks became a registry
    "step-jacobian", "chain-rule", "log-norms", "log-norm-range", "bptt",
    "eq12", "activation", "step_norm", "eq12-leaky", "vanishing", "rho-not-a-bound", "lyapunov",
    "clipping", "truncation", "projection", "gated-truncation",
    "esn-scaling", "esn-certificate", "esn-ridge", "orthogonal-init", "leaky-bounds", "omega",
    "gv-psd", "gv-fd", "init-spectra", "memoryless-baselines", "sweep-resume", "sweep-flow",
]
CHECKS_DIR = Path(checks.__file__).parent


@pytest.fixture
def scratch_registry(monkeypatch):
    """The registry as it is, restored after the test (so a test's own rows never leak)."""
    checks.registry()
    monkeypatch.setattr(checks, "_REGISTRY", dict(checks._REGISTRY))
    yield checks._REGISTRY
    for name in [m for m in sys.modules if m.startswith("rnntheory.checks.zz_")]:
        del sys.modules[name]


def _decorated_rows(path: Path) -> list[str]:
    """The names given to ``@check(...)`` in a module, read from its source with ``ast``."""
    names = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.FunctionDef):
            for d in node.decorator_list:
                if isinstance(d, ast.Call) and getattr(d.func, "id", None) == "check":
                    names.append(d.args[0].value)
    return names


def test_the_registry_keeps_the_table_order():
    """Same rows, same order as the hand-written list it replaced; stable across calls."""
    specs = checks.registry()
    assert [s.name for s in specs] == ROWS
    assert [s.name for s in checks.registry()] == ROWS
    assert all(a.order < b.order for a, b in itertools.pairwise(specs))


def test_discovery_finds_every_module_and_every_row():
    """Each public module of rnntheory/checks/ contributes the rows its source decorates, no more."""
    files = sorted(p for p in CHECKS_DIR.glob("*.py") if not p.name.startswith("_"))
    assert len(files) >= 8
    specs = checks.registry()
    by_module: dict[str, list[str]] = {}
    for s in specs:
        by_module.setdefault(s.module, []).append(s.name)
    for path in files:
        module = f"rnntheory.checks.{path.stem}"
        assert sorted(by_module.pop(module, [])) == sorted(_decorated_rows(path)) != [], module
    assert by_module == {}, "rows registered outside rnntheory/checks/"


def test_a_name_registered_twice_raises(scratch_registry):
    def again(ctx):  # pragma: no cover - never run
        raise AssertionError

    with pytest.raises(ValueError, match="check 'bptt' is registered twice"):
        check("bptt", order=5)(again)
    assert scratch_registry["bptt"].run is not again
    # the same function registered again (a module imported twice) is no conflict
    first = scratch_registry["bptt"].run
    check("bptt", order=scratch_registry["bptt"].order)(first)
    assert scratch_registry["bptt"].run is first


DEMO = '''
import numpy as np

from rnntheory._oracles import central_jacobian, rel_err
from rnntheory.checks import check
from rnntheory.checks._result import CheckResult


@check("zz-demo", order=0)
def demo(ctx):
    """d tanh(Wh)/dh = diag(sech²(Wh)) W against central differences."""
    rng = np.random.default_rng(ctx.cfg.seed)
    W, h = rng.normal(size=(4, 4)), rng.normal(size=4)
    exact = (1.0 / np.cosh(W @ h) ** 2)[:, None] * W
    err = rel_err(central_jacobian(lambda v: np.tanh(W @ v), h), exact)
    return CheckResult("zz-demo", "tanh Jacobian", 1, 16, err, err < 1e-8)
'''


def test_a_check_in_a_new_module_is_picked_up(scratch_registry, tmp_path, monkeypatch):
    """A module dropped beside the others registers its row with no list to edit,
    and run_checks runs it in its place (order 0: first)."""
    (tmp_path / "zz_demo.py").write_text(DEMO, encoding="utf-8")
    monkeypatch.setattr(checks, "__path__", [*checks.__path__, str(tmp_path)])
    specs = checks.registry()
    assert [s.name for s in specs] == ["zz-demo", *ROWS]
    assert specs[0].module == "rnntheory.checks.zz_demo"
    # run only the demo and one cheap row: the registry decides what run_checks runs
    for name in [n for n in scratch_registry if n not in ("zz-demo", "clipping")]:
        del scratch_registry[name]
    rows = list(run_checks(VerifyConfig(T=5), progress=False))
    assert [r.check for r in rows] == ["zz-demo", "clipping"]
    assert all(r.passed for r in rows) and rows[0].worst < 1e-8 and rows[1].worst < 1e-13


def test_rows_of_equal_order_run_by_name(scratch_registry):
    scratch_registry.clear()

    def row(name):
        def fn(ctx):
            return CheckResult(name, "c", 1, 1, float(ctx.cfg.T), True)
        return fn

    for name in ("zz-b", "zz-a", "zz-c"):
        check(name, order=7 if name != "zz-c" else 3)(row(name))
    rows = list(run_checks(VerifyConfig(T=6), progress=False))
    assert [r.check for r in rows] == ["zz-c", "zz-a", "zz-b"]
    assert [r.worst for r in rows] == [6.0] * 3  # each row got the run's context


REGISTRY_BAD = [
    (lambda: check(3, order=1), TypeError, "`name` must be a string, got int"),
    (lambda: check("  ", order=1), ValueError, "`name` must be a non-empty string"),
    (lambda: check("x", order=1.5), TypeError, "`order` must be an integer"),
    (lambda: check("x", order=1)(5), TypeError, "`check` decorates a function, got int"),
    (lambda: CheckContext(3), TypeError, "`cfg` must be a VerifyConfig, got int"),
]


@pytest.mark.parametrize(("call", "exc", "match"), REGISTRY_BAD)
def test_registry_bad_inputs_name_the_argument(call, exc, match, scratch_registry):
    with pytest.raises(exc, match=match):
        call()
