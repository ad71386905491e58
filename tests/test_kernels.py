"""CUDA kernels: compile checks (every run), dispatch and fallback (every run), equality with torch (GPU)."""

import logging
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch as th

import sb3_rtrl
from sb3_rtrl.cells import CELLS, ELSTMCell, rtu
from sb3_rtrl.cells import kernels as cell_kernels
from sb3_rtrl.rtrl import backend as backends
from sb3_rtrl.rtrl import initial_state, kernels, rtrl_segment, torch_ops

NVCC = shutil.which("nvcc")
ENTRY_POINTS = {
    "sensitivity.cu": [f"{name}_{s}" for name in ("segment_advance", "step_advance", "inject") for s in ("f32", "f64")],
    "elstm.cu": [f"{name}_{s}" for name in ("elstm_forward", "elstm_backward") for s in ("f32", "f64")],
    "linear_recurrence.cu": ["linear_recurrence_f32", "linear_recurrence_f64"],
}
SOURCES = kernels.cuda_sources() + cell_kernels.cuda_sources()


def nvcc_ptx(source: Path, tmp_path: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [NVCC, "--ptx", "-arch=sm_90", "-o", str(tmp_path / "out.ptx"), str(source)], capture_output=True, text=True
    )


def test_kernel_sources_exist():
    assert [p.name for p in kernels.cuda_sources()] == ["sensitivity.cu"]
    assert [p.name for p in cell_kernels.cuda_sources()] == ["elstm.cu", "linear_recurrence.cu"]


@pytest.mark.skipif(NVCC is None, reason="nvcc is not on this machine: the CUDA sources were not compiled")
@pytest.mark.parametrize("source", SOURCES, ids=lambda p: p.name)
def test_cuda_source_compiles_with_nvcc(source, tmp_path):
    result = nvcc_ptx(source, tmp_path)
    assert result.returncode == 0, result.stderr
    ptx = (tmp_path / "out.ptx").read_text()
    entries = set(re.findall(r"\.entry\s+(\w+)", ptx))
    assert set(ENTRY_POINTS[source.name]) <= entries, entries


@pytest.mark.skipif(NVCC is None, reason="nvcc is not on this machine")
def test_compile_check_catches_errors(tmp_path):
    broken = tmp_path / "broken.cu"
    broken.write_text(kernels.cuda_sources()[0].read_text().replace("acc[i][j] += a_reg[i]", "acc[i][j] += a_reg[i] +", 1))
    assert nvcc_ptx(broken, tmp_path).returncode != 0


def test_only_the_kernels_package_imports_cupy():
    root = Path(sb3_rtrl.__file__).parent
    offenders = [
        str(path.relative_to(root))
        for path in root.rglob("*.py")
        if re.search(r"^\s*(import cupy|from cupy)", path.read_text(), re.M) and path.parent.name != "kernels"
    ]
    assert offenders == []


def test_auto_backend_on_cpu_is_torch_with_one_log_line(caplog):
    backends._reported.clear()
    with caplog.at_level(logging.INFO, logger="sb3_rtrl"):
        assert backends.resolve("auto", th.device("cpu")) is torch_ops
        assert backends.resolve("auto", th.device("cpu")) is torch_ops
    lines = [r.getMessage() for r in caplog.records if "RTRL backend" in r.getMessage()]
    assert lines == ["sb3_rtrl: RTRL backend 'torch' (tensors are on cpu, the CUDA kernels need a GPU)"]


def test_cells_take_the_cpu_paths_on_cpu_tensors():
    """No kernel and no GPU-only path for tensors on the CPU, whatever is installed."""
    for dtype in (th.float32, th.float64):
        x = th.zeros(2, 3, dtype=dtype)
        assert cell_kernels.usable_for(x) is False
        assert cell_kernels.launch_bound(x) is False


def test_cupy_backend_refuses_cpu_tensors():
    with pytest.raises(ValueError, match="backend='cupy' needs tensors on a CUDA device"):
        backends.resolve("cupy", th.device("cpu"))


@pytest.mark.skipif(th.cuda.is_available(), reason="checks the reason given on a machine without a GPU")
def test_unavailable_reason_without_gpu():
    reason = kernels.unavailable_reason()
    assert isinstance(reason, str) and ("CuPy" in reason)


