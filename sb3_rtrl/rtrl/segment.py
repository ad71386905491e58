"""One training segment with exact RTRL: autograd inside, sensitivities across segment boundaries."""

from __future__ import annotations

from typing import Any, Literal

import torch as th

from sb3_rtrl.cells.base import ElementwiseRecurrentCell, SensitivityKind
from sb3_rtrl.rtrl import backend as backends
from sb3_rtrl.rtrl.state import RTRLState, split_state

Method = Literal["segment", "step"]
Gradient = Literal["rtrl", "tbptt"]
METHODS = ("segment", "step")
GRADIENTS = ("rtrl", "tbptt")


class _InjectSensitivities(th.autograd.Function):
    """
    Identity on c(0) whose backward adds ``sum_b dL/dc(0)[b] . S(0)[b]`` to the RTRL parameters' gradients.

    With it in front of the segment, ``loss.backward()`` alone yields the exact untruncated gradient:
    autograd covers the segment with c(0) held fixed, the sensitivities cover the whole past.
    """

    @staticmethod
    def forward(ctx: Any, c0: th.Tensor, carried: tuple, *params: th.Tensor) -> th.Tensor:
        kinds, sensitivities, ops = carried
        ctx.kinds, ctx.sensitivities, ctx.ops = kinds, sensitivities, ops
        ctx.complex_params = [p.is_complex() for p in params]
        return c0.clone()

    @staticmethod
    def backward(ctx: Any, grad_c0: th.Tensor) -> tuple:
        grad = grad_c0.contiguous()
        if ctx.sensitivities[0].is_complex():
            # The real state holds (real, imaginary) pairs; autograd's gradient of a complex c is dL/dRe + i dL/dIm.
            # A complex view needs an even offset, which a slice of a wider gradient (a part of a cell) may not have.
            if grad.storage_offset() % 2:
                grad = grad.clone()
            grad = th.view_as_complex(grad.view(grad.shape[0], -1, 2))
        grads = ctx.ops.inject(ctx.kinds, ctx.sensitivities, grad)
        # For a real parameter the complex sum is dL/dp + i (nothing): its real part.
        grads = [g.real if g.is_complex() and not is_complex else g for g, is_complex in zip(grads, ctx.complex_params)]
        grads = [g if needed else None for g, needed in zip(grads, ctx.needs_input_grad[2:])]
        return (grad_c0 if ctx.needs_input_grad[0] else None, None, *grads)


def _check_tensor(name: str, tensor: Any, shape: tuple[int, ...], dtype: th.dtype, device: th.device) -> None:
    if not isinstance(tensor, th.Tensor):
        raise ValueError(f"{name} must be a torch.Tensor, got {type(tensor).__name__}")
    if tuple(tensor.shape) != shape:
        raise ValueError(f"{name} must have shape {shape}, got {tuple(tensor.shape)}")
    if tensor.dtype != dtype:
        raise ValueError(f"{name} must have dtype {dtype} (the cell's), got {tensor.dtype}")
    if tensor.device != device:
        raise ValueError(f"{name} must be on {device} (the cell's device), got {tensor.device}")


def validate_segment_inputs(cell: ElementwiseRecurrentCell, x: th.Tensor, episode_starts: th.Tensor, state: RTRLState) -> None:
    """Raise ValueError naming the first input whose type, shape, dtype or device does not fit the cell."""
    if not isinstance(cell, ElementwiseRecurrentCell):
        raise ValueError(f"cell must be an ElementwiseRecurrentCell, got {type(cell).__name__}")
    ref = cell.rtrl_parameters()[0]
    dtype, device = ref.dtype, ref.device
    if not isinstance(x, th.Tensor) or x.dim() != 3:
        got = tuple(x.shape) if isinstance(x, th.Tensor) else type(x).__name__
        raise ValueError(f"x must be a (T, B, D) tensor, got {got}")
    t, b, _ = x.shape
    if t < 1 or b < 1:
        raise ValueError(f"x must have T >= 1 and B >= 1, got shape {tuple(x.shape)}")
    _check_tensor("x", x, (t, b, cell.input_size), dtype, device)
    if not isinstance(episode_starts, th.Tensor) or episode_starts.dtype != th.bool:
        kind = episode_starts.dtype if isinstance(episode_starts, th.Tensor) else type(episode_starts).__name__
        raise ValueError(f"episode_starts must be a bool tensor, got {kind}")
    _check_tensor("episode_starts", episode_starts, (t, b), th.bool, device)
    if not isinstance(state, RTRLState):
        raise ValueError(f"state must be an RTRLState, got {type(state).__name__}")
    _check_tensor("state.c", state.c, (b, cell.state_size), dtype, device)
    shapes = cell.sensitivity_shapes()
    if len(state.sensitivities) != len(shapes):
        raise ValueError(f"state.sensitivities must hold {len(shapes)} tensors, got {len(state.sensitivities)}")
    for spec, shape, s_dtype, s in zip(cell.rtrl_specs, shapes, cell.sensitivity_dtypes(), state.sensitivities):
        _check_tensor(f"state.sensitivities[{spec.name}]", s, (b, *shape), s_dtype, device)


def _check_out(out: RTRLState, state: RTRLState) -> None:
    if not isinstance(out, RTRLState) or len(out.sensitivities) != len(state.sensitivities):
        raise ValueError("out must be an RTRLState with as many sensitivities as state")
    for i, (o, s) in enumerate(zip(out.sensitivities, state.sensitivities)):
        if o.shape != s.shape or o.dtype != s.dtype or o.device != s.device:
            raise ValueError(f"out.sensitivities[{i}] must match state's: {tuple(s.shape)} {s.dtype} {s.device}")
        if o.untyped_storage().data_ptr() == s.untyped_storage().data_ptr():
            raise ValueError(f"out.sensitivities[{i}] shares memory with state.sensitivities[{i}]")


