"""The mixed layer's own layout and init (the conformance suite in test_cells.py covers its equations and RTRL)."""

import pytest
import torch as th
from stable_baselines3.common.callbacks import EvalCallback
from stable_baselines3.common.env_util import make_vec_env

from sb3_rtrl import RTRLA2C, RTRLPPO
from sb3_rtrl.cells import CELLS, MixedCell
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


def test_gated_units_as_a_third_part_of_each_group():
    th.manual_seed(0)
    cell = MixedCell(5, 64, groups=2, gated_fraction=0.125, gated_timescales=(2.0, 200.0), dtype=th.float64)
    assert (cell.elstm_width, cell.rtu_width, cell.gated_width) == (20, 8, 4)
    assert cell.gated is not None and cell.gated.state_size == 8 and cell.gated.timescales == (2.0, 200.0)
    assert [spec.name for spec in cell.rtrl_specs][-2:] == ["gated.weight_ih", "gated.bias"]
    # Per group: its eLSTM units, its RTU units, its gated units.
    state = th.arange(64, dtype=th.float64).unsqueeze(0)
    elstm, rtu, gated = cell.split_parts(state)
    assert gated[0].tolist() == [28.0, 29.0, 30.0, 31.0, 60.0, 61.0, 62.0, 63.0]
    assert rtu[0, :8].tolist() == list(map(float, range(20, 28)))
    th.testing.assert_close(cell.join_parts([elstm, rtu, gated]), state, rtol=0, atol=0)
    x = th.randn(7, 3, 5, dtype=th.float64)
    starts = th.rand(7, 3) < 0.2
    c0 = th.randn(3, 64, dtype=th.float64)
    for got, expected in zip(cell(x, c0, starts), cell.reference_scan(x, c0, starts)):
        th.testing.assert_close(got, expected, rtol=1e-12, atol=1e-13)
    assert "gated" not in dict(MixedCell(5, 64).named_children())  # none by default: files saved before load as they were


@pytest.mark.parametrize(
    "width, widths",
    [(8, (4, 2, 2)), (16, (10, 2, 4)), (32, (20, 4, 8)), (64, (40, 16, 8)), (128, (96, 16, 16)), (256, (192, 32, 32))],
)
def test_min_units_hold_at_narrow_widths_and_the_fractions_beyond(width, widths):
    # At least 8 gated units per group while they take a quarter at most, and 8 complex RTU units (16 reals) while
    # the two take three eighths at most; an eighth of the width each once that is more.
    kwargs = dict(rtu_fraction=0.125, rtu_min_units=8, gated_fraction=0.125, gated_min_units=8)
    cell = MixedCell(5, 2 * width, groups=2, **kwargs)
    assert (cell.elstm_width, cell.rtu_width, cell.gated_width) == widths
    assert MixedCell(5, 64, gated_min_units=8).gated_width == 8  # gated units without a fraction


@pytest.mark.parametrize("name", ["rtu_min_units", "gated_min_units"])
@pytest.mark.parametrize("units", [-1, 2.5, True, "8"])
def test_bad_min_units_rejected(name, units):
    with pytest.raises(ValueError, match=name):
        MixedCell(5, 64, **{name: units})


@pytest.mark.parametrize("fraction", [-0.1, 0.75, 1.0, "half"])
def test_bad_gated_fraction_rejected(fraction):
    with pytest.raises(ValueError, match="gated_fraction"):
        MixedCell(5, 64, gated_fraction=fraction)


