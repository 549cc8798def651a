"""Command line: ``rnntheory verify``, ``rnntheory prove``, ``rnntheory bounds WEIGHTS.npz``,
``rnntheory sweep CONFIG.toml``, ``rnntheory report RESULTS.db`` and ``rnntheory experiment NAME``."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["main"]


def _fmt(v: float) -> str:
    if v is None or not np.isfinite(v):
        return str(v)
    return f"{v: .3e}"


def _cmd_verify(args: argparse.Namespace) -> int:
    from .verification import VerifyConfig, run_checks

    cfg = VerifyConfig(T=args.T, seed=args.seed)
    rows = []
    for r in run_checks(cfg, progress=None if not args.json else False):
        rows.append(r)
    claims: list[Any] = []
    if not args.no_proofs:
        from . import ledger

        claims = list(ledger.run(progress=None if not args.json else False))
    failed = [r for r in rows if not r.passed] + [c for c in claims if not c.verified]
    if args.report:
        from .verification import write_report

        page = write_report(rows, args.report, cfg, claims)
        if not args.json:
            print(f"report: {page}")
    if args.json:
        json.dump(
            {"config": {"T": cfg.T, "n_hidden": cfg.n_hidden, "seed": cfg.seed},
             "checks": [r.as_dict() for r in rows],
             "claims": [c.as_dict() for c in claims],
             "passed": not failed},
            sys.stdout, indent=2, ensure_ascii=False,
        )
        sys.stdout.write("\n")
    else:
        head = f"{'check':<17} {'models':>6} {'pairs':>9} {'worst':>11}  {'verdict':<7} claim"
        print(head)
        print("-" * len(head))
        for r in rows:
            print(
                f"{r.check:<17} {r.models:>6} {r.pairs:>9} {_fmt(r.worst):>11}  "
                f"{'pass' if r.passed else 'FAIL':<7} {r.claim}"
            )
        print()
        if claims:
            print()
            _print_ledger(claims)
            print()
        n_ok = sum(r.passed for r in rows)
        n_claims = sum(c.verified for c in claims)
        if claims:
            print(f"{n_claims}/{len(claims)} claims re-verified (rnntheory prove for details).")
        print(
            f"{n_ok}/{len(rows)} checks passed "
            f"(T = {cfg.T}, n = {cfg.n_hidden}, seed = {cfg.seed}). "
            "'worst' is max ln(observed/bound) for bounds (<= 0 holds), "
            "the largest relative error for identities."
        )
    return 1 if failed else 0


def _print_ledger(results: list[Any]) -> None:
    width = max(len(r.verdict) for r in results) if results else 7
    print(f"{'ID':<4} {'verdict':<{width}}  {'ok':<3} claim")
    print("-" * (width + 60))
    for r in results:
        print(f"{r.id:<4} {r.verdict:<{width}}  {'yes' if r.verified else 'NO':<3} {r.claim}")
        if r.corrected and r.verdict != "holds":
            print(f"{'':<4} {'':<{width}}      corrected: {r.corrected}")
        for line in r.evidence:
            print(f"{'':<4} {'':<{width}}      - {line}")
        if r.error:
            print(f"{'':<4} {'':<{width}}      ERROR: {r.error}")


def _cmd_prove(args: argparse.Namespace) -> int:
    from . import ledger

    try:
        results = list(ledger.run(args.claim, search=args.search, progress=None if not (args.json or args.markdown) else False))
    except ValueError as exc:
        raise SystemExit(f"rnntheory prove: {exc}") from exc
    failed = [r for r in results if not r.verified]
    if args.json:
        json.dump({"claims": [r.as_dict() for r in results], "passed": not failed},
                  sys.stdout, indent=2, ensure_ascii=False)
        sys.stdout.write("\n")
    elif args.markdown:
        sys.stdout.write(ledger.to_markdown(results))
    else:
        _print_ledger(results)
        counts = {v: sum(r.verdict == v for r in results) for v in ledger.VERDICTS}
        print()
        print(f"{len(results)} claims: " + ", ".join(f"{n} {v}" for v, n in counts.items())
              + f"; {len(results) - len(failed)}/{len(results)} re-verified.")
    return 1 if failed else 0


def _load_weights(path: str, key: str | None) -> np.ndarray:
    p = Path(path)
    if not p.exists():
        raise SystemExit(f"rnntheory bounds: `WEIGHTS` file not found: {path}")
    if p.suffix == ".npy":
        return np.load(p, allow_pickle=False)
    with np.load(p, allow_pickle=False) as data:
        names = list(data.keys())
        if key is None:
            for cand in ("W_hh", "weight_hh_l0", "W", "recurrent"):
                if cand in names:
                    key = cand
                    break
            else:
                if len(names) == 1:
                    key = names[0]
                else:
                    raise SystemExit(
                        f"rnntheory bounds: cannot tell which array is W_hh among {names}; "
                        "pass --key NAME"
                    )
        if key not in names:
            raise SystemExit(f"rnntheory bounds: `--key` {key!r} not in the file, which has {names}")
        return np.asarray(data[key])


def _cmd_bounds(args: argparse.Namespace) -> int:
    from . import bounds as bd

    try:
        W = _load_weights(args.weights, args.key)
        W = np.asarray(W, dtype=np.float64) if np.issubdtype(W.dtype, np.floating) else W
        out: dict[str, Any] = {
            "shape": list(W.shape),
            "activation": args.activation,
            "gamma_w": bd.gamma_w(W),
            "gamma_h": bd.gamma_h(args.activation),
            "spectral_radius": bd.spectral_radius(W),
        }
    except (ValueError, TypeError) as exc:
        raise SystemExit(f"rnntheory bounds: {exc}") from exc
    van = bd.vanishing_guaranteed(W, args.activation)
    exp = bd.explosion_possible(W, args.activation)
    out["rate"] = out["gamma_w"] * out["gamma_h"]
    out["vanishing_guaranteed"] = van.holds
    out["explosion_possible"] = exp.holds
    out["steps_to_1e-8"] = bd.steps_to_vanish(W, args.activation, 1e-8)
    if args.json:
        json.dump(out, sys.stdout, indent=2, ensure_ascii=False)
        sys.stdout.write("\n")
        return 0
    print(f"W_hh {tuple(W.shape)}, activation {args.activation}")
    print(f"  γ_W = σ_max(W_hh)       {out['gamma_w']:.6g}")
    print(f"  γ_h = sup|f′|           {out['gamma_h']:.6g}")
    print(f"  ρ(W_hh)                 {out['spectral_radius']:.6g}   (does not bound gradients)")
    print(f"  γ_W γ_h (Eq. 12 rate)   {out['rate']:.6g}")
    print(f"  vanishing guaranteed    {van.holds}   [sufficient] {van.statement}")
    print(f"  explosion possible      {exp.holds}   [necessary]  {exp.statement}")
    if out["steps_to_1e-8"] is not None:
        print(f"  Eq. 12 guarantees ‖∂h_t/∂h_k‖ ≤ 1e-8 once t − k ≥ {out['steps_to_1e-8']}")
    return 0


def _cmd_sweep(args: argparse.Namespace) -> int:
    from .experiments.sweep import cli_sweep

    return cli_sweep(args)


def _cmd_report(args: argparse.Namespace) -> int:
    from .experiments.report import cli_report

    return cli_report(args)


def _cmd_experiment(args: argparse.Namespace) -> int:
    from .experiments.registry import cli_experiment

    return cli_experiment(args)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``rnntheory`` command."""
    p = argparse.ArgumentParser(
        prog="rnntheory",
        description="Check the theory of vanishing and exploding gradients in RNNs.",
    )
    sub = p.add_subparsers(dest="command", required=True)
    v = sub.add_parser("verify", help="run the numeric checks on the embedded default models")
    v.add_argument("--json", action="store_true", help="machine-readable output")
    v.add_argument("--T", type=int, default=100, help="sequence length (default 100)")
    v.add_argument("--seed", type=int, default=2013, help="seed of the default models")
    v.add_argument("--no-proofs", action="store_true", help="skip the claims ledger")
    v.add_argument("--report", default=None, metavar="DIR",
                   help="also write DIR/verify.md with the table and gradient-flow figures")
    v.set_defaults(func=_cmd_verify)
    pr = sub.add_parser("prove", help="the claims ledger: a verdict and evidence for every claim")
    pr.add_argument("--claim", action="append", default=None, metavar="ID",
                    help="only this claim (repeatable), e.g. --claim C12")
    out = pr.add_mutually_exclusive_group()
    out.add_argument("--json", action="store_true", help="machine-readable output")
    out.add_argument("--markdown", action="store_true", help="the ledger as a Markdown page")
    pr.add_argument("--search", action="store_true",
                    help="re-run the counterexample searches and store their results")
    pr.set_defaults(func=_cmd_prove)
    b = sub.add_parser("bounds", help="γ_W, γ_h, ρ and Pascanu's conditions for your W_hh")
    b.add_argument("weights", help=".npz (or .npy) file holding W_hh (loaded with allow_pickle=False)")
    b.add_argument("--key", default=None, help="name of W_hh in the .npz")
    b.add_argument("--activation", default="tanh", choices=["tanh", "sigmoid", "identity", "relu"])
    b.add_argument("--json", action="store_true", help="machine-readable output")
    b.set_defaults(func=_cmd_bounds)
    sw = sub.add_parser("sweep", help="run a grid of training runs on Dask into a SQLite store")
    sw.add_argument("config", help="the sweep's TOML file ([sweep] and [grid] tables)")
    sw.add_argument("--db", default=None, help="results store (default: [sweep] db of the file)")
    sw.add_argument("--workers", type=int, default=None, help="local Dask workers")
    sw.add_argument("--scheduler", default=None,
                    help="processes (default), threads, sync, or a Dask address tcp://HOST:PORT")
    sw.add_argument("--dry-run", action="store_true", help="list the runs and whether each is done")
    sw.add_argument("--no-progress", action="store_true", help="no progress bar")
    sw.set_defaults(func=_cmd_sweep)
    rp = sub.add_parser("report", help="a Markdown report with figures from a sweep's results store")
    rp.add_argument("db", help="the results store (SQLite) of a sweep")
    rp.add_argument("--out", default="report", help="output folder (default ./report)")
    rp.add_argument("--title", default=None, help="the report's title")
    rp.set_defaults(func=_cmd_report)
    ex = sub.add_parser("experiment", help="run a named experiment (small default; --full: paper scale)")
    ex.add_argument("name", nargs="?", default=None, help="the experiment (see --list)")
    ex.add_argument("--list", action="store_true", help="list the experiments")
    ex.add_argument("--full", action="store_true", help="the paper-scale configuration")
    ex.add_argument("--out", default="experiments", help="output folder (default ./experiments)")
    ex.add_argument("--seed", type=int, default=0, help="base seed (default 0)")
    ex.add_argument("--json", action="store_true", help="print the measured numbers as JSON")
    ex.set_defaults(func=_cmd_experiment)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``rnntheory`` command; returns the exit status."""
    args = build_parser().parse_args(argv)
    if getattr(args, "T", 1) < 1:
        raise SystemExit(f"rnntheory verify: `--T` must be >= 1, got {args.T}")
    return int(args.func(args))


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