def _kinds(cell: ElementwiseRecurrentCell) -> tuple[SensitivityKind, ...]:
    return tuple(spec.kind for spec in cell.rtrl_specs)


def _inject(cell: ElementwiseRecurrentCell, state: RTRLState, ops: Any) -> th.Tensor:
    """``state.c`` behind the identity whose backward adds the gradient through the carried sensitivities."""
    return _InjectSensitivities.apply(state.c, (_kinds(cell), state.sensitivities, ops), *cell.rtrl_tensors())


def rtrl_segment(
    cell: ElementwiseRecurrentCell,
    x: th.Tensor,
    episode_starts: th.Tensor,
    state: RTRLState,
    method: Method = "segment",
    gradient: Gradient = "rtrl",
    backend: backends.Backend = "auto",
    out: RTRLState | None = None,
) -> tuple[th.Tensor, RTRLState]:
    """
    Run ``cell`` over one segment so that ``loss(h).backward()`` gives the exact RTRL gradient.

    :param cell: an element-wise recurrent cell (e.g. :class:`sb3_rtrl.cells.ELSTMCell`)
    :param x: ``(T, B, D)`` inputs; they receive truncated (in-segment) gradients
    :param episode_starts: ``(T, B)`` bool, ``True`` where ``x[t, b]`` starts a new episode
        (the state and the sensitivities are zeroed before that step)
    :param state: the carried state at the start of the segment (see :func:`initial_state`)
    :param method: ``"segment"`` advances the sensitivities once per segment (reverse cumulative
        products and one batched matrix product); ``"step"`` runs the per-step recursion (the reference)
    :param gradient: ``"rtrl"`` adds the gradient through the carried state (exact, untruncated);
        ``"tbptt"`` truncates at the segment start and leaves the sensitivities at zero
    :param backend: ``"torch"``, ``"cupy"`` (CUDA kernels) or ``"auto"`` (CUDA kernels when the tensors
        are on a GPU and CuPy works, else torch)
    :param out: a state whose tensors receive the new sensitivities (same shapes as ``state``'s, sharing
        no memory with them); a training loop that alternates two states saves allocating (and page
        faulting) the size of the sensitivities every segment. New tensors when None. Unused with
        ``gradient="tbptt"``, which returns the input sensitivities (zeros) unchanged.
    :return: ``h`` of shape ``(T, B, N)`` (connected to autograd) and the state at the end of the
        segment (detached, computed with the current weights)
    """
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}")
    if gradient not in GRADIENTS:
        raise ValueError(f"gradient must be one of {GRADIENTS}, got {gradient!r}")
    validate_segment_inputs(cell, x, episode_starts, state)
    ops = backends.resolve(backend, x.device)
    if gradient == "tbptt":
        h, c_last, _ = cell.scan(x, state.c, episode_starts, need_terms=False)
        return h, RTRLState(c=c_last.detach(), sensitivities=state.sensitivities)
    if out is not None:
        _check_out(out, state)

    advance = ops.segment_advance if method == "segment" else ops.step_advance
    outputs, states, sensitivities = [], [], []
    outs = [None] * len(cell.rtrl_parts()) if out is None else split_state(cell, out)
    # Each part with its own terms and sensitivities: the parts read the same input and not each other's state.
    for part, part_state, part_out in zip(cell.rtrl_parts(), split_state(cell, state), outs):
        h, c_last, terms = part.scan(x, _inject(part, part_state, ops), episode_starts, need_terms=True)
        assert terms is not None
        with th.no_grad():
            sensitivities += advance(
                _kinds(part), part_state.sensitivities, terms, None if part_out is None else part_out.sensitivities
            )
        outputs.append(h)
        states.append(c_last.detach())
    return cell.join_parts(outputs), RTRLState(c=cell.join_parts(states), sensitivities=tuple(sensitivities))


def rtrl_replay(
    cell: ElementwiseRecurrentCell,
    x: th.Tensor,
    episode_starts: th.Tensor,
    state: RTRLState,
    gradient: Gradient = "rtrl",
    backend: backends.Backend = "auto",
) -> th.Tensor:
    """
    Run ``cell`` over a segment whose start state and sensitivities are known, without advancing them.

    ``loss(h).backward()`` gives the gradient of :func:`rtrl_segment` (the sensitivities injected at the
    start cover the past), at the cost of the forward and backward alone. A PPO epoch that evaluates a
    stored chunk of the rollout again needs only this: the sensitivities at the chunk's end are known.

    :param cell: an element-wise recurrent cell
    :param x: ``(T, B, D)`` inputs
    :param episode_starts: ``(T, B)`` bool
    :param state: the cell state and sensitivities at the segment's start
    :param gradient: ``"rtrl"`` injects the sensitivities; ``"tbptt"`` truncates at the segment start
    :param backend: sensitivity backend (for the injection)
    :return: ``h`` of shape ``(T, B, N)``, connected to autograd
    """
    if gradient not in GRADIENTS:
        raise ValueError(f"gradient must be one of {GRADIENTS}, got {gradient!r}")
    validate_segment_inputs(cell, x, episode_starts, state)
    c0 = state.c
    if gradient == "rtrl":
        ops = backends.resolve(backend, x.device)
        injected = [_inject(part, part_state, ops) for part, part_state in zip(cell.rtrl_parts(), split_state(cell, state))]
        c0 = cell.join_parts(injected)
    h, _, _ = cell.scan(x, c0, episode_starts, need_terms=False)
    return h