def test_elstm_output_scale_scales_the_elstm_part_only():
    """``elstm_output_scale`` multiplies the eLSTM units' outputs; init, state and the other parts' outputs are the same."""
    defaults = CELLS["mixed_gated"].policy_defaults
    layers = []
    for scale in (1.0, 4.0):
        th.manual_seed(0)
        layers.append(MixedCell(5, 64, groups=2, dtype=th.float64, **{**defaults, "elstm_output_scale": scale}))
    plain, scaled = layers
    assert scaled.elstm.output_scale == 4.0 and plain.elstm.output_scale == 1.0
    for (key, value), (other_key, other) in zip(scaled.state_dict().items(), plain.state_dict().items()):
        assert key == other_key and th.equal(value, other)
    x = th.randn(6, 3, 5, dtype=th.float64)
    starts = th.rand(6, 3) < 0.2
    c0 = th.randn(3, 64, dtype=th.float64)
    (h_scaled, c_scaled), (h, c) = scaled(x, c0, starts), plain(x, c0, starts)
    assert th.equal(c_scaled, c)
    parts, expected = scaled.split_parts(h_scaled), plain.split_parts(h)
    th.testing.assert_close(parts[0], 4.0 * expected[0], rtol=1e-12, atol=1e-14)
    for got, want in zip(parts[1:], expected[1:]):
        assert th.equal(got, want)


def test_silent_gated_units_in_the_layer():
    """``gated_drive_init_std=0``: the layer's gated outputs start at exactly zero, its other parts as they were."""
    th.manual_seed(0)
    usual = MixedCell(3, 16, gated_fraction=0.25, dtype=th.float64)
    th.manual_seed(0)
    silent = MixedCell(3, 16, gated_fraction=0.25, gated_drive_init_std=0.0, dtype=th.float64)
    assert silent.gated is not None and silent.gated.drive_init_std == 0.0
    x = th.randn(6, 2, 3, dtype=th.float64)
    starts = th.zeros(6, 2, dtype=th.bool)
    with th.no_grad():
        h_usual, _ = usual(x, th.zeros(2, 16, dtype=th.float64), starts)
        h_silent, _ = silent(x, th.zeros(2, 16, dtype=th.float64), starts)
    parts_usual, parts_silent = usual.split_parts(h_usual), silent.split_parts(h_silent)
    assert parts_silent[2].abs().max() == 0 < parts_usual[2].abs().max()
    for got, expected in zip(parts_silent[:2], parts_usual[:2]):
        th.testing.assert_close(got, expected, rtol=0, atol=0)


@pytest.mark.parametrize("groups", [1, 2])
def test_gated_units_start_silent_only_in_groups_wider_than_gated_silent_above(groups):
    """
    ``gated_silent_above``: a group wider than it starts its gated units silent, one as wide or narrower starts them as
    usual; an explicit ``gated_drive_init_std`` wins over it; the width counted is a group's, not the layer's.
    """
    kwargs = dict(gated_fraction=0.25, groups=groups, dtype=th.float64)
    assert MixedCell(3, 16 * groups, gated_silent_above=15, **kwargs).gated.drive_init_std == 0.0  # type: ignore[union-attr]
    assert MixedCell(3, 16 * groups, gated_silent_above=16, **kwargs).gated.drive_init_std is None  # type: ignore[union-attr]
    assert MixedCell(3, 16 * groups, **kwargs).gated.drive_init_std is None  # type: ignore[union-attr]
    explicit = MixedCell(3, 16 * groups, gated_silent_above=4, gated_drive_init_std=0.3, **kwargs)
    assert explicit.gated is not None and explicit.gated.drive_init_std == 0.3
    silent = MixedCell(3, 16 * groups, gated_silent_above=15, **kwargs)
    assert silent.gated is not None and silent.gated.weight_ih[: silent.gated.state_size].abs().max() == 0


