"""Recurrent cells: the Elman RNN (standard, Pascanu and leaky forms)."""

from .elman import ElmanGrads, ElmanRNN, Trace

__all__ = ["ElmanGrads", "ElmanRNN", "Trace"]
