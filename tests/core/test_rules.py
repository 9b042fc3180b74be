"""Learning rules as parts of the one Simulator; the engine's structure (imports, tables)."""
import ast
import os

import numpy as np
import pytest

from gle_core import (GLENetwork, GLEParameterError, SimulationDiverged, Simulator, inputs)
from gle_core.adjoint import energy_loss_scale, exact_gradients
from gle_core.rules import LocalRule, WindowedRule, make_rule

GLE_CORE = os.path.join(os.path.dirname(__file__), "..", "..", "gle_core")


def _pair_net(gamma=0.5, batch=2):
    student = GLENetwork([1, 2, 1], ["tanh", "linear"], [[0.6, 1.2], [0.8]], 0.3,
                         [[[0.4], [0.9]], [[0.7, -0.3]]], dt=0.01, gamma=gamma, beta=0.5,
                         batch_size=batch)
    teacher = GLENetwork([1, 2, 1], ["tanh", "linear"], 1.0, 0.3,
                         [[[1.0], [-1.0]], [[1.0, 0.5]]], dt=0.01)
    return student, teacher


def _sim(rule=None, backend="numpy", **kw):
    student, teacher = _pair_net()
    kw.setdefault("lr", 1e-2)
    return Simulator(student, inputs.Sine(omega=2.0), teacher, rule=rule, optimizer="sgd",
                     learn={"W": True}, record=("t", "loss", "W", "error"), window=5000,
                     backend=backend, **kw)


def test_default_rule_follows_the_networks_error_mode():
    sim = _sim()
    assert isinstance(sim.rule, LocalRule) and sim.rule.name == "gle"
    sim.network.set_error_mode("ie")
    assert sim.rule.name == "ie"
    sim.set_rule("gle")
    assert sim.network.error_mode == "gle"


def test_switching_rules_on_a_running_simulation():
    """GLE → AM → IE on one simulator: time, state and optimizer carry on; under AM the
    weights stay fixed within a window and move once per window."""
    sim = _sim()
    sim.run_steps(100)
    w_gle = sim.trace("W")
    assert np.all(np.any(np.diff(w_gle[5:], axis=0) != 0, axis=1))    # a step every step
    rule = sim.set_rule("am", window=0.25)                         # 25 steps
    assert sim.rule is rule and rule.window_steps == 25 and sim.t == pytest.approx(1.0)
    sim.run_steps(110)
    w = sim.trace("W")[100:]
    moves = np.flatnonzero(np.any(np.diff(w, axis=0) != 0, axis=1))
    np.testing.assert_array_equal(moves, [23, 48, 73, 98])        # after steps 25, 50, ...
    assert rule.n_updates == 4 and len(rule.tape) == 10
    sim.set_rule("ie")
    assert rule.tape is None and sim.network.error_mode == "ie"   # the partial window dropped
    sim.run_steps(20)
    assert sim.n_steps == 230
    w = sim.trace("W")[210:]
    assert np.all(np.any(np.diff(w, axis=0) != 0, axis=1))


def test_windowed_rule_descends_the_windows_exact_gradient():
    sim = _sim(rule="am", rule_options={"window": 0.3}, lr=1e-3)
    net0 = sim.network.copy()
    w0 = [w.copy() for w in sim.network.W]
    sim.run_steps(30)
    stim = inputs.Sine(omega=2.0)
    stim.reset(2)
    xs = stim.sample(0.01 * np.arange(30))
    teacher = _pair_net()[1]
    teacher.reset_state(2)
    ys = np.stack([teacher.step(xs[k]) for k in range(30)])
    ref = exact_gradients(net0, xs, ys)
    kappa = energy_loss_scale(net0)
    for l in range(2):
        np.testing.assert_allclose(sim.network.W[l], w0[l] - 1e-3 * kappa * ref.grads["W"][l],
                                   rtol=1e-13, atol=1e-16)


@pytest.mark.parametrize("rule", ["gle", "ie", "am"])
@pytest.mark.parametrize("backend", ["numpy", "auto"])
def test_the_bound_check_has_the_same_cadence_in_every_rule(rule, backend):
    """|W| passes 1e12 long before anything overflows: every rule raises at the periodic
    check (every 256 steps), naming the variable, its layer and the time."""
    opts = {"window": 0.05} if rule == "am" else {}
    student, teacher = _pair_net(gamma=0.0)
    sim = Simulator(student, inputs.Sine(omega=2.0), teacher, rule=rule, rule_options=opts,
                    optimizer="adam", lr=1e11, learn={"W": [1]}, record=("t",), window=10,
                    backend=backend)
    with pytest.raises(SimulationDiverged) as exc:
        sim.run_steps(2000)
    err = exc.value
    assert err.t == pytest.approx(2.56) and sim.n_steps == 256
    assert err.variable in ("u", "error", "W") and err.layer in (1, 2)
    assert "exceeded" in str(err) and sim.diverged is err


