"""The claims ledger: every claim of the article with a verdict and evidence.

Each claim of the article (rows C01–C34 of the reference list) is checked by a
*proof*: a function in one of the modules of ``rnntheory.proofs`` (the
repository's top-level ``proofs/`` folder), registered with :func:`claim`.
A proof states the method it uses and returns a :class:`Proof`: the verdict,
the corrected statement where one is needed, the evidence, and for a *false*
verdict a :class:`Counterexample` whose numbers were recomputed in this run.

Counterexamples are found by search (Hypothesis with ``target()``, shrunk) and
stored as JSON in ``proofs/counterexamples/``, so a normal run only re-verifies
them; ``rnntheory prove --search`` runs the searches again and rewrites the files.

Verdicts:

* ``holds``: true as stated (with the article's own definitions);
* ``holds with conditions``: true once the conditions in ``corrected`` are added;
* ``false``: a counterexample refutes it as stated; ``corrected`` says what is true;
* ``not mathematical``: a statement about practice or intent that no proof or
  counterexample can settle; ``corrected`` says what can be said precisely.
"""

from __future__ import annotations

import importlib
import json
import pkgutil
import re
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ._outputs import json_safe
from ._tables import markdown_table

__all__ = [
    "VERDICTS",
    "ClaimResult",
    "ClaimSpec",
    "Counterexample",
    "Proof",
    "claim",
    "counterexample_path",
    "load_counterexample",
    "registry",
    "run",
    "save_counterexample",
    "to_markdown",
]

VERDICTS = ("holds", "holds with conditions", "false", "not mathematical")
METHODS = ("symbolic identity", "calculus", "counterexample", "numeric check", "reading")


@dataclass(frozen=True)
class Counterexample:
    """Concrete data that breaks a claim, and the numbers that show it.

    Attributes
    ----------
    description : str
        What the data is and how it breaks the claim, in one or two sentences.
    data : dict
        The inputs (matrices as nested lists, scalars), JSON-serialisable.
    numbers : dict
        The quantities recomputed from ``data`` in this run that break the
        claim (for example the claimed bound and the observed norm).
    """

    description: str
    data: dict[str, Any]
    numbers: dict[str, float]


@dataclass(frozen=True)
class Proof:
    """What a proof function returns.

    Attributes
    ----------
    verdict : str
        One of :data:`VERDICTS`.
    corrected : str
        The corrected (or precise) statement; may repeat the claim when it holds.
    evidence : tuple of str
        What was checked and what came out, one line each, with numbers.
    verified : bool
        Whether every check of the evidence passed in this run. A proof whose
        verdict is *false* is verified when its counterexample re-verified.
    counterexample : Counterexample or None
        Required for a *false* verdict.
    """

    verdict: str
    corrected: str
    evidence: tuple[str, ...]
    verified: bool
    counterexample: Counterexample | None = None

    def __post_init__(self) -> None:
        if self.verdict not in VERDICTS:
            raise ValueError(f"`verdict` must be one of {VERDICTS}, got {self.verdict!r}")
        if self.verdict == "false" and self.counterexample is None:
            raise ValueError("a proof with verdict 'false' must carry a counterexample")


@dataclass(frozen=True)
class ClaimSpec:
    """A registered claim: its ID, wording, place in the article, and its proof."""

    id: str
    claim: str
    where: str
    method: str
    prove: Callable[[], Proof] = field(repr=False)
    search: Callable[[], dict[str, Any]] | None = field(default=None, repr=False)


