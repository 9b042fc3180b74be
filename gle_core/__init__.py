"""gle_core: a numpy engine for Generalized Latent Equilibrium (GLE) networks.

From "Backpropagation through space, time, and the brain" (Ellenberger, Haider et al.).
The engine never imports a UI library; it runs headless, in notebooks and in tests.

>>> from gle_core import GLENetwork, Simulator, inputs
>>> net = GLENetwork([1, 1], "linear", tau_m=1.0, tau_r=0.1, weights=[[[1.0]]], dt=0.01)
>>> sim = Simulator(net, inputs.Sine(omega=1.0), record=("t", "r"))
>>> sim.run(10.0)
>>> rule = sim.set_rule("ie")   # learning rules are parts: "gle", "ie", "am" (windowed BPTT)

See docs/model.md for the model, the discrete scheme and the learning rules.
"""
from . import inputs
from .errors import GLEParameterError, SimulationDiverged
from .network import ERROR_MODES, LOSSES, PARAMETER_KINDS, GLENetwork
from .optimizers import Adam, Momentum, SGD, make_optimizer
from .probes import RingBuffer
from .rules import LearningRule, LocalRule, WindowedRule
from .simulator import RECORDABLE, Simulator

__all__ = ["GLENetwork", "Simulator", "RingBuffer", "GLEParameterError", "SimulationDiverged",
           "inputs", "SGD", "Momentum", "Adam", "make_optimizer", "ERROR_MODES", "LOSSES",
           "PARAMETER_KINDS", "RECORDABLE", "LearningRule", "LocalRule", "WindowedRule"]
__version__ = "0.1.0"
