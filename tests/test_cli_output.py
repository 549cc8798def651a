"""What the ``rnntheory`` command prints: ``verify``'s short default (one row per check
as it finishes, a one-line ledger summary, colour and progress on a terminal only),
``--verbose``, ``--version``, help on every option and ``experiment --list``.

The rows and counts are checked against the records the library yields, captured
by wrapping :func:`rnntheory.verification.run_checks` and :func:`rnntheory.ledger.run`
(never against the command's own counting)."""

from __future__ import annotations

import argparse
import contextlib
import io
import re
import subprocess
import sys
from collections import Counter

import pytest

from rnntheory import ledger, verification
from rnntheory._tables import display_width
from rnntheory._version import VERSION
from rnntheory.checks import registry as check_registry
from rnntheory.cli import build_parser, main
from rnntheory.ledger import ClaimResult
from rnntheory.verification import CheckResult

ANSI = re.compile(r"\x1b\[[0-9;]*m")


class Terminal(io.StringIO):
    """A stdout that says it is a terminal."""

    def isatty(self):
        return True


def screen(raw: str) -> str:
    """What a terminal shows after ``raw``: ``\\r`` returns to column 0 and later text
    overwrites earlier text; colour codes take no room; trailing spaces dropped."""
    lines, cur, pos = [], [], 0
    for ch in ANSI.sub("", raw):
        if ch == "\r":
            pos = 0
        elif ch == "\n":
            lines.append("".join(cur).rstrip())
            cur, pos = [], 0
        else:
            if pos < len(cur):
                cur[pos] = ch
            else:
                cur.append(ch)
            pos += 1
    if cur:
        lines.append("".join(cur).rstrip())
    return "\n".join(lines) + "\n"


def run(argv, stdout=None, **env):
    out = io.StringIO() if stdout is None else stdout
    with pytest.MonkeyPatch.context() as mp:
        mp.delenv("NO_COLOR", raising=False)
        mp.setenv("COLUMNS", "100")
        mp.setenv("TERM", "xterm")
        for k, v in env.items():
            mp.setenv(k, v)
        with contextlib.redirect_stdout(out):
            rc = main(argv)
    return rc, out.getvalue()


# ----------------------------------------------------------------------------- the real run


# real claims of every verdict that prove in milliseconds (the whole ledger takes seconds)
FAST_CLAIMS = ("C08", "C09", "C11", "C23", "C26", "C28", "C33", "C34")


@pytest.fixture(scope="module")
def verify_run():
    """``rnntheory verify --T 10``, piped, with the library's records captured (the
    ledger part on the claims FAST_CLAIMS)."""
    rows, claims = [], []
    real_checks, real_ledger, real_registry = verification.run_checks, ledger.run, ledger.registry

    def spy_checks(*a, **k):
        for r in real_checks(*a, **k):
            rows.append(r)
            yield r

    def spy_ledger(ids=None, **k):
        assert ids is None
        for c in real_ledger(FAST_CLAIMS, **k):
            claims.append(c)
            yield c

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(verification, "run_checks", spy_checks)
        mp.setattr(ledger, "run", spy_ledger)
        mp.setattr(ledger, "registry", lambda: {i: s for i, s in real_registry().items()
                                                if i in FAST_CLAIMS})
        rc, out = run(["verify", "--T", "10"])
    return rc, out, rows, claims


def test_verify_default_is_short_with_one_row_per_check(verify_run):
    """Under 60 lines, none over 100 columns, no colour or carriage return in a pipe;
    one row per check in the registry's order whose numbers and verdict are the
    record's, the claim shortened with an ellipsis only where it does not fit."""
    rc, out, rows, claims = verify_run
    lines = out.splitlines()
    assert rc == 0 and all(r.passed for r in rows) and all(c.verified for c in claims)
    assert len(lines) < 60 and max(display_width(line) for line in lines) <= 100
    assert "\x1b" not in out and "\r" not in out
    assert [r.check for r in rows] == [s.name for s in check_registry()]
    body = lines[2:2 + len(rows)]
    verdict_col = {display_width(line[: line.index("  pass  ")]) for line in body}
    assert len(verdict_col) == 1, "the verdict column is aligned"
    for line, r in zip(body, rows, strict=True):
        cells = line.split()
        assert cells[:5] == [r.check, str(r.models), str(r.pairs), f"{r.worst:.3e}", "pass"]
        claim = line.split("  pass  ", 1)[1].strip()
        full = " ".join(r.claim.split())
        assert claim == full or (claim.endswith("…") and full.startswith(claim[:-1].rstrip()))
    assert any(line.endswith("…") for line in body), "long claims are shortened"


