"""``import rnntheory`` is light: no SymPy, matplotlib or Hypothesis, nothing compiled."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

SCRIPT = textwrap.dedent(
    """
    import json, sys
    import rnntheory
    from rnntheory.cells import _elman_kernels as K
    from numba.core.registry import CPUDispatcher

    heavy = [m for m in ("sympy", "matplotlib", "hypothesis", "torch") if m in sys.modules]
    compiled = {
        name: [str(s) for s in obj.signatures]
        for name, obj in vars(K).items()
        if isinstance(obj, CPUDispatcher) and obj.signatures
    }
    # the lazily loaded submodules are not imported either
    lazy = [m for m in ("rnntheory.bounds", "rnntheory.jacobians", "rnntheory.strategies",
                        "rnntheory.verification", "rnntheory.cli") if m in sys.modules]
    dispatchers = [n for n, o in vars(K).items() if isinstance(o, CPUDispatcher)]
    print(json.dumps({"heavy": heavy, "compiled": compiled, "lazy": lazy,
                      "dispatchers": dispatchers}))
    """
)


def test_import_is_light():
    """After ``import rnntheory`` in a fresh interpreter: none of sympy,
    matplotlib, hypothesis (nor torch) is in ``sys.modules``; no kernel of
    ``rnntheory.cells._elman_kernels`` has a compiled signature (the forward
    kernel included); the lazy submodules are not loaded."""
    r = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True,
                       timeout=120, check=False)
    assert r.returncode == 0, r.stderr
    d = json.loads(r.stdout.strip().splitlines()[-1])
    assert "elman_forward" in d["dispatchers"]
    assert d["heavy"] == []
    assert d["compiled"] == {}
    assert d["lazy"] == []


def test_lazy_submodules_compile_nothing_on_import():
    """Loading ``rnntheory.jacobians`` and ``rnntheory.bounds`` (attribute access)
    still compiles no kernel; the first call does."""
    script = textwrap.dedent(
        """
        import numpy as np
        import rnntheory
        from numba.core.registry import CPUDispatcher
        rnntheory.bounds, rnntheory.jacobians
        from rnntheory import _jacobian_kernels as JK
        assert not any(isinstance(o, CPUDispatcher) and o.signatures for o in vars(JK).values())
        assert not rnntheory.cells._elman_kernels.elman_forward.signatures
        m = rnntheory.ElmanRNN(np.eye(2), np.ones((2, 1)), np.zeros(2))
        m.forward(np.zeros((3, 1)))
        assert rnntheory.cells._elman_kernels.elman_forward.signatures
        print("ok")
        """
    )
    r = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                       timeout=120, check=False)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "ok"


def test_one_version():
    """The version is written once, in the leaf ``rnntheory._version``: the package
    re-exports it, and ``pyproject.toml`` reads it from there (no second literal)."""
    import tomllib
    from pathlib import Path

    import rnntheory
    from rnntheory._version import VERSION

    project = tomllib.loads((Path(__file__).resolve().parents[1] / "pyproject.toml").read_text())
    assert "version" not in project["project"]
    assert "version" in project["project"]["dynamic"]
    assert project["tool"]["setuptools"]["dynamic"]["version"] == {"attr": "rnntheory._version.VERSION"}
    assert rnntheory.__version__ is VERSION
    assert VERSION.count(".") == 2 and all(p.isdigit() for p in VERSION.split("."))


def test_every_subpackage_is_installed():
    """``pyproject.toml`` lists the packages a wheel installs by name: every folder
    of ``rnntheory/`` with an ``__init__.py`` (and the proofs) must be listed, or an
    installed copy lacks it (``rnntheory.checks``, the verify rows, was missing)."""
    import tomllib
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    listed = set(tomllib.loads((root / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])
    found = {"rnntheory", "rnntheory.proofs"} | {
        "rnntheory." + ".".join(p.parent.relative_to(root / "rnntheory").parts)
        for p in (root / "rnntheory").rglob("__init__.py") if p.parent != root / "rnntheory"
    }
    assert found - listed == set()
    assert listed - found == set()
