"""SymPy derivations of the article's equations (imported lazily; never by the numeric core)."""
