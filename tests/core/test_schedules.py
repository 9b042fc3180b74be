"""The plateau schedule halves the rate once 2 epochs without a better validation loss have
passed (PyTorch's ReduceLROnPlateau(factor=0.5, patience=2) semantics)."""
import math

import pytest

from gle_core import GLEParameterError
from gle_core.schedules import ReduceOnPlateau, make_schedule


def test_halves_after_two_tolerated_epochs_without_improvement_and_counts_again():
    s = ReduceOnPlateau(1e-3, factor=0.5, patience=2)
    # improve, improve, worse, equal, worse (3rd bad) -> halve; better, worse, worse, NaN -> halve
    rates = [s.step(v) for v in (2.30, 2.29, 2.31, 2.29, 2.40, 2.28, 2.5, 2.6, float("nan"))]
    assert rates == [1e-3, 1e-3, 1e-3, 1e-3, 5e-4, 5e-4, 5e-4, 5e-4, 2.5e-4]
    assert s.best == 2.28 and s.bad_epochs == 0


def test_an_improvement_below_the_relative_threshold_does_not_count():
    s = ReduceOnPlateau(1e-3, patience=1, threshold=1e-4)
    s.step(2.28)
    s.step(2.2799)                   # 4e-5 relative: not an improvement
    assert s.best == 2.28 and s.bad_epochs == 1
    assert s.step(2.2799) == 5e-4    # the 2nd such epoch exceeds patience 1
    s.step(2.27)                     # 4e-3 relative: counts
    assert s.best == 2.27 and s.bad_epochs == 0


def test_state_round_trip_continues_identically():
    a = ReduceOnPlateau(1e-3)
    for v in (2.3, 2.4):
        a.step(v)
    b = ReduceOnPlateau(1e-3)
    b.load_state_dict(a.state_dict())
    assert [a.step(v) for v in (2.5, 2.2, 2.6, 2.7)] == [b.step(v) for v in (2.5, 2.2, 2.6, 2.7)]
    fresh = ReduceOnPlateau(1e-3)
    assert fresh.best == math.inf


def test_bad_settings_name_the_parameter():
    with pytest.raises(GLEParameterError, match="factor"):
        ReduceOnPlateau(1e-3, factor=1.0)
    with pytest.raises(GLEParameterError, match="patience"):
        ReduceOnPlateau(1e-3, patience=0)
    with pytest.raises(GLEParameterError, match="threshold"):
        ReduceOnPlateau(1e-3, threshold=1.0)
    with pytest.raises(GLEParameterError, match="schedule"):
        make_schedule("cosine", 1e-3)