def test_gated_loud_fraction_keeps_that_share_of_the_gated_units_loud():
    """``gated_loud_fraction``: where the gated units start silent, that share of each group's keeps the usual drive
    init; without it (or at 0) all start silent, and with no silent start it changes nothing."""
    kwargs = dict(gated_fraction=0.25, groups=2, gated_silent_above=1, dtype=th.float64)
    for fraction, loud in ((0.0, 0), (0.5, 2), (1.0, 4)):
        th.manual_seed(0)
        layer = MixedCell(3, 32, gated_loud_fraction=fraction, **kwargs)  # type: ignore[arg-type]
        assert layer.gated is not None and layer.gated_width == 4
        writes = layer.gated.weight_ih[: layer.gated.state_size].abs().sum(dim=1) > 0
        assert writes.view(2, 4).sum(dim=1).tolist() == [loud, loud]
    th.manual_seed(0)
    usual = MixedCell(3, 32, gated_fraction=0.25, groups=2, dtype=th.float64)
    th.manual_seed(0)
    loud_anyway = MixedCell(3, 32, gated_fraction=0.25, groups=2, gated_loud_fraction=0.5, dtype=th.float64)
    for got, want in zip(loud_anyway.parameters(), usual.parameters()):
        assert th.equal(got, want)


@pytest.mark.parametrize("value", [-0.5, 1.5, float("nan"), True, "0.5"])
def test_bad_gated_loud_fraction_rejected(value):
    with pytest.raises(ValueError, match="gated_loud_fraction"):
        MixedCell(5, 64, gated_fraction=0.125, gated_loud_fraction=value)


@pytest.mark.parametrize("value", [-1, 2.5, True, "64"])
def test_bad_gated_silent_above_rejected(value):
    with pytest.raises(ValueError, match="gated_silent_above"):
        MixedCell(5, 64, gated_fraction=0.125, gated_silent_above=value)


@pytest.mark.parametrize("width, silent", [(32, False), (64, False), (128, True), (256, True)])
def test_the_v2_layer_is_the_gated_layer_with_silent_gated_units_in_wide_groups(width, silent):
    """
    ``"mixed_gated_v2"`` builds the layout of ``"mixed_gated"`` at every width; its gated units start silent above 64
    units a head and otherwise exactly as ``"mixed_gated"``'s.
    """
    layers = []
    for name in ("mixed_gated", "mixed_gated_v2"):
        th.manual_seed(0)
        layers.append(MixedCell(5, 2 * width, groups=2, dtype=th.float64, **CELLS[name].policy_defaults))
    old, new = layers
    assert (new.elstm_width, new.rtu_width, new.gated_width) == (old.elstm_width, old.rtu_width, old.gated_width)
    assert [k for k in new.state_dict()] == [k for k in old.state_dict()]
    assert old.gated is not None and new.gated is not None
    n = new.gated.state_size
    if silent:
        assert new.gated.weight_ih[:n].abs().max() == 0 < old.gated.weight_ih[:n].abs().max()
        assert th.equal(new.gated.weight_ih[n:], old.gated.weight_ih[n:])  # the gate weights as usual
    else:
        assert th.equal(new.gated.weight_ih, old.gated.weight_ih)
    for (key, value), other in zip(new.state_dict().items(), old.state_dict().values()):
        assert key == "gated.weight_ih" or th.equal(value, other), key


@pytest.mark.parametrize("width", [32, 64, 72, 256])
def test_the_v3_layer_is_the_v2_layer_read_with_its_elstm_outputs_normalized_in_wide_groups(width):
    """
    ``"mixed_gated_v3"`` is ``"mixed_gated_v2"`` (same parameters, same recurrence) whose heads, in groups wider than
    64 units, read each group's eLSTM outputs normalized over that group's eLSTM units, times 0.25; the RTU and gated
    outputs as they are. Narrower groups are read as ``"mixed_gated_v2"``'s.
    """
    layers = []
    for name in ("mixed_gated_v2", "mixed_gated_v3"):
        th.manual_seed(0)
        layers.append(MixedCell(5, 2 * width, groups=2, dtype=th.float64, **CELLS[name].policy_defaults))
    old, new = layers
    assert old.elstm_read_norm == 0.0 and new.elstm_read_norm == (0.25 if width > 64 else 0.0)
    for (key, value), (other_key, other) in zip(new.state_dict().items(), old.state_dict().items()):
        assert key == other_key and th.equal(value, other)
    x = th.randn(6, 3, 5, dtype=th.float64)
    starts = th.rand(6, 3) < 0.2
    c0 = th.randn(3, 2 * width, dtype=th.float64)
    (h, c), (h_old, c_old) = new(x, c0, starts), old(x, c0, starts)
    assert th.equal(h, h_old) and th.equal(c, c_old)
    assert old.read_out(h) is h
    if width <= 64:
        assert new.read_out(h) is h
        return
    read = new.split_parts(new.read_out(h))
    raw = new.split_parts(h)
    for got, want in zip(read[1:], raw[1:]):
        assert th.equal(got, want)
    for group in range(2):
        units = slice(group * new.elstm_width, (group + 1) * new.elstm_width)
        part, raw_part = read[0][..., units], raw[0][..., units]
        centred = raw_part - raw_part.mean(-1, keepdim=True)
        expected = centred / (raw_part.var(-1, unbiased=False, keepdim=True) + 1e-5).sqrt()
        th.testing.assert_close(part, 0.25 * expected, rtol=1e-10, atol=1e-12)
    # One group's read does not depend on the other group's units.
    moved = h.clone()
    moved[..., width:] += th.randn_like(moved[..., width:])
    th.testing.assert_close(new.read_out(moved)[..., :width], new.read_out(h)[..., :width], rtol=0, atol=0)


