"""The eLSTM cell: its forward, and its hand-derived RTRL terms against autograd and finite differences."""

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


@pytest.mark.parametrize("start", [False, True])
def test_jacobian_matches_autograd_and_finite_differences(start):
    cell = make_cell(1, forget_bias=0.5)
    x = th.randn(B, D, dtype=th.float64)
    c_prev = th.randn(B, N, dtype=th.float64)
    starts = th.full((1, B), start)
    terms = one_step_terms(cell, x, c_prev, start)

    def step(c):
        return cell.scan(x.unsqueeze(0), c, starts)[1]

    full = jacobian(step, c_prev)  # (B, N, B, N)
    diag = th.stack([th.diagonal(full[b, :, b, :]) for b in range(B)])
    th.testing.assert_close(terms.jacobian[0], diag, rtol=1e-10, atol=1e-12)
    # Element-wise: nothing off the diagonal.
    off = full.clone()
    for b in range(B):
        off[b, :, b, :] -= th.diag(diag[b])
    assert off.abs().max() < 1e-14
    # Central finite differences, independently of autograd.
    eps = 1e-6
    for i in range(N):
        e = th.zeros_like(c_prev)
        e[:, i] = eps
        fd = (step(c_prev + e) - step(c_prev - e))[:, i] / (2 * eps)
        th.testing.assert_close(terms.jacobian[0][:, i], fd, rtol=1e-6, atol=1e-8)
    if start:
        assert terms.jacobian.abs().max() == 0


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


def test_fast_recurrence_matches_autograd_reference():
    """The hand-written backward of the recurrence against plain autograd, with resets and c0 gradients."""
    cell = make_cell(3, forget_bias=1.0)
    T = 40
    x = th.randn(T, B, D, dtype=th.float64, requires_grad=True)
    c0 = th.randn(B, N, dtype=th.float64, requires_grad=True)
    starts = th.rand(T, B) < 0.1
    starts[0, 0] = True
    readout = th.randn(T, B, N, dtype=th.float64)
    results = []
    for fn in (cell.forward, cell.reference_scan):
        cell.zero_grad()
        x.grad = c0.grad = None
        h, c_last = fn(x, c0, starts)
        ((h * readout).sum() + (c_last * readout[0]).sum()).backward()
        results.append([h.detach(), c_last.detach(), x.grad, c0.grad, *[p.grad.clone() for p in cell.parameters()]])
    for got, ref in zip(*results):
        th.testing.assert_close(got, ref, rtol=1e-12, atol=1e-13)
    # and under no_grad (the acting path) the same values
    with th.no_grad():
        h_ng, c_ng = cell(x, c0, starts)
    th.testing.assert_close(h_ng, results[1][0], rtol=1e-12, atol=1e-13)


def test_gradcheck():
    cell = make_cell(4)
    x = th.randn(5, 2, D, dtype=th.float64, requires_grad=True)
    c0 = th.randn(2, N, dtype=th.float64, requires_grad=True)
    starts = th.tensor([[False, False], [False, True], [False, False], [True, False], [False, False]])
    assert th.autograd.gradcheck(lambda x, c0, *ps: cell(x, c0, starts)[0], (x, c0, *cell.parameters()))


def test_bad_sizes_rejected():
    with pytest.raises(ValueError, match="hidden_size"):
        ELSTMCell(3, 0)


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


@pytest.mark.parametrize(
    "mask, match",
    [(th.ones(1, D, dtype=th.bool), "shape"), (th.ones(2, D), "bool"), (th.tensor([[True] * D, [False] * D]), "without")],
)
def test_bad_input_mask_rejected(mask, match):
    with pytest.raises(ValueError, match=match):
        ELSTMCell(D, 2 * N, groups=2, input_mask=mask)
