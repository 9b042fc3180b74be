"""Exceptions raised by the GLE engine.

Two kinds of failure are distinguished so that a caller (a test, a notebook or the
dashboard) can react differently:

* :class:`GLEParameterError` -- a value handed to the engine is out of its allowed range
  (a time constant below the Euler stability limit, a shape that does not fit, a
  non-finite input, ...). Raised *before* anything is simulated.
* :class:`SimulationDiverged` -- a run that was valid when it started became unstable
  (overflow or a non-finite value appeared). Raised at the step where it happened; the
  network keeps the last finite state so that the caller can inspect it or reset.
"""
from __future__ import annotations

__all__ = ["GLEParameterError", "SimulationDiverged"]


class GLEParameterError(ValueError):
    """A parameter is outside its allowed range.

    Parameters
    ----------
    name : str
        The parameter's name as the user knows it (``"tau_m[layer 1]"``, ``"dt"``).
    value : object
        The offending value (shown in the message).
    allowed : str
        The allowed range in words, e.g. ``"[0.01, inf) a.u."``.
    hint : str, optional
        One sentence on why, or what to do.
    """

    def __init__(self, name: str, value, allowed: str, hint: str = ""):
        self.name = name
        self.value = value
        self.allowed = allowed
        self.hint = hint
        msg = f"{name} = {value!r} is out of range; allowed: {allowed}"
        if hint:
            msg += f". {hint}"
        super().__init__(msg)

    def __reduce__(self):
        # rebuilt from its fields (the default would call __init__ with the message only):
        # raised on a Dask worker, it reaches the client intact
        return (type(self), (self.name, self.value, self.allowed, self.hint))


class SimulationDiverged(FloatingPointError):
    """The simulation produced an overflow or a non-finite value.

    Attributes
    ----------
    variable : str
        Name of the state or parameter that blew up (``"u"``, ``"error"``, ``"W"``, ...).
    layer : int
        1-based layer index (``0`` for the input).
    t : float
        Simulated time (a.u.) of the step at which it happened.
    value : float
        The largest magnitude (or the non-finite value) found in that variable.
    """

    def __init__(self, variable: str, layer: int, t: float, value: float, detail: str = ""):
        self.variable = variable
        self.layer = layer
        self.t = t
        self.value = value
        self.detail = detail
        msg = (f"simulation diverged at t = {t:.4g} a.u.: {variable} in layer {layer} "
               f"reached {value:.3g}")
        if detail:
            msg += f" ({detail})"
        super().__init__(msg)

    def __reduce__(self):
        # rebuilt from its fields: pickled to and from Dask workers, copied with a simulation
        return (type(self), (self.variable, self.layer, self.t, self.value, self.detail))