@pytest.mark.parametrize("value", [-0.25, True, "0.25", float("nan"), float("inf")])
def test_bad_elstm_read_norm_rejected(value):
    with pytest.raises(ValueError, match="elstm_read_norm must be"):
        MixedCell(5, 64, elstm_read_norm=value)


@pytest.mark.parametrize("value", [-1, True, 64.0, "64"])
def test_bad_elstm_read_norm_above_rejected(value):
    with pytest.raises(ValueError, match="elstm_read_norm_above must be"):
        MixedCell(5, 64, elstm_read_norm=0.25, elstm_read_norm_above=value)


def test_a_single_elstm_unit_is_read_as_it_is():
    """Normalized over one unit an output would be 0: a group with one eLSTM unit is read as it is."""
    kwargs = dict(CELLS["mixed_gated"].policy_defaults, elstm_read_norm=0.25)
    cell = MixedCell(5, 8, groups=2, **kwargs)
    assert cell.elstm_width == 1 and cell.elstm_read_norm == 0.0
    h = th.randn(3, 8)
    assert cell.read_out(h) is h
    wider = MixedCell(5, 10, groups=2, **kwargs)
    assert wider.elstm_width == 2 and wider.elstm_read_norm == 0.25


def test_the_heads_read_the_cells_read_out_when_acting_and_training():
    model = RTRLPPO(
        "MlpLstmPolicy",
        "CartPole-v1",
        n_steps=8,
        batch_size=8,
        n_epochs=1,
        policy_kwargs=dict(cell="mixed_gated_v3", lstm_hidden_size=72),
    )
    cell, shapes = model.policy.cell, []
    read_out = cell.read_out

    def recorded(h: th.Tensor) -> th.Tensor:
        shapes.append(tuple(h.shape))
        return read_out(h)

    cell.read_out = recorded  # type: ignore[method-assign]
    model.learn(8)
    assert (1, 72) in shapes and (8, 72) in shapes  # one env's step; the minibatch of 8 steps


@pytest.mark.parametrize("how", ["class load", "safe load"])
def test_a_v3_model_saves_and_loads_with_its_read(tmp_path, how):
    env = make_vec_env(DELAYED_RECALL_ID, n_envs=2, seed=0, env_kwargs=dict(delay=4))
    kwargs = dict(hidden_size=72, cell="mixed_gated_v3")
    model = RTRLPPO("MlpLstmPolicy", env, n_steps=8, batch_size=8, policy_kwargs=kwargs, seed=0)
    model.learn(16)
    model.save(tmp_path / "model.zip")
    loaded = RTRLPPO.load(tmp_path / "model.zip") if how == "class load" else load_model(str(tmp_path / "model.zip"))
    assert loaded.policy.cell_name == "mixed_gated_v3" and loaded.policy.cell.elstm_read_norm == 0.25
    obs = th.as_tensor(env.reset())
    state, starts = th.zeros(2, 72), th.ones(2)
    with th.no_grad():
        for _ in range(3):
            (dist, values, next_state), (loaded_dist, loaded_values, _) = (
                m.policy.step(obs, state, starts) for m in (model, loaded)
            )
            th.testing.assert_close(loaded_dist.distribution.probs, dist.distribution.probs, rtol=0, atol=0)
            th.testing.assert_close(loaded_values, values, rtol=0, atol=0)
            state, starts = next_state, th.zeros(2)
            obs = th.as_tensor(env.step(dist.get_actions().numpy())[0])


