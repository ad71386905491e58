"""The mixed layer's own layout and init (the conformance suite in test_cells.py covers its equations and RTRL)."""

import pytest
import torch as th

from sb3_rtrl.cells import MixedCell


def time_constants(cell: MixedCell) -> th.Tensor:
    return 1.0 / th.exp(cell.rtu.nu_log.detach().double())  # -1 / log(r) with r = exp(-exp(nu))


def test_layout_and_the_rtu_units_drawn_r():
    th.manual_seed(0)
    cell = MixedCell(5, 400, groups=2)
    assert (cell.elstm_width, cell.rtu_width) == (150, 50)
    assert cell.elstm.hidden_size == 300 and cell.rtu.hidden_size == 100
    r2 = th.exp(-2 * th.exp(cell.rtu.nu_log.detach()))
    assert abs(float(r2.mean()) - 0.5) < 0.1  # r^2 uniform in [0, 1], the RTU's own init
    ranged = MixedCell(5, 400, r_min=0.5, r_max=0.9)
    r = th.exp(-th.exp(ranged.rtu.nu_log.detach()))
    assert 0.5 - 1e-4 <= float(r.min()) and float(r.max()) <= 0.9 + 1e-4


def test_timescales_spread_the_rtu_units_over_each_group():
    cell = MixedCell(5, 64, groups=2, timescales=(1.0, 1000.0))
    expected = 10.0 ** th.linspace(0.0, 3.0, 4, dtype=th.float64)
    th.testing.assert_close(time_constants(cell), expected.repeat(2), rtol=1e-5, atol=0)


def test_timescales_and_an_r_range_together_are_refused():
    with pytest.raises(ValueError, match="not both"):
        MixedCell(5, 16, timescales=(1.0, 10.0), r_min=0.5)