# ---------------------------------------------------------------------------------------------- GPU


def random_case(b, n, k, d, m, dtype, seed):
    g = th.Generator(device="cuda").manual_seed(seed)
    r = k * n

    def rnd(*shape):
        return th.randn(*shape, generator=g, device="cuda", dtype=dtype)

    jac = th.rand(m, b, n, generator=g, device="cuda", dtype=dtype)
    jac[th.rand(m, b, n, generator=g, device="cuda") < 0.05] = 0  # episode resets zero the Jacobian
    return rnd(b, r, d), rnd(b, n), jac, rnd(m, b, r), rnd(m, b, d)


SIZES = [(1, 5, 2, 3, 1), (3, 37, 2, 70, 17), (2, 64, 2, 64, 16), (4, 33, 3, 129, 100), (32, 256, 2, 257, 50)]


def rel(a, b):
    return float((a - b).norm() / b.norm())


@pytest.mark.gpu
@pytest.mark.parametrize("dtype, tol", [(th.float64, 1e-12), (th.float32, 1e-5)])
@pytest.mark.parametrize("size", SIZES, ids=str)
def test_kernels_equal_torch(size, dtype, tol):
    from sb3_rtrl.rtrl.kernels import cupy_ops

    b, n, k, d, m = size
    s0, p, jac, a, v = random_case(b, n, k, d, m, dtype, seed=sum(size))
    for name in ("segment", "step"):
        args = (s0, p, a, v) if name == "segment" else (s0, jac, a, v)
        expected, got = th.full_like(s0, np.nan), th.full_like(s0, np.nan)  # poisoned: every element must be written
        getattr(torch_ops.TORCH_OUTER, name)(*args, expected)
        # The kernels themselves (the backend takes torch's product for the segment advance, see cupy_ops).
        {"segment": cupy_ops.outer_segment, "step": cupy_ops.outer_step}[name](*args, got)
        th.cuda.synchronize()
        assert th.isfinite(got).all(), name
        assert rel(got, expected) <= tol, (name, rel(got, expected))
    grad = cupy_ops.outer_inject(s0, p)
    assert rel(grad, torch_ops.TORCH_OUTER.inject(s0, p)) <= tol


@pytest.mark.gpu
@pytest.mark.parametrize("method", ["segment", "step"])
@pytest.mark.parametrize("cell_name", sorted(CELLS))
def test_exactness_with_cupy_backend(method, cell_name):
    """Every cell on the GPU with the CUDA backend (the RTU's complex sensitivities take torch's complex ops)."""
    th.manual_seed(0)
    T, B, D, N = 300, 3, 4, 6
    cell = CELLS[cell_name].cls(D, N, dtype=th.float64, device="cuda", **CELLS[cell_name].policy_defaults)
    x = th.randn(T, B, D, dtype=th.float64, device="cuda")
    starts = th.rand(T, B, device="cuda") < 0.02
    readout = th.randn(T, B, N, dtype=th.float64, device="cuda")
    h, _ = cell.reference_scan(x, th.zeros(B, N, dtype=th.float64, device="cuda"), starts)
    (h * readout).sum().backward()
    ref = [p.grad.clone() for p in cell.parameters()]
    cell.zero_grad()
    state = initial_state(cell, B)
    cuts = [0, 1, 2, 50, 51, 170, 299, T]
    for lo, hi in zip(cuts[:-1], cuts[1:]):
        out, state = rtrl_segment(cell, x[lo:hi], starts[lo:hi], state, method=method, backend="cupy")
        (out * readout[lo:hi]).sum().backward()
    for p, r in zip(cell.parameters(), ref):
        assert rel(p.grad, r) <= 1e-10


@pytest.mark.gpu
def test_auto_backend_on_gpu():
    backends._reported.clear()
    chosen = backends.resolve("auto", th.device("cuda"))
    assert (chosen is kernels.ops()) == (kernels.unavailable_reason() is None)


