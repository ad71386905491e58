"""The eLSTM cell's own equations, init and RTRL terms (the conformance suite in test_cells.py covers the rest)."""

import pytest
import torch as th
from torch.autograd.functional import jacobian

from sb3_rtrl.cells import ELSTMCell

D, N, B = 4, 5, 3


def make_cell(seed: int = 0, **kwargs) -> ELSTMCell:
    th.manual_seed(seed)
    return ELSTMCell(D, N, dtype=th.float64, **kwargs)


def one_step_terms(cell: ELSTMCell, x: th.Tensor, c_prev: th.Tensor, start: bool):
    starts = th.full((1, x.shape[0]), start)
    _, _, terms = cell.scan(x.unsqueeze(0), c_prev, starts, need_terms=True)
    return terms


def test_parameter_names_shapes_and_init():
    cell = ELSTMCell(7, 3, forget_bias=2.0)
    assert cell.weight_ih.shape == (6, 7)
    assert cell.weight_hh.shape == (6,)
    assert cell.bias.shape == (6,)
    assert cell.out_gate.in_features == 10 and cell.out_gate.out_features == 3
    big = ELSTMCell(64, 256)
    assert abs(big.weight_ih.std().item() - 0.1) < 0.01
    assert abs(big.bias[:256].mean().item()) < 0.03
    assert abs(big.bias[256:].mean().item()) < 0.03
    assert abs(cell.bias[3:].mean().item() - 2.0) < 0.3


def test_forward_matches_the_paper_equations():
    cell = make_cell()
    T = 6
    x = th.randn(T, B, D, dtype=th.float64)
    starts = th.zeros(T, B, dtype=th.bool)
    starts[3, 1] = True
    c0 = th.randn(B, N, dtype=th.float64)
    h, c_last = cell(x, c0, starts)
    Z, Fm = cell.weight_ih[:N], cell.weight_ih[N:]
    wz, wf = cell.weight_hh[:N], cell.weight_hh[N:]
    bz, bf = cell.bias[:N], cell.bias[N:]
    c = c0
    for t in range(T):
        c = c * (~starts[t]).double().unsqueeze(-1)
        z = th.tanh(x[t] @ Z.T + wz * c + bz)
        f = th.sigmoid(x[t] @ Fm.T + wf * c + bf)
        c = f * c + (1 - f) * z
        o = th.sigmoid(th.cat([x[t], c], -1) @ cell.out_gate.weight.T + cell.out_gate.bias)
        th.testing.assert_close(h[t], o * c, rtol=1e-12, atol=1e-12)
    th.testing.assert_close(c_last, c, rtol=1e-12, atol=1e-12)


def test_output_scale_multiplies_the_output_only():
    """``output_scale`` scales ``h``; the state, and so the recurrence RTRL differentiates, is the same."""
    x = th.randn(5, B, D, dtype=th.float64)
    starts = th.zeros(5, B, dtype=th.bool)
    c0 = th.randn(B, N, dtype=th.float64)
    plain, scaled = make_cell(3), make_cell(3, output_scale=4.0)
    (h, c), (h4, c4) = plain(x, c0, starts), scaled(x, c0, starts)
    th.testing.assert_close(h4, 4.0 * h, rtol=1e-12, atol=1e-14)
    assert th.equal(c4, c)
    th.testing.assert_close(scaled.reference_scan(x, c0, starts)[0], h4, rtol=1e-12, atol=1e-14)
    assert "output_scale=4" in repr(scaled) and "output_scale" not in repr(plain)


