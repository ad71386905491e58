"""
The engine's conformance suite, run for every registered cell: exactness of segment RTRL against autograd BPTT
in float64, segment vs step, TBPTT, stability, errors.
"""

import numpy as np
import pytest
import torch as th

from sb3_rtrl.cells import CELLS
from sb3_rtrl.rtrl import RTRLState, initial_state, rtrl_segment

D, N = 4, 8
# Per cell, keywords that give some slow units (a memory the truncation can cut); a new cell runs with its defaults.
LONG_MEMORY = {"elstm": dict(forget_bias=3.0), "rtu": dict(r_min=0.9), "mixed": dict(forget_bias=3.0, r_min=0.9)}
MEDIUM_MEMORY = {"elstm": dict(forget_bias=1.0), "rtu": dict(r_min=0.5), "mixed": dict(forget_bias=1.0, r_min=0.5)}
for _name in ("mixed_gated", "mixed_gated_v2"):
    LONG_MEMORY[_name], MEDIUM_MEMORY[_name] = LONG_MEMORY["mixed"], MEDIUM_MEMORY["mixed"]


# Variants of a registered cell that the suite runs too: the non-linear RTU (ReLU on the output), and the default layer
# with its eLSTM outputs scaled, one factor and a spread of them (outside the recurrence: RTRL must stay exact).
VARIANTS = {
    "rtu-relu": ("rtu", dict(activation="relu")),
    "mixed_gated-scaled": ("mixed_gated", dict(elstm_output_scale=4.0)),
    "mixed_gated-spread": ("mixed_gated", dict(elstm_output_scale=(1.0, 4.0))),
    # The default layer's gated units started silent, as in its groups wider than 64 units.
    "mixed_gated_v2-silent": ("mixed_gated_v2", dict(gated_silent_above=1)),
    # Half of those silent units loud: units of both starts in one part.
    "mixed_gated_v2-half-loud": ("mixed_gated_v2", dict(gated_silent_above=1, gated_loud_fraction=0.5)),
}


@pytest.fixture(params=sorted(CELLS) + sorted(VARIANTS))
def cell_name(request) -> str:
    return request.param


def make_cell(name: str, dtype=th.float32, memory: dict | None = None, **kwargs):
    registered, variant = VARIANTS.get(name, (name, {}))
    # A name's layout as the policies build it (one class registered twice differs in its policy defaults); the
    # suite's own memory keywords over it.
    kw = {**CELLS[registered].policy_defaults, **variant, **(memory or {}).get(registered, {}), **kwargs}
    return CELLS[registered].cls(D, N, dtype=dtype, **kw)


def rel_err(a: th.Tensor, b: th.Tensor) -> float:
    return float((a - b).norm() / b.norm().clamp_min(1e-300))


def make_problem(name: str, T: int, B: int, seed: int, dtype=th.float64, memory: dict = MEDIUM_MEMORY):
    th.manual_seed(seed)
    cell = make_cell(name, dtype, memory)
    x = th.randn(T, B, D, dtype=dtype)
    starts = th.rand(T, B) < 0.02
    readout = th.randn(T, B, N, dtype=dtype)
    return cell, x, starts, readout