def _assert_kernels_equal_torch(cell, x, c0, starts, readout, tol, monkeypatch):
    """A cell's scan with its CUDA kernels against its torch code: outputs, terms, gradients and acting, to ``tol``."""
    results = []
    for use_kernels in (True, False):
        if use_kernels:
            assert cell_kernels.usable_for(x), cell_kernels.unavailable_reason()
        else:
            monkeypatch.setattr(cell_kernels, "usable_for", lambda tensor: False)
        cell.zero_grad()
        c0_leaf = c0.clone().requires_grad_(True)
        h, c_last, terms = cell.scan(x, c0_leaf, starts, need_terms=True)
        ((h * readout).sum() + c_last.sum()).backward()
        with th.no_grad():
            h_act, c_act, _ = cell.scan(x, c0, starts)  # no terms, no autograd
        real = [th.view_as_real(t) if t.is_complex() else t for t in [terms.jacobian, *(a for a, _ in terms.immediates)]]
        results.append([h, c_last, *real, h_act, c_act, c0_leaf.grad] + [p.grad for p in cell.parameters()])
    for got, ref in zip(*results):
        got, ref = got.detach(), ref.detach()
        assert th.isfinite(got).all()
        assert float((got - ref).norm()) <= tol * float(ref.norm()) + 1e-300  # a zero reference (a reset) too


@pytest.mark.gpu
@pytest.mark.parametrize("dtype, tol", [(th.float64, 1e-12), (th.float32, 1e-5)])
@pytest.mark.parametrize("steps, batch, units", [(1, 1, 1), (17, 3, 37), (50, 32, 192), (128, 1, 384)], ids=str)
def test_elstm_kernels_equal_torch(steps, batch, units, dtype, tol, monkeypatch):
    """The eLSTM's recurrence with its CUDA kernels against its torch loop on the GPU: outputs, terms and gradients."""
    th.manual_seed(steps + units)
    cell = ELSTMCell(5, units, dtype=dtype, device="cuda", forget_bias=(0.0, 3.0), init_std=0.5)
    x = th.randn(steps, batch, 5, dtype=dtype, device="cuda")
    c0 = th.randn(batch, units, dtype=dtype, device="cuda")
    starts = th.rand(steps, batch, device="cuda") < 0.1
    readout = th.randn(steps, batch, units, dtype=dtype, device="cuda")
    _assert_kernels_equal_torch(cell, x, c0, starts, readout, tol, monkeypatch)


@pytest.mark.gpu
def test_launch_refuses_tensors_it_cannot_pass():
    from sb3_rtrl.cells.kernels import launch as kernel_launch

    source = cell_kernels.KERNEL_DIR / "linear_recurrence.cu"
    a = th.zeros(4, 4, device="cuda")
    with pytest.raises(ValueError, match="contiguous"):
        kernel_launch.launch(source, "linear_recurrence", (1,), (32,), [a.t(), a, a], 4, 4, 0, 0)
    with pytest.raises(ValueError, match="share one CUDA device and dtype"):
        kernel_launch.launch(source, "linear_recurrence", (1,), (32,), [a, a.double(), a], 4, 4, 0, 0)
    with pytest.raises(ValueError, match="share one CUDA device and dtype"):
        kernel_launch.launch(source, "linear_recurrence", (1,), (32,), [a, a.cpu(), a], 4, 4, 0, 0)