def test_an_output_scale_pair_spreads_over_each_group_in_the_forget_bias_order():
    cell = ELSTMCell(D, 2 * N, groups=2, forget_bias=(0.0, 4.0), output_scale=(1.0, 3.0), dtype=th.float64)
    expected = th.tensor([1.0, 1.5, 2.0, 2.5, 3.0], dtype=th.float64).repeat(2)
    assert th.equal(cell.output_scales, expected)
    # The slowest units (largest forget bias) get the largest factor.
    for group in range(2):
        units = slice(group * N, (group + 1) * N)
        assert th.equal(cell.bias[2 * N :][units].argsort(), cell.output_scales[units].argsort())
    x = th.randn(4, B, D, dtype=th.float64)
    starts = th.zeros(4, B, dtype=th.bool)
    c0 = th.randn(B, 2 * N, dtype=th.float64)
    h, c = cell(x, c0, starts)
    th.manual_seed(0)
    plain = ELSTMCell(D, 2 * N, groups=2, forget_bias=(0.0, 4.0), dtype=th.float64)
    plain.load_state_dict(cell.state_dict())  # the factors are not in the state dict
    h1, c1 = plain(x, c0, starts)
    th.testing.assert_close(h, h1 * expected, rtol=1e-12, atol=1e-14)
    assert th.equal(c, c1)
    th.testing.assert_close(cell.reference_scan(x, c0, starts)[0], h, rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("scale", [0.0, -1.0, float("inf"), float("nan"), True, "4", (1.0,), (1.0, 2.0, 3.0), (0.0, 1.0)])
def test_bad_output_scale_rejected(scale):
    with pytest.raises(ValueError, match="output_scale must be a finite number > 0 or a pair of them"):
        ELSTMCell(D, N, output_scale=scale)


def test_immediate_terms_match_autograd():
    cell = make_cell(2)
    x = th.randn(B, D, dtype=th.float64)
    c_prev = th.randn(B, N, dtype=th.float64)
    starts = th.zeros(1, B, dtype=th.bool)
    terms = one_step_terms(cell, x, c_prev, False)
    params = cell.rtrl_parameters()

    def step(*ps):
        saved = [p.data for p in params]
        for p, q in zip(params, ps):
            p.data = q
        try:
            # functional call: rebuild the step from the given tensors
            wih, whh, bias = ps
            u = x @ wih.T + bias
            z = th.tanh(u[:, :N] + whh[:N] * c_prev)
            f = th.sigmoid(u[:, N:] + whh[N:] * c_prev)
            return f * c_prev + (1 - f) * z
        finally:
            for p, s in zip(params, saved):
                p.data = s

    # The functional step agrees with the cell's own forward.
    th.testing.assert_close(step(*[p.detach() for p in params]), cell.scan(x.unsqueeze(0), c_prev, starts)[1])
    jacs = jacobian(step, tuple(p.detach() for p in params))  # each (B, N, *param.shape)
    for spec, jac, (a, v) in zip(cell.rtrl_specs, jacs, terms.immediates):
        for k in range(2):
            rows = slice(k * N, (k + 1) * N)
            # d c_i / d param[k*N + i, ...]: the diagonal of the (N, N) block
            blk = jac[:, :, rows]
            got = th.stack([th.stack([blk[b, i, i] for i in range(N)]) for b in range(B)])
            if spec.kind == "outer":
                expected = a[0][:, rows].unsqueeze(-1) * v[0].unsqueeze(1)
            else:
                expected = a[0][:, rows] * (1.0 if v is None else v[0][:, rows] if v.shape[-1] == 2 * N else v[0])
            th.testing.assert_close(got, expected, rtol=1e-10, atol=1e-12)
            # and nothing else: row k*N+i acts on state i alone
            mask = th.ones(N, N, dtype=th.bool)
            mask.fill_diagonal_(False)
            assert blk[:, mask].abs().max() < 1e-14


def test_two_groups_are_two_independent_cells():
    """A cell of 2N units in two groups computes exactly what two cells of N units compute on the same input."""
    th.manual_seed(0)
    pair = ELSTMCell(D, 2 * N, groups=2, forget_bias=(0.0, 3.0), dtype=th.float64)
    # The forget-bias spread is laid over each group: both groups start with the same time scales.
    exact = ELSTMCell(D, 8, groups=2, forget_bias=(0.0, 3.0), init_std=0.0)
    th.testing.assert_close(exact.bias[8:], th.linspace(0.0, 3.0, 4).repeat(2))
    with th.no_grad():
        pair.out_gate.weight.normal_()  # nonzero everywhere: the mask must cut the cross-group part
    halves = []
    for g in range(2):
        cell = ELSTMCell(D, N, dtype=th.float64)
        units = slice(g * N, (g + 1) * N)
        with th.no_grad():
            cell.weight_ih.copy_(th.cat([pair.weight_ih[: 2 * N][units], pair.weight_ih[2 * N :][units]]))
            cell.weight_hh.copy_(th.cat([pair.weight_hh[: 2 * N][units], pair.weight_hh[2 * N :][units]]))
            cell.bias.copy_(th.cat([pair.bias[: 2 * N][units], pair.bias[2 * N :][units]]))
            cell.out_gate.weight.copy_(th.cat([pair.out_gate.weight[units, :D], pair.out_gate.weight[units, D:][:, units]], 1))
            cell.out_gate.bias.copy_(pair.out_gate.bias[units])
        halves.append(cell)
    x = th.randn(7, B, D, dtype=th.float64)
    starts = th.zeros(7, B, dtype=th.bool)
    starts[4, 0] = True
    c0 = th.randn(B, 2 * N, dtype=th.float64)
    h, c = pair(x, c0, starts)
    for g, cell in enumerate(halves):
        h_g, c_g = cell(x, c0[:, g * N : (g + 1) * N], starts)
        th.testing.assert_close(h[..., g * N : (g + 1) * N], h_g, rtol=1e-12, atol=1e-12)
        th.testing.assert_close(c[:, g * N : (g + 1) * N], c_g, rtol=1e-12, atol=1e-12)
    with pytest.raises(ValueError, match="groups"):
        ELSTMCell(D, 5, groups=2)
