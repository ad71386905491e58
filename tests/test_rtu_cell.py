"""The RTU cell's own equations and init (the conformance suite in test_cells.py covers the rest)."""

import math

import pytest
import torch as th

from sb3_rtrl.cells import RTUCell
from sb3_rtrl.cells import rtu as rtu_module


def test_parameters_and_published_init():
    cell = RTUCell(7, 2000, r_min=0.5, r_max=0.9, max_phase=math.pi)
    assert cell.weight_ih.shape == (1000, 7, 2) and cell.nu_log.shape == (1000,) and cell.theta_log.shape == (1000,)
    r = th.exp(-th.exp(cell.nu_log.detach()))
    theta = th.exp(cell.theta_log.detach())
    # r^2 uniform in [0.25, 0.81], theta uniform in (0, pi].
    assert 0.5 - 1e-4 <= r.min() and r.max() <= 0.9 + 1e-4
    assert abs(float((r**2).mean()) - 0.53) < 0.02
    assert 0 < theta.min() and theta.max() <= math.pi + 1e-5 and abs(float(theta.mean()) - math.pi / 2) < 0.1
    assert abs(float(cell.weight_ih.detach().std()) - 7**-0.5) < 0.02


def test_complex_form_is_the_two_real_states():
    """One step from a known state: c1, c2 as the issue writes them, and h = act(c) for both activations."""
    th.manual_seed(0)
    for activation in ("linear", "relu"):
        cell = RTUCell(3, 4, activation=activation, dtype=th.float64)
        x = th.randn(1, 2, 3, dtype=th.float64)
        c0 = th.randn(2, 4, dtype=th.float64)
        h, c = cell(x, c0, th.zeros(1, 2, dtype=th.bool))
        r, theta = th.exp(-th.exp(cell.nu_log)), th.exp(cell.theta_log)
        g, phi, gamma = r * th.cos(theta), r * th.sin(theta), th.sqrt(1 - r**2)
        w1, w2 = cell.weight_ih[..., 0], cell.weight_ih[..., 1]
        c1, c2 = c0[:, 0::2], c0[:, 1::2]
        e1 = g * c1 - phi * c2 + gamma * (x[0] @ w1.T)
        e2 = g * c2 + phi * c1 + gamma * (x[0] @ w2.T)
        th.testing.assert_close(c[:, 0::2], e1, rtol=1e-12, atol=1e-12)
        th.testing.assert_close(c[:, 1::2], e2, rtol=1e-12, atol=1e-12)
        act = th.relu if activation == "relu" else (lambda v: v)
        th.testing.assert_close(h[0], act(c), rtol=0, atol=0)


def test_state_keeps_its_scale_and_slow_units_remember():
    """gamma = sqrt(1 - r^2): the stationary state has the scale of W x; r near 1 keeps an input for long."""
    th.manual_seed(1)
    cell = RTUCell(4, 64, r_min=0.99, r_max=0.999, dtype=th.float64)
    x = th.zeros(300, 1, 4, dtype=th.float64)
    x[0, 0] = 1.0
    h, _ = cell(x, th.zeros(1, 64, dtype=th.float64), th.zeros(300, 1, dtype=th.bool))
    assert float(h[-1].abs().sum()) > 0.03 * float(h[0].abs().sum())
    noise = th.randn(4000, 1, 4, dtype=th.float64)
    h, _ = RTUCell(4, 64, r_min=0.0, r_max=0.9, dtype=th.float64)(
        noise, th.zeros(1, 64, dtype=th.float64), th.zeros(4000, 1, dtype=th.bool)
    )
    assert 0.3 < float(h[100:].std()) < 3.0


def test_timescales_spread_over_each_group():
    """With ``timescales`` each group's units get time constants -1 / log(r) log-evenly from low to high."""
    cell = RTUCell(3, 16, timescales=(2.0, 250.0), groups=2)
    tau = -1.0 / th.log(th.exp(-th.exp(cell.nu_log.detach().double())))
    expected = th.tensor([2.0, 10.0, 50.0, 250.0], dtype=th.float64)
    th.testing.assert_close(tau, expected.repeat(2), rtol=1e-5, atol=0)
    one = RTUCell(3, 2, timescales=(7.0, 9.0))
    th.testing.assert_close(th.exp(-th.exp(one.nu_log.detach())), th.tensor([math.exp(-1 / 7)]), rtol=1e-6, atol=0)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(activation="tanh"), "activation"),
        (dict(r_min=0.9, r_max=0.5), "r_min"),
        (dict(max_phase=0.0), "max_phase"),
        (dict(timescales=(0.0, 5.0)), "timescales"),
        (dict(timescales=(9.0, 5.0)), "timescales"),
        (dict(timescales=5.0), "timescales"),
        (dict(timescales=(1.0, 5.0), r_min=0.5), "not both"),
    ],
)
def test_bad_arguments_rejected(kwargs, match):
    with pytest.raises(ValueError, match=match):
        RTUCell(3, 4, **kwargs)


@pytest.mark.parametrize("activation", ["linear", "relu"])
def test_acting_one_step_at_a_time_is_the_scan(activation):
    """Acting (one step, no autograd) chained over a sequence with resets gives the scan's outputs and states."""
    th.manual_seed(2)
    mask = th.tensor([[True, False, True], [False, True, True]])
    cell = RTUCell(3, 8, activation=activation, groups=2, input_mask=mask, dtype=th.float64)
    T, B = 12, 3
    x, c0 = th.randn(T, B, 3, dtype=th.float64), th.randn(B, 8, dtype=th.float64)
    starts = th.rand(T, B) < 0.2
    h_ref, c_ref = cell.reference_scan(x, c0, starts)
    c, hs = c0, []
    with th.no_grad():
        for t in range(T):
            h, c = cell(x[t : t + 1], c, starts[t : t + 1])
            hs.append(h[0])
    th.testing.assert_close(th.stack(hs), h_ref.detach(), rtol=1e-12, atol=1e-12)
    th.testing.assert_close(c, c_ref.detach(), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("scan_max_states", [0, 10**6])
def test_loop_and_scan_give_the_reference_values_and_gradients(monkeypatch, scan_max_states):
    """Both ways of running a training sequence (a loop when wide, a log-depth scan when narrow), resets included."""
    monkeypatch.setattr(rtu_module, "SCAN_MAX_STATES", scan_max_states)
    th.manual_seed(3)
    cell = RTUCell(3, 10, dtype=th.float64)
    T, B = 37, 4
    x = th.randn(T, B, 3, dtype=th.float64, requires_grad=True)
    c0 = th.randn(B, 10, dtype=th.float64, requires_grad=True)
    starts = th.rand(T, B) < 0.15
    readout = th.randn(T, B, 10, dtype=th.float64)
    results = []
    for fn in (cell.forward, cell.reference_scan):
        cell.zero_grad()
        x.grad = c0.grad = None
        h, c_last = fn(x, c0, starts)
        ((h * readout).sum() + c_last.sum()).backward()
        results.append([h.detach(), x.grad, c0.grad, *[p.grad.clone() for p in cell.parameters()]])
    for got, ref in zip(*results):
        th.testing.assert_close(got, ref, rtol=1e-12, atol=1e-12)
