"""Proofs of the article's claims, one module per equation or claim group.

This folder installs as ``rnntheory.proofs``. Each module registers its proofs
with :func:`rnntheory.ledger.claim`; ``rnntheory prove`` imports every module
here and runs them. Stored counterexamples are in ``counterexamples/``.
"""