def v4_layers(width: int) -> tuple[MixedCell, MixedCell]:
    layers = []
    for name in ("mixed_gated_v2", "mixed_gated_v4"):
        th.manual_seed(0)
        layers.append(MixedCell(5, 2 * width, groups=2, dtype=th.float64, **CELLS[name].policy_defaults))
    return layers[0], layers[1]


@pytest.mark.parametrize("width", [32, 64, 72, 256])
def test_the_v4_layer_is_the_v2_layer_read_with_its_gated_units_standardized_in_narrow_groups(width):
    """
    ``"mixed_gated_v4"`` is ``"mixed_gated_v2"`` (same parameters, same recurrence) whose heads, in groups of at most
    64 units, read each gated unit minus its running mean over its running standard deviation; the eLSTM and RTU
    outputs as they are. Wider groups are read as ``"mixed_gated_v2"``'s, with nothing more saved.
    """
    old, new = v4_layers(width)
    assert old.gated_read_norm is False and new.gated_read_norm is (width <= 64)
    old_state, new_state = old.state_dict(), new.state_dict()
    stats = ["gated_read_mean", "gated_read_var", "gated_read_rows", "gated_read_pending"] if width <= 64 else []
    assert sorted(new_state) == sorted(list(old_state) + stats)
    for key, value in old_state.items():
        assert th.equal(new_state[key], value), key
    x = th.randn(6, 3, 5, dtype=th.float64)
    starts = th.rand(6, 3) < 0.2
    c0 = th.randn(3, 2 * width, dtype=th.float64)
    (h, c), (h_old, c_old) = new(x, c0, starts), old(x, c0, starts)
    assert th.equal(h, h_old) and th.equal(c, c_old)
    if width > 64:
        assert new.read_out(h) is h
        return
    assert old.gated is not None and new.gated_width == old.gated_width
    units = 2 * new.gated_width
    new.gated_read_mean.copy_(th.randn(units, dtype=th.float64))
    new.gated_read_var.copy_(th.rand(units, dtype=th.float64) * 1e-3)
    new.eval()
    read, raw = new.split_parts(new.read_out(h)), new.split_parts(h)
    assert th.equal(read[0], raw[0]) and th.equal(read[1], raw[1])
    expected = (raw[2] - new.gated_read_mean) / (new.gated_read_var + 1e-8).sqrt()
    th.testing.assert_close(read[2], expected, rtol=1e-12, atol=0)
    assert new.gated_read_rows == 0  # read outside training: the statistics stay