@pytest.mark.gpu
@pytest.mark.parametrize("dtype, tol", [(th.float64, 1e-12), (th.float32, 1e-5), (th.complex128, 1e-12), (th.complex64, 1e-5)])
@pytest.mark.parametrize("steps, width", [(1, 1), (17, 111), (50, 32 * 64), (128, 384)], ids=str)
def test_linear_recurrence_kernel_equals_torch(steps, width, dtype, tol, monkeypatch):
    """The RTU's and gated units' recurrence and its adjoint as one kernel against the torch scan on the GPU."""
    g = th.Generator(device="cuda").manual_seed(steps + width)
    shape = (steps, 2, width // 2) if width > 1 else (steps, 1, 1)
    a = th.rand(shape, generator=g, device="cuda", dtype=dtype) * (th.rand(shape, generator=g, device="cuda") > 0.05)
    a = a / a.abs().clamp_min(1.0)  # |a| <= 1, as in the cells
    b = th.randn(shape, generator=g, device="cuda", dtype=dtype)
    results = []
    for use_kernels in (True, False):
        if not use_kernels:
            monkeypatch.setattr(cell_kernels, "usable_for", lambda tensor: False)
        # The RTU's backward hands the adjoint a conjugated view.
        a_adjoint = a.conj() if dtype.is_complex else a
        results.append((rtu.linear_recurrence(a, b), rtu.adjoint_recurrence(a_adjoint, b)))
    for got, ref in zip(*results):
        assert th.isfinite(th.view_as_real(got) if got.is_complex() else got).all()
        assert rel(got, ref) <= tol


@pytest.mark.gpu
@pytest.mark.parametrize("dtype, tol", [(th.float64, 1e-12), (th.float32, 1e-5)])
@pytest.mark.parametrize("steps, batch, units", [(1, 1, 2), (17, 3, 38), (50, 32, 64), (128, 1, 384)], ids=str)
@pytest.mark.parametrize("cell_name", ["rtu", "gated"])
def test_rtu_and_gated_kernels_equal_torch(cell_name, steps, batch, units, dtype, tol, monkeypatch):
    """The RTU and the gated units with the recurrence kernel against their torch scan on the GPU: outputs, terms,
    gradients."""
    th.manual_seed(steps + units)
    cell = CELLS[cell_name].cls(5, units, dtype=dtype, device="cuda", **CELLS[cell_name].policy_defaults)
    x = th.randn(steps, batch, 5, dtype=dtype, device="cuda")
    c0 = th.randn(batch, units, dtype=dtype, device="cuda")
    starts = th.rand(steps, batch, device="cuda") < 0.1
    readout = th.randn(steps, batch, units, dtype=dtype, device="cuda")
    _assert_kernels_equal_torch(cell, x, c0, starts, readout, tol, monkeypatch)


GXX = shutil.which("g++")


@pytest.mark.skipif(GXX is None, reason="g++ is not on this machine")
@pytest.mark.parametrize(
    "source, harness, macro, cases",
    [
        (kernels.KERNEL_DIR / "sensitivity.cu", "check_sensitivity_kernels.cpp", "SENSITIVITY_CU", 10),
        (cell_kernels.KERNEL_DIR / "elstm.cu", "check_elstm_kernels.cpp", "ELSTM_CU", 8),
        (cell_kernels.KERNEL_DIR / "linear_recurrence.cu", "check_recurrence_kernels.cpp", "RECURRENCE_CU", 32),
    ],
    ids=["sensitivity.cu", "elstm.cu", "linear_recurrence.cu"],
)
def test_kernels_on_emulated_cuda_threads(tmp_path, source, harness, macro, cases):
    """
    Without a GPU: the CUDA source, compiled for the CPU with threads and barriers standing in for CUDA's
    (tests/cuda_emulation), against naive loops. Checks indexing, bounds and barriers, not speed.
    """
    here = Path(__file__).parent / "cuda_emulation"
    binary = tmp_path / "check"
    build = subprocess.run(
        [
            GXX,
            "-std=c++20",
            "-O1",
            "-pthread",
            "-w",
            f"-I{here}",
            f'-D{macro}="{source}"',
            "-x",
            "c++",
            str(here / harness),
            "-o",
            str(binary),
        ],
        capture_output=True,
        text=True,
    )
    assert build.returncode == 0, build.stderr
    run = subprocess.run([str(binary)], capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stdout + run.stderr
    assert run.stdout.count("ok  ") == cases, run.stdout


def test_engine_imports_without_stable_baselines3():
    """The GPU images carry torch and CuPy only: the engine and the kernels must import there."""
    code = (
        "import sys\n"
        "class Block:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name.split('.')[0] in ('stable_baselines3', 'gymnasium', 'sb3_contrib'):\n"
        "            raise ImportError(name)\n"
        "sys.meta_path.insert(0, Block())\n"
        "import sb3_rtrl, sb3_rtrl.rtrl.kernels, sb3_rtrl.rtrl.torch_ops\n"
        "assert 'stable_baselines3' not in sys.modules\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
