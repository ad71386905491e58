"""The cell conformance suite: every registered cell's forward, Jacobian and gradients against autograd."""

import pytest
import torch as th
from torch.autograd.functional import jacobian

from sb3_rtrl.cells import CELLS, ElementwiseRecurrentCell, register_cell, resolve_cell_kwargs

D, N, B = 4, 8, 3


@pytest.fixture(params=sorted(CELLS))
def cell_name(request) -> str:
    return request.param


def make_cell(name: str, seed: int = 0, **kwargs) -> ElementwiseRecurrentCell:
    th.manual_seed(seed)
    # As the policies build it: the same class registered twice differs in its policy defaults.
    return CELLS[name].cls(D, N, dtype=th.float64, **{**CELLS[name].policy_defaults, **kwargs})


def real_jacobian(cell: ElementwiseRecurrentCell, jac: th.Tensor) -> th.Tensor:
    """``(B, n, n)`` real Jacobian of the real state from the engine's diagonal (a 2x2 block per complex unit)."""
    if not cell.complex_state:
        return th.diag_embed(jac)
    n = cell.state_size
    out = th.zeros(jac.shape[0], n, n, dtype=jac.real.dtype)
    for i in range(jac.shape[1]):
        re, im = jac[:, i].real, jac[:, i].imag
        out[:, 2 * i, 2 * i], out[:, 2 * i, 2 * i + 1] = re, -im
        out[:, 2 * i + 1, 2 * i], out[:, 2 * i + 1, 2 * i + 1] = im, re
    return out


def test_forward_and_gradients_match_the_reference_equations(cell_name):
    """The fast recurrence against the cell's equations written step by step, with resets and c0 gradients."""
    cell = make_cell(cell_name, 3)
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
    assert results[1][0].abs().max() > 0
    for got, ref in zip(*results):
        th.testing.assert_close(got, ref, rtol=1e-12, atol=1e-13)
    # and under no_grad (the acting path) the same values
    with th.no_grad():
        h_ng, _ = cell(x, c0, starts)
    th.testing.assert_close(h_ng, results[1][0], rtol=1e-12, atol=1e-13)


@pytest.mark.parametrize("start", [False, True])
def test_jacobian_matches_autograd_and_finite_differences(cell_name, start):
    """The Jacobian the engine reads, of each part the engine runs (the cell itself unless it is made of parts)."""
    for part in make_cell(cell_name, 1).rtrl_parts():
        check_jacobian(part, start)


def check_jacobian(cell: ElementwiseRecurrentCell, start: bool) -> None:
    N = cell.state_size
    x = th.randn(B, D, dtype=th.float64)
    c_prev = th.randn(B, N, dtype=th.float64)
    starts = th.full((1, B), start)
    _, _, terms = cell.scan(x.unsqueeze(0), c_prev, starts, need_terms=True)

    def step(c):
        return cell.scan(x.unsqueeze(0), c, starts)[1]

    full = jacobian(step, c_prev)  # (B, N, B, N)
    per_sequence = th.stack([full[b, :, b, :] for b in range(B)])
    expected = real_jacobian(cell, terms.jacobian[0])
    th.testing.assert_close(per_sequence, expected, rtol=1e-10, atol=1e-12)
    # Sequences do not interact.
    for b in range(B):
        full[b, :, b, :] = 0
    assert full.abs().max() == 0
    # Central finite differences, independently of autograd.
    eps = 1e-6
    for i in range(N):
        e = th.zeros_like(c_prev)
        e[:, i] = eps
        fd = (step(c_prev + e) - step(c_prev - e)) / (2 * eps)
        th.testing.assert_close(expected[:, :, i], fd, rtol=1e-6, atol=1e-8)
    if start:
        assert terms.jacobian.abs().max() == 0


def test_gradcheck(cell_name):
    cell = make_cell(cell_name, 4)
    x = th.randn(5, 2, D, dtype=th.float64, requires_grad=True)
    c0 = th.randn(2, N, dtype=th.float64, requires_grad=True)
    starts = th.tensor([[False, False], [False, True], [False, False], [True, False], [False, False]])
    assert th.autograd.gradcheck(lambda x, c0, *ps: cell(x, c0, starts)[0], (x, c0, *cell.parameters()))