def test_the_gated_units_running_statistics_pool_every_row_read_in_training_until_the_window():
    """
    Reads in training mode are gathered and folded in when the layer leaves it: until then every read uses the same
    statistics. Until the window is full the statistics are those of every row read; past it each fold takes its
    rows' share of the window.
    """
    _, cell = v4_layers(32)
    units = cell.gated_width * 2
    reads = [th.randn(4, 3, 2 * 32, dtype=th.float64) * 3 + 1 for _ in range(4)]
    gated = [cell.split_parts(h)[2].reshape(-1, units) for h in reads]
    cell.train()
    first = [cell.split_parts(cell.read_out(h))[2].reshape(-1, units) for h in reads[:2]]
    # Both reads of this update with the initial statistics (mean 0, variance 1).
    for got, want in zip(first, gated):
        th.testing.assert_close(got, want / (1 + 1e-8) ** 0.5, rtol=1e-12, atol=0)
    assert cell.gated_read_rows == 0 and th.equal(cell.gated_read_mean, th.zeros(units, dtype=th.float64))
    cell.eval()
    pooled = th.cat(gated[:2])
    th.testing.assert_close(cell.gated_read_mean, pooled.mean(0), rtol=1e-12, atol=1e-12)
    th.testing.assert_close(cell.gated_read_var, pooled.var(0, unbiased=False), rtol=1e-12, atol=1e-12)
    assert cell.gated_read_rows == 24 and not cell.gated_read_pending.any()
    cell.eval()  # nothing gathered: nothing changes
    th.testing.assert_close(cell.gated_read_mean, pooled.mean(0), rtol=1e-12, atol=1e-12)
    cell.train()
    cell.read_out(reads[2])
    cell.eval()
    pooled = th.cat(gated[:3])
    th.testing.assert_close(cell.gated_read_mean, pooled.mean(0), rtol=1e-12, atol=1e-12)
    th.testing.assert_close(cell.gated_read_var, pooled.var(0, unbiased=False), rtol=1e-12, atol=1e-12)
    # A window of one read's rows keeps the latest fold alone.
    cell.gated_read_window = 12
    cell.train()
    cell.read_out(reads[3])
    cell.eval()
    th.testing.assert_close(cell.gated_read_mean, gated[3].mean(0), rtol=1e-12, atol=1e-12)
    th.testing.assert_close(cell.gated_read_var, gated[3].var(0, unbiased=False), rtol=1e-12, atol=1e-12)


def test_the_standardized_read_passes_the_gradient_scaled_and_none_into_its_statistics():
    _, cell = v4_layers(32)
    cell.train()
    cell.read_out(th.randn(5, 64, dtype=th.float64) * 0.01)
    cell.eval()
    cell.train()
    h = th.randn(5, 64, dtype=th.float64, requires_grad=True)
    cell.read_out(h).sum().backward()
    assert h.grad is not None
    grad = cell.split_parts(h.grad)
    assert th.equal(grad[0], th.ones_like(grad[0])) and th.equal(grad[1], th.ones_like(grad[1]))
    scale = (cell.gated_read_var + 1e-8).rsqrt().expand_as(grad[2])
    th.testing.assert_close(grad[2], scale, rtol=1e-12, atol=0)
    assert scale.min() > 10  # the small units magnified
    assert not cell.gated_read_var.requires_grad and not cell.gated_read_mean.requires_grad


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(gated_read_norm=1), "gated_read_norm must be a bool"),
        (dict(gated_read_norm=True, gated_read_norm_max_width=-1), "gated_read_norm_max_width must be"),
        (dict(gated_read_norm=True, gated_read_norm_max_width=64.0), "gated_read_norm_max_width must be"),
        (dict(gated_read_norm=True, gated_read_window=0), "gated_read_window must be"),
        (dict(gated_read_norm=True, gated_read_window=True), "gated_read_window must be"),
    ],
)
def test_bad_gated_read_keywords_rejected(kwargs, match):
    with pytest.raises(ValueError, match=match):
        MixedCell(5, 64, gated_fraction=0.125, **kwargs)


def test_a_non_finite_training_read_is_refused_when_folded_and_leaves_the_statistics_as_they_were():
    _, cell = v4_layers(32)
    cell.train()
    h = th.randn(3, 64, dtype=th.float64)
    cell.read_out(h)
    cell.eval()
    mean, var = cell.gated_read_mean.clone(), cell.gated_read_var.clone()
    h[1, -1] = float("nan")  # a gated unit of the second group
    cell.train()
    cell.read_out(h)
    with pytest.raises(ValueError, match="non-finite gated unit outputs"):
        cell.eval()
    assert not cell.training
    assert th.equal(cell.gated_read_mean, mean) and th.equal(cell.gated_read_var, var)
    assert not cell.gated_read_pending.any() and cell.gated_read_rows == 3
    cell.eval()  # nothing left to fold


