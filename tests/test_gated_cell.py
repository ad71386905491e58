"""The gated linear cell's own init, gate and limits (the conformance suite in test_cells.py covers its equations and RTRL)."""

import pytest
import torch as th
from stable_baselines3.common.env_util import make_vec_env

from sb3_rtrl import RTRLA2C
from sb3_rtrl.cells import GatedLinearCell
from sb3_rtrl.cells.gated import GATE_MAX, GATE_MIN
from sb3_rtrl.envs import DELAYED_RECALL_ID
from sb3_rtrl.safe_load import load_model


def test_time_constants_spread_over_each_group_at_a_zero_input():
    cell = GatedLinearCell(3, 8, timescales=(1.0, 1000.0), groups=2, dtype=th.float64)
    _, _, decay, gamma = cell._gates(th.zeros(1, 3, dtype=th.float64))
    expected = 10.0 ** th.linspace(0.0, 3.0, 4, dtype=th.float64)
    th.testing.assert_close(-1.0 / th.log(decay[0]), expected.repeat(2), rtol=1e-10, atol=0)
    th.testing.assert_close(gamma * gamma + decay * decay, th.ones_like(gamma), rtol=1e-12, atol=0)


def test_one_input_overwrites_a_slow_unit_and_the_others_leave_it():
    """A gate weight on one input makes that input reset the unit and write it at full strength; other steps hold."""
    cell = GatedLinearCell(2, 1, timescales=(1000.0, 1000.0), dtype=th.float64)
    with th.no_grad():
        cell.weight_ih.copy_(th.tensor([[1.0, 0.5], [20.0, 0.0]], dtype=th.float64))  # d = x0 + x1 / 2; gate on x0
    x = th.tensor([[0.0, 1.0]] * 3 + [[1.0, 0.0]] + [[0.0, 1.0]] * 3, dtype=th.float64).unsqueeze(1)
    with th.no_grad():
        h, _ = cell(x, th.full((1, 1), 5.0, dtype=th.float64), th.zeros(7, 1, dtype=th.bool))
    assert float(h[2, 0, 0]) > 4.9  # held through three steps of the other input (a = exp(-1 / 1000))
    assert abs(float(h[3, 0, 0]) - 1.0) < 1e-12  # reset and written: a = exp(-e^(20 - 6.9)) = 0, gamma = 1
    assert abs(float(h[6, 0, 0]) - 1.0) < 0.1


@pytest.mark.parametrize("dtype", [th.float32, th.float64])
def test_a_gate_beyond_its_range_stays_finite_with_finite_gradients(dtype):
    cell = GatedLinearCell(2, 4, dtype=dtype)
    x = th.tensor([[[1e4, 0.0]], [[-1e4, 0.0]], [[0.0, 1.0]]], dtype=dtype).expand(3, 2, 2).contiguous()
    with th.no_grad():
        cell.weight_ih[4:, 0] = th.tensor([1.0, -1.0, 1.0, -1.0], dtype=dtype)
    with th.no_grad():
        _, g, _, _ = cell._gates(x)
    assert float(g.max()) == GATE_MAX and float(g.min()) == GATE_MIN
    h, c_last, terms = cell.scan(x, th.ones(2, 4, dtype=dtype), th.zeros(3, 2, dtype=th.bool), need_terms=True)
    (h.sum() + c_last.sum()).backward()
    assert th.isfinite(h).all() and all(th.isfinite(p.grad).all() for p in cell.parameters())
    assert terms is not None and all(th.isfinite(a).all() for a, _ in terms.immediates)


@pytest.mark.parametrize("timescales", [(0.0, 10.0), (10.0, 1.0), (1.0, float("inf")), (1.0,), "fast", (True, 2.0)])
def test_bad_timescales_rejected(timescales):
    with pytest.raises(ValueError, match="timescales"):
        GatedLinearCell(3, 4, timescales=timescales)  # type: ignore[arg-type]