def test_groups_do_not_interact(cell_name):
    """With two groups, a group's output depends on neither the other group's state nor its unread inputs."""
    mask = th.tensor([[True, True, False, True], [False, True, True, False]])
    cell = make_cell(cell_name, 5, groups=2, input_mask=mask)
    with th.no_grad():
        for name, p in cell.named_parameters():
            if "out_gate" in name:
                p.normal_()  # nonzero everywhere: the cell must cut the cross-group part itself
    x = th.randn(6, B, D, dtype=th.float64)
    starts = th.zeros(6, B, dtype=th.bool)
    c0 = th.randn(B, N, dtype=th.float64)
    half = N // 2
    h = cell(x, c0, starts)[0]
    for g in range(2):
        own, other = slice(g * half, (g + 1) * half), slice((1 - g) * half, (2 - g) * half)
        c_moved = c0.clone()
        c_moved[:, other] += 1.0
        x_moved = x.clone()
        x_moved[..., ~mask[g]] += 1.0
        for moved in (cell(x, c_moved, starts)[0], cell(x_moved, c0, starts)[0]):
            th.testing.assert_close(moved[..., own], h[..., own], rtol=0, atol=0)
        assert not th.allclose(cell(x, c_moved, starts)[0][..., other], h[..., other])


def test_acting_reads_the_parameters_as_they_are_now(cell_name):
    """
    One step without autograd (acting, which keeps coefficients computed from the parameters) after an in-place
    optimizer step and after ``load_state_dict`` gives the cell's equations with the new parameters.
    """
    mask = th.tensor([[True, True, False, True], [False, True, True, False]])
    cell = make_cell(cell_name, 6, groups=2, input_mask=mask)
    x, c0, starts = th.randn(1, B, D, dtype=th.float64), th.randn(B, N, dtype=th.float64), th.zeros(1, B, dtype=th.bool)
    optimizer = th.optim.SGD(cell.parameters(), lr=0.5)
    before = None
    for _ in range(2):
        with th.no_grad():
            acting = cell(x, c0, starts)[0]
        reference = cell.reference_scan(x, c0, starts)[0]
        th.testing.assert_close(acting, reference.detach(), rtol=1e-12, atol=1e-13)
        assert before is None or not th.allclose(acting, before)
        before = acting
        reference.pow(2).sum().backward()
        optimizer.step()  # in place
        optimizer.zero_grad()
    with th.no_grad():
        cell.load_state_dict({k: v + 0.1 for k, v in cell.state_dict().items()})
        th.testing.assert_close(cell(x, c0, starts)[0], cell.reference_scan(x, c0, starts)[0], rtol=1e-12, atol=1e-13)


@pytest.mark.parametrize(
    "mask, match",
    [(th.ones(1, D, dtype=th.bool), "shape"), (th.ones(2, D), "bool"), (th.tensor([[True] * D, [False] * D]), "without")],
)
def test_bad_input_mask_rejected(cell_name, mask, match):
    with pytest.raises(ValueError, match=match):
        CELLS[cell_name].cls(D, 2 * N, groups=2, input_mask=mask)


def test_bad_sizes_rejected(cell_name):
    with pytest.raises(ValueError, match="state_size"):
        CELLS[cell_name].cls(3, 0)
    with pytest.raises(ValueError, match="groups"):
        CELLS[cell_name].cls(D, 5, groups=2)


def test_registry_checks_names_and_keywords():
    registered = r"\['elstm', 'gated', 'mixed', 'mixed_gated', 'mixed_gated_v2', 'mixed_gated_v3', 'mixed_gated_v4', 'rtu'\]"
    with pytest.raises(ValueError, match=rf"unknown cell 'gru'; registered cells: {registered}"):
        resolve_cell_kwargs("gru", None)
    with pytest.raises(ValueError, match=r"cell 'rtu' \(RTUCell\) takes no keywords \['forget_bias'\]"):
        resolve_cell_kwargs("rtu", dict(forget_bias=1.0))
    for keyword in ("hidden_size", "state_size"):  # the policy's name and the cell's
        with pytest.raises(ValueError, match="set by the policy"):
            resolve_cell_kwargs("elstm", {keyword: 4})
    assert resolve_cell_kwargs("elstm", dict(init_std=0.1)) == dict(forget_bias=(0.0, 3.0), init_std=0.1)
    with pytest.raises(ValueError, match="not a subclass"):
        register_cell("lstm", th.nn.LSTM)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="taken"):
        register_cell("elstm", CELLS["rtu"].cls)


def test_public_names():
    """What users import from the top level: both cells, the algorithms, the IMPALA extractor, one version."""
    import importlib.metadata

    import sb3_rtrl
    from sb3_rtrl.torch_layers import ImpalaCNN

    assert sb3_rtrl.RTUCell is CELLS["rtu"].cls and sb3_rtrl.ELSTMCell is CELLS["elstm"].cls
    assert sb3_rtrl.ImpalaCNN is ImpalaCNN
    assert {"RTRLA2C", "RTRLPPO", "ImpalaCNN", "RTUCell"} <= set(sb3_rtrl.__all__)
    assert importlib.metadata.version("sb3-rtrl") == sb3_rtrl.__version__