def test_a_layer_without_gated_units_has_nothing_to_standardize():
    cell = MixedCell(5, 32, gated_read_norm=True)
    assert cell.gated_width == 0 and cell.gated_read_norm is False and "gated_read_mean" not in cell.state_dict()


@pytest.mark.parametrize("how", ["class load", "safe load"])
def test_a_v4_model_trains_its_read_and_saves_and_loads_with_it(tmp_path, how):
    env = make_vec_env(DELAYED_RECALL_ID, n_envs=2, seed=0, env_kwargs=dict(delay=4))
    kwargs = dict(hidden_size=32, cell="mixed_gated_v4")
    model = RTRLPPO("MlpLstmPolicy", env, n_steps=8, batch_size=8, n_epochs=2, policy_kwargs=kwargs, seed=0)
    model.learn(32)
    cell = model.policy.cell
    # Two rollouts of 8 steps times 2 envs, each read twice (two epochs); acting reads none of them. The first update's
    # reads were folded in when the second rollout began; the second's are gathered, and saved so.
    assert cell.gated_read_rows == 2 * 16 and cell.gated_read_pending[0, 0] == 2 * 16 and cell.gated_read_var.min() > 0
    model.save(tmp_path / "model.zip")
    loaded = RTRLPPO.load(tmp_path / "model.zip") if how == "class load" else load_model(str(tmp_path / "model.zip"))
    assert loaded.policy.cell_name == "mixed_gated_v4" and loaded.policy.cell.gated_read_norm
    for key in ("gated_read_mean", "gated_read_var", "gated_read_rows", "gated_read_pending"):
        assert th.equal(getattr(loaded.policy.cell, key), getattr(cell, key)), key
    obs = env.reset()
    actions, state = model.predict(obs, deterministic=True)
    loaded_actions, loaded_state = loaded.predict(obs, deterministic=True)
    assert (actions == loaded_actions).all() and all((a == b).all() for a, b in zip(state, loaded_state))
    # Both folded the saved reads in when predict left training mode; predict itself changes nothing.
    assert cell.gated_read_rows == 4 * 16 and loaded.policy.cell.gated_read_rows == 4 * 16
    model.predict(obs, deterministic=True)
    assert cell.gated_read_rows == 4 * 16 and th.equal(loaded.policy.cell.gated_read_var, cell.gated_read_var)


@pytest.mark.parametrize("algorithm", [RTRLA2C, RTRLPPO])
def test_evaluations_along_the_way_leave_training_unchanged(algorithm, tmp_path):
    # Every evaluation takes the policy out of training mode, which folds the standardized read's gathered statistics
    # in: a user's EvalCallback must not change what is learned, nor the random draws of acting.
    def trained(evaluate: bool) -> dict[str, th.Tensor]:
        env = make_vec_env(DELAYED_RECALL_ID, n_envs=2, seed=0, env_kwargs=dict(delay=4))
        settings = dict(n_steps=4) if algorithm is RTRLA2C else dict(n_steps=8, batch_size=8, n_epochs=2)
        model = algorithm("MlpLstmPolicy", env, policy_kwargs=dict(hidden_size=32), seed=0, **settings)
        assert model.policy.cell.gated_read_norm
        eval_env = make_vec_env(DELAYED_RECALL_ID, n_envs=1, seed=1, env_kwargs=dict(delay=4))
        callback = EvalCallback(eval_env, n_eval_episodes=2, eval_freq=3, log_path=str(tmp_path), warn=False)
        model.learn(64, callback=callback if evaluate else None)
        assert len(callback.evaluations_timesteps) == (10 if evaluate else 0)  # 32 steps of 2 envs, one every 3
        return {key: value.clone() for key, value in model.policy.state_dict().items()}

    plain, evaluated = trained(False), trained(True)
    assert plain.keys() == evaluated.keys()
    for key in plain:
        assert th.equal(plain[key], evaluated[key]), key
