"""Engine physics helpers the dashboard uses: a neuron's drive, Euler stability."""
import numpy as np
import pytest

from gle_core import GLENetwork, GLEParameterError, Simulator, inputs
from gle_core.physics import drive_trace, euler_stability


@pytest.mark.parametrize("layer", [0, 1, 2])
def test_drive_trace_is_the_soma_drive_of_every_step(layer):
    """Energy identity (docs/model.md): u_old + τm u̇ = W r_in + b + γ e at every step."""
    rng = np.random.default_rng(0)
    net = GLENetwork([1, 2, 2, 1], ["tanh", "tanh", "linear"], [[0.7, 1.3], [1.0, 0.5], [0.9]],
                     0.2, [rng.normal(size=(2, 1)), rng.normal(size=(2, 2)),
                           rng.normal(size=(1, 2))], [rng.normal(size=2), rng.normal(size=2),
                                                      rng.normal(size=1)],
                     dt=0.01, gamma=0.7, beta=0.5)
    teacher = net.copy()
    teacher.W[0] = teacher.W[0] * 1.5
    sim = Simulator(net, inputs.SumOfSines([0.49, 1.07, 1.98]), teacher,
                    record=("input", "r", "u", "u_dot", "error"), window=500, backend="numpy")
    sim.run_steps(400)
    lo = sum(net.layer_sizes[1:layer + 1])
    for i in range(net.layer_sizes[layer + 1]):
        j = lo + i
        drive = drive_trace(net, layer, i, sim.trace("input"), sim.trace("r"),
                            sim.trace("error")[:, j])
        u, ud = sim.trace("u")[:, j], sim.trace("u_dot")[:, j]
        tm = net.tau_m[layer][i]
        np.testing.assert_allclose(drive[1:], u[:-1] + tm * ud[1:], rtol=1e-12, atol=1e-13)


def test_euler_stability_of_a_setting():
    net = GLENetwork([1, 2], "linear", [[0.05, 1.0]], 0.05, dt=0.01, gamma=2.0, beta=3.0)
    st = euler_stability(net)
    assert st.ratio == pytest.approx(0.01 * 7 / 0.05) and st.tau_m == 0.05 and st.loop == 6.0
    assert st.stable and not st.monotone
    st = euler_stability(net, gamma=0.0)
    assert st.ratio == pytest.approx(0.2) and st.monotone
    assert not euler_stability(net, gamma=20.0, beta=1.0).stable
    with pytest.raises(GLEParameterError):
        euler_stability("net")
