"""The mixed layer's own layout and init (the conformance suite in test_cells.py covers its equations and RTRL)."""

import pytest
import torch as th

from sb3_rtrl.cells import MixedCell
from sb3_rtrl.cells.mixed import DEFAULT_TIMESCALES


def time_constants(cell: MixedCell) -> th.Tensor:
    return 1.0 / th.exp(cell.rtu.nu_log.detach().double())  # -1 / log(r) with r = exp(-exp(nu))


def test_default_spreads_the_rtu_units_time_constants_over_each_group():
    cell = MixedCell(5, 64, groups=2)
    assert (cell.elstm_width, cell.rtu_width) == (24, 8)
    tau = time_constants(cell)
    low, high = DEFAULT_TIMESCALES
    expected = low * (high / low) ** th.linspace(0.0, 1.0, 4, dtype=th.float64)
    th.testing.assert_close(tau, expected.repeat(2), rtol=1e-5, atol=0)
    assert high >= 200.0  # some units keep an input for hundreds of steps at any width


def test_an_r_range_given_draws_r_instead():
    th.manual_seed(0)
    cell = MixedCell(5, 400, r_min=0.5, r_max=0.9)
    r = th.exp(-th.exp(cell.rtu.nu_log.detach()))
    assert 0.5 - 1e-4 <= float(r.min()) and float(r.max()) <= 0.9 + 1e-4 and float(r.std()) > 0.05
    spread = MixedCell(5, 400, timescales=(2.0, 20.0))
    th.testing.assert_close(time_constants(spread)[[0, -1]], th.tensor([2.0, 20.0], dtype=th.float64), rtol=1e-5, atol=0)


def test_timescales_and_an_r_range_together_are_refused():
    with pytest.raises(ValueError, match="not both"):
        MixedCell(5, 16, timescales=(1.0, 10.0), r_min=0.5)