def test_bad_rules_are_refused():
    with pytest.raises(GLEParameterError, match="rule"):
        _sim(rule="bptt")
    with pytest.raises(GLEParameterError, match="window"):
        _sim(rule="am", rule_options={"window": 0.0})
    with pytest.raises(GLEParameterError, match="window"):
        _sim(rule="am", rule_options={"window": 0.001})         # shorter than dt
    with pytest.raises(GLEParameterError, match="method"):
        make_rule("am", method="autodiff")
    with pytest.raises(GLEParameterError, match="rule options"):
        make_rule("gle", window=3.0)
    with pytest.raises(GLEParameterError, match="error_mode"):
        LocalRule("bp")
    rule = WindowedRule(1.0)
    with pytest.raises(GLEParameterError, match="rule options"):
        make_rule(rule, window=2.0)


def test_reset_clears_the_rules_window():
    sim = _sim(rule="am", rule_options={"window": 0.5})
    sim.run_steps(120)
    assert sim.rule.n_updates == 2 and len(sim.rule.tape) == 20
    sim.reset()
    assert sim.rule.n_updates == 0 and sim.rule.tape is None and sim.n_steps == 0


# ----------------------------------------------------------------------------- structure

def _imports(path, package="gle_core"):
    """gle_core modules imported anywhere in a module (function-level imports too)."""
    tree = ast.parse(open(path, encoding="utf-8").read())
    out = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            if node.level == 1:
                if node.module:
                    out.add(node.module.split(".")[0])
                else:
                    out.update(a.name for a in node.names)
            elif node.module and node.module.startswith(package + "."):
                out.add(node.module.split(".")[1])
            elif node.module == package:
                out.update(a.name for a in node.names)
        elif isinstance(node, ast.Import):
            for a in node.names:
                if a.name.startswith(package + "."):
                    out.add(a.name.split(".")[1])
    return out


def test_the_gle_core_import_graph_has_no_loop():
    mods = {f[:-3] for f in os.listdir(GLE_CORE) if f.endswith(".py") and f != "__init__.py"}
    graph = {m: _imports(os.path.join(GLE_CORE, m + ".py")) & mods - {m} for m in mods}
    assert "_kernel" in graph["simulator"] and "simulator" not in graph["_kernel"]
    state = {}

    def visit(m, path):
        state[m] = "open"
        for n in sorted(graph[m]):
            assert state.get(n) != "open", "import loop: " + " -> ".join(path + [n])
            if n not in state:
                visit(n, path + [n])
        state[m] = "done"

    for m in sorted(mods):
        if m not in state:
            visit(m, [m])


def test_kernel_reads_no_private_attribute_of_another_module():
    src = open(os.path.join(GLE_CORE, "_kernel.py"), encoding="utf-8").read()
    tree = ast.parse(src)
    private = {n.attr for n in ast.walk(tree) if isinstance(n, ast.Attribute)
               and n.attr.startswith("_") and not n.attr.startswith("__")}
    assert private == set(), private


def test_periodic_stimuli_are_tabulated_once():
    stim = inputs.SmoothedSquare(period=4.0, sigma=0.05, max_shift=2.0)
    stim.reset(5, seed=1)
    table = stim.step_table(0.01)
    assert table.shape == (400, 5, 1)
    np.testing.assert_array_equal(table, stim.sample(0.01 * np.arange(400)))
    k = np.arange(400, 4000, 37)       # later periods: a lookup, ≈ the direct evaluation
    np.testing.assert_allclose(table[k % 400], stim.sample(0.01 * k), rtol=0, atol=1e-11)
    assert stim.step_table(0.03) is None                    # 4 / 0.03: not whole steps
    assert inputs.SumOfSines([0.49, 1.07]).step_table(0.01) is None
    arr = inputs.ArrayInput(np.arange(7.0), 0.01)
    arr.reset(2)
    np.testing.assert_array_equal(arr.step_table(0.01)[:, 0, 0], np.arange(7.0))
    sim = Simulator(GLENetwork([1, 1], "linear", 1.0, 0.1, dt=0.01, batch_size=5), stim,
                    record=("input",), window=3000, seed=1)
    sim.run_steps(2500)
    np.testing.assert_allclose(sim.trace("input")[:, 0],
                               stim.sample(0.01 * np.arange(2500))[:, 0, 0], atol=1e-11)


def test_switching_rules_restarts_the_optimizers_moments():
    sim = _sim()
    sim.optimizer = __import__("gle_core").Momentum(1.0, 0.9)
    sim.run_steps(50)
    assert sim.optimizer.state
    sim.set_rule("am", window=0.2)
    assert sim.optimizer.state == {}
    sim.run_steps(40)
    assert set(sim.optimizer.state) == {("W", 0), ("W", 1)}
