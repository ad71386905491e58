"""The mixed layer's own layout and init (the conformance suite in test_cells.py covers its equations and RTRL)."""

import pytest
import torch as th
from stable_baselines3.common.env_util import make_vec_env

from sb3_rtrl import RTRLPPO
from sb3_rtrl.cells import MixedCell
from sb3_rtrl.envs import DELAYED_RECALL_ID
from sb3_rtrl.safe_load import load_model


def time_constants(cell: MixedCell) -> th.Tensor:
    return 1.0 / th.exp(cell.rtu.nu_log.detach().double())  # -1 / log(r) with r = exp(-exp(nu))


def test_layout_and_the_rtu_units_drawn_r():
    th.manual_seed(0)
    cell = MixedCell(5, 400, groups=2)
    assert (cell.elstm_width, cell.rtu_width) == (150, 50)
    assert cell.elstm.state_size == 300 and cell.rtu.state_size == 100
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


@pytest.mark.parametrize("how", ["class load", "safe load"])
def test_a_model_with_timescales_saves_and_loads_with_them(tmp_path, how):
    env = make_vec_env(DELAYED_RECALL_ID, n_envs=2, seed=0, env_kwargs=dict(delay=4))
    kwargs = dict(hidden_size=8, cell_kwargs=dict(timescales=(2.0, 50.0)))
    model = RTRLPPO("MlpLstmPolicy", env, n_steps=8, batch_size=8, policy_kwargs=kwargs, seed=0)
    model.learn(16)
    model.save(tmp_path / "model.zip")
    loaded = RTRLPPO.load(tmp_path / "model.zip") if how == "class load" else load_model(str(tmp_path / "model.zip"))
    assert loaded.policy.cell.rtu.timescales == (2.0, 50.0)
    obs = env.reset()
    for a, b in zip(model.policy.state_dict().values(), loaded.policy.state_dict().values()):
        th.testing.assert_close(a, b, rtol=0, atol=0)
    expected, state = model.predict(obs, deterministic=True)
    action, loaded_state = loaded.predict(obs, deterministic=True)
    assert (action == expected).all()
    th.testing.assert_close(th.as_tensor(loaded_state[0]), th.as_tensor(state[0]), rtol=0, atol=0)