@dataclass(frozen=True)
class ClaimResult:
    """One row of the ledger: the claim, the proof's outcome, and its timing."""

    id: str
    claim: str
    where: str
    method: str
    verdict: str
    corrected: str
    evidence: tuple[str, ...]
    verified: bool
    counterexample: Counterexample | None
    seconds: float
    error: str | None = None

    def as_dict(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return json_safe(asdict(self))


_REGISTRY: dict[str, ClaimSpec] = {}


def claim(
    id: str,
    *,
    claim: str,
    where: str,
    method: str,
    search: Callable[[], dict[str, Any]] | None = None,
) -> Callable[[Callable[[], Proof]], Callable[[], Proof]]:
    """Register the decorated function as the proof of claim ``id``.

    Parameters
    ----------
    id : str
        ``"C01"`` … ``"C34"``.
    claim : str
        The claim as the article makes it (paraphrased).
    where : str
        Where in the article (``"Eq. 9"``, ``"after Eq. 12"``, …).
    method : str
        One of ``symbolic identity``, ``calculus``, ``counterexample``,
        ``numeric check``, ``reading`` (or several joined by ``" + "``).
    search : callable, optional
        Re-runs the counterexample search and returns the data to store (used
        by ``rnntheory prove --search``).
    """
    _check_id(id)
    for arg, value in (("claim", claim), ("where", where), ("method", method)):
        if not isinstance(value, str):
            raise TypeError(f"`{arg}` must be a string, got {type(value).__name__}")
    for part in method.split(" + "):
        if part not in METHODS:
            raise ValueError(f"`method` parts must be in {METHODS}, got {part!r}")

    def deco(fn: Callable[[], Proof]) -> Callable[[], Proof]:
        if id in _REGISTRY and _REGISTRY[id].prove is not fn:
            raise ValueError(f"claim {id} is registered twice")
        _REGISTRY[id] = ClaimSpec(id, claim, where, method, fn, search)
        return fn

    return deco


def _load_all() -> None:
    from . import proofs

    for mod in pkgutil.iter_modules(proofs.__path__):
        if not mod.name.startswith("_"):
            importlib.import_module(f"{proofs.__name__}.{mod.name}")


def registry() -> dict[str, ClaimSpec]:
    """Every registered claim, by ID, in ID order (imports the proof modules)."""
    _load_all()
    return dict(sorted(_REGISTRY.items()))


# ----------------------------------------------------------------------------- storage
def _counterexample_dir() -> Path:
    from . import proofs

    return Path(proofs.__path__[0]) / "counterexamples"


def _check_id(id: Any) -> str:
    """``id`` if it is a claim ID ``"C"`` + two digits, else a ``TypeError``/``ValueError``.

    The ID names a file, so nothing else (a path, ``..``) may pass."""
    if not isinstance(id, str):
        raise TypeError(f"`id` must be a claim ID string such as 'C01', got {type(id).__name__}")
    if re.fullmatch(r"C\d{2}", id) is None:
        raise ValueError(f"`id` must be 'C' followed by two digits (such as 'C01'), got {id!r}")
    return id


def counterexample_path(id: str) -> Path:
    """Where the stored counterexample of claim ``id`` lives.

    Raises
    ------
    TypeError, ValueError
        If ``id`` is not ``"C"`` followed by two digits.
    """
    return _counterexample_dir() / f"{_check_id(id)}.json"


def save_counterexample(id: str, data: dict[str, Any]) -> Path:
    """Write the search result for claim ``id`` (JSON, floats written exactly).

    Raises
    ------
    TypeError
        If ``data`` is not a dict of JSON-serialisable values (numbers, strings,
        arrays, and lists and dicts of them); nothing is written then.
    """
    path = counterexample_path(id)
    if not isinstance(data, dict):
        raise TypeError(f"`data` must be a dict, got {type(data).__name__}")
    try:
        text = json.dumps(json_safe(data), indent=1, sort_keys=True) + "\n"
    except (TypeError, ValueError) as exc:
        raise TypeError(f"`data` must hold JSON-serialisable values: {exc}") from None
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def load_counterexample(id: str) -> dict[str, Any]:
    """Read the stored counterexample of claim ``id``.

    Raises
    ------
    FileNotFoundError
        With a message that says how to regenerate it.
    """
    path = counterexample_path(id)
    if not path.exists():
        raise FileNotFoundError(
            f"no stored counterexample for {id} (proofs/counterexamples/{path.name}); "
            f"run `rnntheory prove --claim {id} --search`"
        )
    try:
        data = json.loads(path.read_text())
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(
            f"the stored counterexample for {id} (proofs/counterexamples/{path.name}) is not"
            f" valid JSON ({exc}); run `rnntheory prove --claim {id} --search`"
        ) from None
    if not isinstance(data, dict):
        raise ValueError(
            f"the stored counterexample for {id} (proofs/counterexamples/{path.name}) must hold"
            f" a JSON object, got {type(data).__name__}"
        )
    return data


# ----------------------------------------------------------------------------- running
def _run_one(spec: ClaimSpec) -> ClaimResult:
    t0 = time.perf_counter()
    try:
        p = spec.prove()
        err = None
    except Exception as exc:  # a proof that crashes is reported, not hidden
        p = Proof("not mathematical", "", (f"the proof raised {type(exc).__name__}: {exc}",), False)
        err = f"{type(exc).__name__}: {exc}"
    return ClaimResult(
        spec.id, spec.claim, spec.where, spec.method, p.verdict, p.corrected,
        tuple(p.evidence), bool(p.verified), p.counterexample,
        time.perf_counter() - t0, err,
    )


def run(
    ids: Iterable[str] | None = None, *, search: bool = False, progress: bool | None = None
) -> Iterator[ClaimResult]:
    """Prove every claim (or those in ``ids``), yielding one result at a time.

    Parameters
    ----------
    ids : iterable of str, optional
        Claim IDs; all registered claims by default.
    search : bool
        Re-run the counterexample searches first and store their results.
    progress : bool, optional
        Show a progress bar (default: only on a terminal).
    """
    from tqdm import tqdm

    if isinstance(ids, str):
        raise TypeError(f"`ids` must be an iterable of claim IDs such as ['C01'], got the string {ids!r}")
    reg = registry()
    try:
        wanted = list(reg) if ids is None else list(ids)
    except TypeError:
        raise TypeError(f"`ids` must be an iterable of claim IDs such as ['C01'], got {ids!r}") from None
    for i in wanted:
        if not isinstance(i, str):
            raise TypeError(f"`ids` must hold claim ID strings such as 'C01', got {i!r}")
    wanted = [i.upper() for i in wanted]
    for i in wanted:
        if i not in reg:
            raise ValueError(f"`claim` must be one of the registered IDs {list(reg)}, got {i!r}")
    bar = tqdm(wanted, desc="prove", unit="claim", disable=(None if progress is None else not progress), leave=False)
    for i in bar:
        spec = reg[i]
        if search and spec.search is not None:
            save_counterexample(i, spec.search())
        yield _run_one(spec)


def to_markdown(results: Iterable[ClaimResult]) -> str:
    """The ledger as a Markdown page (what ``rnntheory prove --markdown`` prints)."""
    if isinstance(results, str | bytes) or not isinstance(results, Iterable):
        raise TypeError(f"`results` must be an iterable of ClaimResult rows, got {type(results).__name__}")
    rows = list(results)
    for r in rows:
        if not isinstance(r, ClaimResult):
            raise TypeError(f"`results` must hold ClaimResult rows (from `run`), got {type(r).__name__}")
    out = [
        "# The claims ledger",
        "",
        "<!-- generated by `rnntheory prove --markdown`; do not edit by hand -->",
        "",
        "Every claim of the article, with a verdict, the corrected statement and the",
        "evidence that `rnntheory prove` re-checks on every run. Counterexamples are",
        "stored in `proofs/counterexamples/` and recomputed each time.",
        "",
        markdown_table(
            ["ID", "where", "claim", "verdict", "method"],
            [[f"[{r.id}](#{r.id.lower()})", r.where, r.claim,
              r.verdict + ("" if r.verified else " (**not re-verified**)"), r.method] for r in rows],
        ),
    ]
    counts = {v: sum(r.verdict == v for r in rows) for v in VERDICTS}
    out += ["", "Totals: " + ", ".join(f"{v}: {n}" for v, n in counts.items()) + ".", ""]
    for r in rows:
        out += [f"## {r.id}", "", f"**Claim** ({r.where}): {r.claim}", ""]
        out += [_article_links(r.id, r.where), ""]
        out += [f"**Verdict**: {r.verdict}. **Method**: {r.method}.", ""]
        if r.corrected:
            out += [f"**Corrected statement**: {r.corrected}", ""]
        out += ["**Evidence**:", ""] + [f"- {line}" for line in r.evidence] + [""]
        if r.counterexample is not None:
            ce = r.counterexample
            out += [f"**Counterexample**: {ce.description}", ""]
            out += [f"- `{k}` = {_fmt_num(v)}" for k, v in ce.numbers.items()] + [""]
    return "\n".join(out).rstrip() + "\n"


def _article_links(id: str, where: str) -> str:
    """The line of a claim's section that links the claim, and every equation
    its place names ("Eq. 9", "Eqs. 15–16"), to the page that restates the
    article (``docs/theory/article.md``, anchors ``c01`` … and ``eq-1`` …)."""
    links = [f"[{id}](theory/article.md#{id.lower()})"]
    for m in re.finditer(r"Eqs?\. (\d+)(?:\s*[–-]\s*(\d+))?", where):
        first, last = int(m.group(1)), int(m.group(2) or m.group(1))
        links += [f"[Eq. {i}](theory/article.md#eq-{i})" for i in range(first, last + 1)]
    return "**In the article, restated**: " + ", ".join(links)


def _fmt_num(v: Any) -> str:
    """A counterexample's number for the page. Magnitudes below 1e-12 are
    rounding residuals whose digits depend on the BLAS and the order of
    operations, so the page states only the bound (the value itself is in the
    JSON output)."""
    if isinstance(v, float | np.floating):
        x = float(v)
        if 0.0 < abs(x) < 1e-12:
            return "< 1e-12 in magnitude (rounding)"
        return f"{x:.6g}"
    return str(v)