def random_cuts(T: int, rng: np.random.Generator) -> list[int]:
    cuts = set(rng.choice(np.arange(1, T), size=T // 12, replace=False).tolist())
    cuts |= {5, 6, 7, T - 1}  # some segments of length 1
    return [0, *sorted(cuts), T]


def full_bptt(cell, x, starts, readout):
    cell.zero_grad()
    B = x.shape[1]
    # Ground truth: the paper's equations with plain autograd ops over the whole uncut sequence.
    h, c_last = cell.reference_scan(x, th.zeros(B, N, dtype=x.dtype), starts)
    (h * readout).sum().backward()
    return h.detach(), c_last.detach(), [p.grad.clone() for p in cell.parameters()]


def run_segments(cell, x, starts, readout, cuts, **kwargs):
    cell.zero_grad()
    state = initial_state(cell, x.shape[1])
    hs = []
    for a, b in zip(cuts[:-1], cuts[1:]):
        h, state = rtrl_segment(cell, x[a:b], starts[a:b], state, **kwargs)
        (h * readout[a:b]).sum().backward()
        hs.append(h.detach())
    return th.cat(hs), state, [p.grad.clone() for p in cell.parameters()]


@pytest.mark.parametrize("method", ["segment", "step"])
@pytest.mark.parametrize(
    "small_slice, gpu_paths", [(None, False), (0, False), (0, True)], ids=["inject-multiply-sum", "inject-loop", "gpu-paths"]
)
def test_segment_rtrl_equals_full_bptt_fp64(cell_name, method, small_slice, gpu_paths, monkeypatch):
    if small_slice is not None:  # the injection's path for large sensitivities
        monkeypatch.setattr("sb3_rtrl.rtrl.torch_ops._SMALL_SLICE", small_slice)
    if gpu_paths:  # the ways taken on a GPU (fewer, larger operations), run here on the CPU
        monkeypatch.setattr("sb3_rtrl.cells.kernels.launch_bound", lambda tensor: True)
        monkeypatch.setattr("sb3_rtrl.cells.rtu.SCAN_MAX_STATES", 0)
    T, B = 520, 3
    cell, x, starts, readout = make_problem(cell_name, T, B, seed=0)
    assert starts.any(), "the test must include episode resets"
    h_ref, c_ref, g_ref = full_bptt(cell, x, starts, readout)
    cuts = random_cuts(T, np.random.default_rng(0))
    assert min(np.diff(cuts)) == 1
    h, state, grads = run_segments(cell, x, starts, readout, cuts, method=method)
    assert rel_err(h, h_ref) <= 1e-10
    th.testing.assert_close(state.c, c_ref, rtol=1e-10, atol=1e-12)
    names = [name for name, _ in cell.named_parameters()]
    for name, g, r in zip(names, grads, g_ref):
        assert rel_err(g, r) <= 1e-10, f"{name}: relative error {rel_err(g, r):.3e}"


@pytest.mark.parametrize("method", ["segment", "step"])
def test_groups_with_input_mask_rtrl_equals_full_bptt_fp64(cell_name, method):
    """Two groups reading different inputs (an actor's and a critic's features): exact, and unread weights get zero."""
    T, B = 200, 3
    _, x, starts, readout = make_problem(cell_name, T, B, seed=1)
    mask = th.tensor([[True, True, False, True], [False, False, True, True]])
    th.manual_seed(1)
    cell = make_cell(cell_name, th.float64, MEDIUM_MEMORY, groups=2, input_mask=mask)
    with th.no_grad():
        for name, p in cell.named_parameters():
            if "out_gate" in name:
                p.normal_()  # nonzero everywhere: the masks must cut the unread part
    h_ref, c_ref, g_ref = full_bptt(cell, x, starts, readout)
    h, state, grads = run_segments(cell, x, starts, readout, random_cuts(T, np.random.default_rng(1)), method=method)
    assert rel_err(h, h_ref) <= 1e-10
    for (name, _), g, r in zip(cell.named_parameters(), grads, g_ref):
        assert rel_err(g, r) <= 1e-10, f"{name}: relative error {rel_err(g, r):.3e}"
    # The input weight's gradient is zero exactly where the weight as used is masked to zero (a complex weight is
    # stored as real pairs).
    used = cell.rtrl_tensors()[0].detach()
    read = (th.view_as_real(used) if used.is_complex() else used) != 0
    assert read.shape == grads[0].shape and int((~read).sum()) > 0
    assert grads[0][~read].abs().max() == 0 and grads[0][read].abs().min() > 0
    # The unread inputs change nothing.
    x2 = x.clone()
    x2[..., 2] += 1.0
    c0 = th.zeros(B, N, dtype=th.float64)
    h1, h2 = cell(x, c0, starts)[0], cell(x2, c0, starts)[0]
    th.testing.assert_close(h2[..., : N // 2], h1[..., : N // 2], rtol=0, atol=0)
    assert not th.allclose(h2[..., N // 2 :], h1[..., N // 2 :])


def test_truncation_really_loses_gradient(cell_name):
    """The exactness test above can fail: truncated gradients differ from the full ones."""
    T, B = 200, 3
    cell, x, starts, readout = make_problem(cell_name, T, B, seed=1, memory=LONG_MEMORY)
    _, _, g_ref = full_bptt(cell, x, starts, readout)
    _, _, grads = run_segments(cell, x, starts, readout, list(range(0, T + 1, 10)), gradient="tbptt")
    assert rel_err(grads[0], g_ref[0]) > 1e-3


@pytest.mark.parametrize("dtype, tol", [(th.float64, 1e-12), (th.float32, 1e-4)])
def test_segment_and_step_agree(cell_name, dtype, tol):
    T, B = 120, 4
    cell, x, starts, readout = make_problem(cell_name, T, B, seed=2, dtype=dtype)
    cuts = [0, 1, 40, 41, 90, T]
    h1, s1, g1 = run_segments(cell, x, starts, readout, cuts, method="segment")
    h2, s2, g2 = run_segments(cell, x, starts, readout, cuts, method="step")
    assert rel_err(h1, h2) <= tol
    assert rel_err(s1.c, s2.c) <= tol
    for a, b in zip(s1.sensitivities, s2.sensitivities):
        assert b.abs().max() > 0
        assert rel_err(a, b) <= tol
    for a, b in zip(g1, g2):
        assert rel_err(a, b) <= tol


def test_tbptt_equals_autograd_on_each_segment(cell_name):
    T, B = 90, 3
    cell, x, starts, readout = make_problem(cell_name, T, B, seed=3)
    cuts = [0, 30, 31, 60, T]
    _, state, grads = run_segments(cell, x, starts, readout, cuts, gradient="tbptt")
    for s in state.sensitivities:
        assert s.abs().max() == 0
    cell.zero_grad()
    c = th.zeros(B, N, dtype=th.float64)
    for a, b in zip(cuts[:-1], cuts[1:]):
        h, c = cell.reference_scan(x[a:b], c.detach(), starts[a:b])
        (h * readout[a:b]).sum().backward()
    for g, p in zip(grads, cell.parameters()):
        assert rel_err(g, p.grad) <= 1e-12


def test_input_gets_truncated_gradient(cell_name):
    T, B = 20, 2
    cell, x, starts, readout = make_problem(cell_name, T, B, seed=4)
    state = initial_state(cell, B)
    xs = x.clone().requires_grad_(True)
    h, _ = rtrl_segment(cell, xs, starts, state)
    (h * readout).sum().backward()
    x2 = x.clone().requires_grad_(True)
    h2, _ = cell.reference_scan(x2, state.c, starts)
    (h2 * readout).sum().backward()
    th.testing.assert_close(xs.grad, x2.grad, rtol=1e-12, atol=1e-14)


def test_new_state_is_detached_and_input_state_untouched(cell_name):
    cell, x, starts, _ = make_problem(cell_name, 30, 2, seed=5)
    state = initial_state(cell, 2)
    _, s1 = rtrl_segment(cell, x[:10], starts[:10], state)
    before = [s.clone() for s in s1.sensitivities]
    h, s2 = rtrl_segment(cell, x[10:], starts[10:], s1)
    assert h.requires_grad
    assert not s2.c.requires_grad and not any(s.requires_grad for s in s2.sensitivities)
    for a, b in zip(before, s1.sensitivities):
        assert th.equal(a, b)


@pytest.mark.parametrize("method", ["segment", "step"])
def test_out_buffers_receive_the_same_state(cell_name, method):
    cell, x, starts, _ = make_problem(cell_name, 40, 2, seed=7)
    _, s1 = rtrl_segment(cell, x[:20], starts[:20], initial_state(cell, 2))
    _, expected = rtrl_segment(cell, x[20:], starts[20:], s1, method=method)
    spare = initial_state(cell, 2)
    ptrs = [s.data_ptr() for s in spare.sensitivities]
    _, got = rtrl_segment(cell, x[20:], starts[20:], s1, method=method, out=spare)
    assert [s.data_ptr() for s in got.sensitivities] == ptrs
    for a, b in zip(got.sensitivities, expected.sensitivities):
        assert th.equal(a, b)
    with pytest.raises(ValueError, match="shares memory"):
        rtrl_segment(cell, x[20:], starts[20:], s1, out=s1)


def test_float32_sensitivities_stay_finite_over_100k_steps(cell_name):
    th.manual_seed(6)
    cell = make_cell(cell_name)  # default init, float32
    B, M, T_total = 2, 1000, 100_000
    state = initial_state(cell, B)
    starts = th.zeros(M, B, dtype=th.bool)
    with th.no_grad():
        for _ in range(T_total // M):
            _, state = rtrl_segment(cell, th.randn(M, B, D), starts, state)
    for s in state.sensitivities:
        assert th.isfinite(s).all()
        assert s.abs().max() > 0
    assert th.isfinite(state.c).all()


def test_initial_state_matches_cell(cell_name):
    cell = make_cell(cell_name, th.float64)
    state = initial_state(cell, 4)
    assert state.c.shape == (4, N) and state.c.dtype == th.float64
    # One sensitivity per RTRL tensor, of its shape and dtype (complex for a complex state).
    tensors = cell.rtrl_tensors()
    assert [tuple(s.shape) for s in state.sensitivities] == [(4, *t.shape) for t in tensors]
    # (per part, for a cell made of parts)
    dtypes = [th.complex128 if part.complex_state else th.float64 for part in cell.rtrl_parts() for _ in part.rtrl_specs]
    assert [s.dtype for s in state.sensitivities] == dtypes
    assert all(s.abs().sum() == 0 for s in state.sensitivities)
    with pytest.raises(ValueError, match="batch_size"):
        initial_state(cell, 0)


class TestBadInputs:
    @pytest.fixture(autouse=True)
    def setup(self, cell_name):
        self.cell = make_cell(cell_name)
        self.x = th.randn(5, 2, D)
        self.starts = th.zeros(5, 2, dtype=th.bool)
        self.state = initial_state(self.cell, 2)

    def call(self, **kwargs):
        args = {"cell": self.cell, "x": self.x, "episode_starts": self.starts, "state": self.state}
        args.update(kwargs)
        return rtrl_segment(**args)

    def test_x_rank(self):
        with pytest.raises(ValueError, match=r"x must be a \(T, B, D\) tensor"):
            self.call(x=th.randn(5, D))

    def test_x_width(self):
        with pytest.raises(ValueError, match=r"x must have shape \(5, 2, 4\)"):
            self.call(x=th.randn(5, 2, D + 1))

    def test_x_dtype(self):
        with pytest.raises(ValueError, match="x must have dtype torch.float32"):
            self.call(x=self.x.double())

    def test_x_device(self):
        with pytest.raises(ValueError, match="x must be on cpu"):
            self.call(x=th.empty(5, 2, D, device="meta"))

    def test_starts_dtype(self):
        with pytest.raises(ValueError, match="episode_starts must be a bool tensor"):
            self.call(episode_starts=th.zeros(5, 2))

    def test_starts_shape(self):
        with pytest.raises(ValueError, match=r"episode_starts must have shape \(5, 2\)"):
            self.call(episode_starts=th.zeros(4, 2, dtype=th.bool))

    def test_state_batch(self):
        with pytest.raises(ValueError, match=r"state.c must have shape \(2, 8\)"):
            self.call(state=initial_state(self.cell, 3))

    def test_state_sensitivity_shape(self):
        bad = RTRLState(self.state.c, (self.state.sensitivities[0][:, :, :2], *self.state.sensitivities[1:]))
        with pytest.raises(ValueError, match=rf"state.sensitivities\[{self.cell.rtrl_specs[0].name}\] must have shape"):
            self.call(state=bad)

    def test_state_sensitivity_count(self):
        with pytest.raises(ValueError, match=f"must hold {len(self.cell.rtrl_specs)} tensors"):
            self.call(state=RTRLState(self.state.c, self.state.sensitivities[:-1]))

    def test_state_type(self):
        with pytest.raises(ValueError, match="state must be an RTRLState"):
            self.call(state=(self.state.c,))

    @pytest.mark.parametrize("key, value", [("method", "scan"), ("gradient", "bptt"), ("backend", "numba")])
    def test_bad_options(self, key, value):
        with pytest.raises(ValueError, match=f"{key} must be one of"):
            self.call(**{key: value})

    def test_cupy_backend_on_cpu(self):
        with pytest.raises(ValueError, match="backend='cupy' needs tensors on a CUDA device"):
            self.call(backend="cupy")