@pytest.mark.parametrize("how", ["class load", "safe load"])
def test_a_model_with_the_gated_cell_saves_and_loads(tmp_path, how):
    env = make_vec_env(DELAYED_RECALL_ID, n_envs=2, seed=0, env_kwargs=dict(delay=4))
    kwargs = dict(hidden_size=8, cell="gated", cell_kwargs=dict(timescales=(2.0, 50.0)))
    model = RTRLA2C("MlpLstmPolicy", env, n_steps=4, policy_kwargs=kwargs, seed=0)
    model.learn(32)
    model.save(tmp_path / "model.zip")
    loaded = RTRLA2C.load(tmp_path / "model.zip") if how == "class load" else load_model(str(tmp_path / "model.zip"))
    assert isinstance(loaded.policy.cell, GatedLinearCell) and loaded.policy.cell.timescales == (2.0, 50.0)
    for a, b in zip(model.policy.state_dict().values(), loaded.policy.state_dict().values()):
        th.testing.assert_close(a, b, rtol=0, atol=0)
    obs = env.reset()
    expected, state = model.predict(obs, deterministic=True)
    action, loaded_state = loaded.predict(obs, deterministic=True)
    assert (action == expected).all()
    th.testing.assert_close(th.as_tensor(loaded_state[0]), th.as_tensor(state[0]), rtol=0, atol=0)


def test_a_silent_start_writes_nothing_yet_learns():
    """With ``drive_init_std=0`` the outputs are exactly zero at init, the gate weights are those of the usual init,
    and the gradient of the drive weights is not zero: learning can give the units a use."""
    th.manual_seed(0)
    usual = GatedLinearCell(3, 6, dtype=th.float64)
    th.manual_seed(0)
    silent = GatedLinearCell(3, 6, drive_init_std=0.0, dtype=th.float64)
    assert silent.weight_ih[:6].abs().max() == 0
    th.testing.assert_close(silent.weight_ih[6:], usual.weight_ih[6:], rtol=0, atol=0)
    x = th.randn(10, 2, 3, dtype=th.float64)
    h, _ = silent(x, th.zeros(2, 6, dtype=th.float64), th.zeros(10, 2, dtype=th.bool))
    assert h.abs().max() == 0
    h.sum().backward()
    assert silent.weight_ih.grad[:6].abs().min() > 0
    th.manual_seed(0)
    small = GatedLinearCell(3, 6, drive_init_std=0.1, dtype=th.float64)
    th.testing.assert_close(small.weight_ih[:6], usual.weight_ih[:6] * 0.1 * 3**0.5, rtol=1e-12, atol=0)


@pytest.mark.parametrize("fraction, taken", [(1.0, [1] * 8), (0.5, [0, 1] * 4), (0.25, [0, 0, 0, 1] * 2), (0.0, [0] * 8)])
def test_drive_init_fraction_takes_units_spread_over_each_group(fraction, taken):
    """``drive_init_fraction``: the units it names (every ``1 / fraction``-th of each group, over the time-constant
    spread) start silent with ``drive_init_std=0``, the others keep the usual init draw for draw."""
    th.manual_seed(0)
    usual = GatedLinearCell(3, 16, groups=2, dtype=th.float64)
    th.manual_seed(0)
    part = GatedLinearCell(3, 16, groups=2, drive_init_std=0.0, drive_init_fraction=fraction, dtype=th.float64)
    rows = th.tensor(taken * 2, dtype=th.bool)
    assert th.equal(part.drive_init_rows(), rows)
    assert part.weight_ih[:16][rows].abs().sum() == 0
    th.testing.assert_close(part.weight_ih[:16][~rows], usual.weight_ih[:16][~rows], rtol=0, atol=0)
    th.testing.assert_close(part.weight_ih[16:], usual.weight_ih[16:], rtol=0, atol=0)


@pytest.mark.parametrize("value", [-0.1, 1.5, float("nan"), True, "0.5"])
def test_bad_drive_init_fraction_rejected(value):
    with pytest.raises(ValueError, match="drive_init_fraction"):
        GatedLinearCell(3, 4, drive_init_std=0.0, drive_init_fraction=value)  # type: ignore[arg-type]


@pytest.mark.parametrize("value", [-0.1, float("nan"), float("inf"), True, "0"])
def test_bad_drive_init_std_rejected(value):
    with pytest.raises(ValueError, match="drive_init_std"):
        GatedLinearCell(3, 4, drive_init_std=value)  # type: ignore[arg-type]