def test_verify_ledger_summary_counts_the_verdicts(verify_run):
    """One line: claims re-verified, then each verdict with its count (from the records)."""
    _rc, out, rows, claims = verify_run
    counts = Counter(c.verdict for c in claims)
    summary = [line for line in out.splitlines() if line.startswith("ledger: ")]
    assert len(summary) == 1
    want = (f"ledger: {len(claims)}/{len(claims)} claims re-verified — "
            f"{counts['holds']} hold, {counts['holds with conditions']} hold with conditions, "
            f"{counts['false']} false, {counts['not mathematical']} not mathematical")
    assert summary[0] == want
    assert sum(counts.values()) == len(claims) == len(FAST_CLAIMS)
    assert set(counts) == set(ledger.VERDICTS), "every verdict is represented"
    assert f"{len(rows)}/{len(rows)} checks passed (T = 10, n_hidden = 12, seed = 2013)" in out
    assert "evidence" not in out.split("ledger:")[0], "no evidence in the default output"


# ----------------------------------------------------------------------------- with stand-in records

ROWS = [CheckResult("alpha", "first claim, " * 20, 3, 30, 1e-16, True),
        CheckResult("beta", "second | claim", 1, 2, float("nan"), False),
        CheckResult("gamma", "third", 2, 4, -0.5, True),
        CheckResult("delta", "extremes", 50, 50 * 100 * 101 // 2, -1e-300, True),
        CheckResult("epsilon", "subnormal", 1, 1, 5e-324, True),
        CheckResult("zeta", "overflow", 1, 1, float("-inf"), True)]


def _claim(i, verdict, verified=True, error=None):
    return ClaimResult(f"C{i:02d}", f"claim {i}", "Eq. 1", "reading", verdict, f"corrected {i}",
                       (f"evidence {i}a", f"evidence {i}b"), verified, None, 0.0, error)


CLAIMS = [_claim(1, "holds"), _claim(2, "false"), _claim(3, "false", False, "ValueError: boom"),
          _claim(4, "not mathematical")]


@pytest.fixture
def stand_ins(monkeypatch):
    """run_checks and ledger.run yield ROWS and CLAIMS; each check records what had been
    printed when it was asked for (to see that rows appear as checks finish)."""
    seen: list[str] = []
    state = {"out": None}

    def fake_checks(cfg, progress=None):
        assert progress is False
        for r in ROWS:
            seen.append(state["out"].getvalue())
            yield r

    def fake_ledger(ids=None, *, search=False, progress=None):
        assert progress is False
        yield from CLAIMS

    monkeypatch.setattr(verification, "run_checks", fake_checks)
    monkeypatch.setattr(ledger, "run", fake_ledger)
    monkeypatch.setattr(ledger, "registry", lambda: {c.id: None for c in CLAIMS})
    return seen, state


def test_rows_are_printed_as_each_check_finishes(stand_ins):
    seen, state = stand_ins
    state["out"] = io.StringIO()
    rc, out = run(["verify", "--no-proofs"], stdout=state["out"])
    assert rc == 1  # beta failed
    for k, printed in enumerate(seen):
        body = printed.splitlines()[2:]
        assert [line.split()[0] for line in body] == [r.check for r in ROWS[:k]]
    assert "ledger:" not in out
    assert f"{len(ROWS) - 1}/{len(ROWS)} checks passed" in out
    body = out.splitlines()[2:2 + len(ROWS)]
    beta = body[1]
    assert beta.split()[1:5] == ["1", "2", "nan", "FAIL"] and beta.endswith("second | claim")
    # 1e-300, the smallest subnormal and -inf keep the columns aligned
    assert [line.split()[3] for line in body[3:]] == ["-1.000e-300", "4.941e-324", "-inf"]
    assert len({line.index(" pass " if r.passed else " FAIL ") for line, r in zip(body, ROWS, strict=True)}) == 1


def test_on_a_terminal_progress_is_transient_and_verdicts_coloured(stand_ins):
    """A terminal sees the same text as a pipe once the ``running …`` lines are
    overwritten; the verdicts are green/red there, and plain with NO_COLOR."""
    _seen, state = stand_ins
    state["out"] = io.StringIO()
    rc_pipe, piped = run(["verify"], stdout=state["out"])
    state["out"] = Terminal()
    rc_tty, raw = run(["verify"], stdout=state["out"])
    assert rc_pipe == rc_tty == 1
    names = [s.name for s in check_registry()]
    assert f"\rrunning check 1/{len(names)}: {names[0]}…" in raw
    assert f"\rrunning claim 1/{len(CLAIMS)}: C01…" in raw
    assert "\x1b[32mpass" in raw and "\x1b[1;31mFAIL" in raw
    assert screen(raw) == piped
    state["out"] = Terminal()
    _, plain = run(["verify"], stdout=state["out"], NO_COLOR="1")
    assert "\x1b" not in plain and "\r" in plain and screen(plain) == piped


def test_a_claim_not_re_verified_is_named_and_fails(stand_ins):
    _seen, state = stand_ins
    state["out"] = io.StringIO()
    rc, out = run(["verify"], stdout=state["out"])
    assert rc == 1
    lines = out.splitlines()
    assert "ledger: 3/4 claims re-verified — 1 hold, 2 false, 1 not mathematical" in lines
    assert "  C03 NOT re-verified: claim 3 (ValueError: boom)" in lines
    assert "evidence 1a" not in out


def test_verbose_prints_every_claims_evidence(stand_ins):
    _seen, state = stand_ins
    state["out"] = io.StringIO()
    rc, out = run(["verify", "--verbose"], stdout=state["out"])
    assert rc == 1
    for c in CLAIMS:
        for e in c.evidence:
            assert f"      - {e}" in out
    assert "ERROR: ValueError: boom" in out
    assert "first claim, " * 20 in out  # claims in full


def test_the_claim_column_follows_the_terminal_width(stand_ins):
    """Piped, ``COLUMNS`` sets the width: the long claim is cut to fill it, never more."""
    _seen, state = stand_ins
    shown = []
    for width in (72, 100, 160):
        state["out"] = io.StringIO()
        _, out = run(["verify", "--no-proofs"], stdout=state["out"], COLUMNS=str(width))
        rows = out.splitlines()[2:5]
        assert max(display_width(line) for line in rows) <= width
        assert rows[0].endswith("…") and width - 2 <= display_width(rows[0])
        shown.append(len(rows[0].split("  pass  ")[1]))
    assert shown[0] < shown[1] < shown[2]


# ----------------------------------------------------------------------------- version, help, list


def test_python_m_rnntheory_version():
    """``python -m rnntheory --version`` (it had no entry point) and the console form agree."""
    r = subprocess.run([sys.executable, "-m", "rnntheory", "--version"], capture_output=True,
                       text=True, timeout=120, check=False)
    assert r.returncode == 0 and r.stdout == f"rnntheory {VERSION}\n" and r.stderr == ""


def _walk(parser, path=("rnntheory",)):
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            helped = {a.dest for a in action._choices_actions if a.help}
            for name, sub in action.choices.items():
                yield (*path, name), "subcommand", name in helped
                yield from _walk(sub, (*path, name))
        else:
            label = "/".join(action.option_strings) or action.dest
            ok = bool(action.help) and action.help != argparse.SUPPRESS
            yield (*path, label), "option", ok


def test_every_option_and_subcommand_has_help():
    found = list(_walk(build_parser()))
    assert len(found) > 40
    missing = [" ".join(p) for p, _, ok in found if not ok]
    assert missing == []
    subs = {p[-1] for p, kind, _ in found if kind == "subcommand"}
    assert {"verify", "prove", "bounds", "diagnose", "sweep", "report", "experiment"} <= subs


def test_an_option_without_help_would_be_found():
    p = argparse.ArgumentParser()
    p.add_argument("--bare")
    sub = p.add_subparsers()
    sub.add_parser("quiet")
    assert sorted(" ".join(x) for x, _, ok in _walk(p) if not ok) == ["rnntheory --bare", "rnntheory quiet"]


def test_experiment_list_shows_durations():
    """Each experiment once, with its expected time at the default and at --full scale
    (from the registry), in lines that fit 100 columns."""
    from rnntheory.experiments.registry import DURATIONS, EXPERIMENT_NAMES

    rc, out = run(["experiment", "--list"])
    assert rc == 0
    lines = out.splitlines()
    assert max(display_width(line) for line in lines) <= 100
    assert lines[0].split()[:3] == ["experiment", "default", "--full"]
    for name in EXPERIMENT_NAMES:
        (line,) = [x for x in lines if x.split() and x.split()[0] == name]
        default, full = DURATIONS[name]
        assert re.search(rf"^{re.escape(name)}\s+{re.escape(default)}\s+{re.escape(full)}\s", line)
        assert re.fullmatch(r"about [0-9.]+ (s|min|h)", default), default


def test_experiment_prints_text_tables_and_writes_markdown(tmp_path):
    """``experiment init-spectra``: the terminal gets aligned text (no Markdown table
    rows), the file gets the Markdown table."""
    rc, out = run(["experiment", "init-spectra", "--out", str(tmp_path)])
    assert rc == 0
    assert not any(line.startswith("|") for line in out.splitlines())
    page = (tmp_path / "init-spectra.md").read_text(encoding="utf-8")
    assert any(line.startswith("| ") for line in page.splitlines())


def test_the_guide_shows_the_real_experiment_list():
    """docs/guides/cli.md quotes ``experiment --list`` as the command prints it (piped)."""
    from pathlib import Path

    guide = (Path(__file__).parents[1] / "docs" / "guides" / "cli.md").read_text(encoding="utf-8")
    _, out = run(["experiment", "--list"])
    assert f"```text\n{out}```" in guide
