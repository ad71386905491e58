"""Run every (task, learner, seed) of a comparison, in parallel processes, with a progress bar."""

from __future__ import annotations

import inspect
import multiprocessing as mp
import os
import queue as queues
import signal
import tempfile
import types
import typing
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from stable_baselines3.common.vec_env import VecNormalize
from tqdm.auto import tqdm

from sb3_rtrl.cli.compare.hyperparams import RUN_KEYS, hyperparams_file, lookup
from sb3_rtrl.cli.compare.learners import LEARNERS, Learner, import_algorithm
from sb3_rtrl.cli.compare.records import (
    RECORDS_FILE,
    read_records,
    record,
    record_key,
    result_from_record,
    spec_key,
    write_records,
)
from sb3_rtrl.cli.compare.report import write_report, write_table
from sb3_rtrl.cli.compare.worker import RunResult, RunSpec, run_one, worker_main
from sb3_rtrl.envs.factory import is_atari_id


class ComparisonInterrupted(KeyboardInterrupt):
    """A comparison stopped by SIGINT or SIGTERM; ``results`` holds the runs that had finished (also written out)."""

    def __init__(self, results: list[RunResult], total: int) -> None:
        super().__init__(f"interrupted: {len(results)} of {total} runs had finished")
        self.results, self.total = results, total


def _takes_text(annotation: Any) -> bool:
    origin = typing.get_origin(annotation)
    if annotation is Any or annotation is str or origin is typing.Literal:
        return True
    return origin in (typing.Union, types.UnionType) and any(_takes_text(a) for a in typing.get_args(annotation))


def check_override(learner: Learner, name: str, key: str, value: Any) -> None:
    """
    Raise ValueError for an override the learner's algorithm cannot take: an unknown keyword, or text where the
    keyword takes no text (a value the command line could not parse as a number, list or ``dict(...)``).
    """
    if key in RUN_KEYS:
        return
    algorithm: Any = import_algorithm(learner.algorithm)
    init = algorithm.__init__
    params = inspect.signature(init).parameters
    if key not in params:
        if not any(p.kind is p.VAR_KEYWORD for p in params.values()):
            raise ValueError(f"--set {name}.{key}: {learner.algorithm} takes no argument {key!r}")
        return
    if isinstance(value, str):
        annotation = params[key].annotation
        if isinstance(annotation, str):
            # The algorithm's own source text (postponed annotations), resolved in its module; never the user's text.
            try:
                annotation = eval(annotation, vars(inspect.getmodule(init)))  # noqa: S307
            except Exception:  # noqa: BLE001  (an annotation that does not resolve: no check)
                return
        if not _takes_text(annotation):
            raise ValueError(f"--set {name}.{key}={value!r}: {key} takes {annotation}, and {value!r} does not read as one")


def build_specs(
    env_ids: list[str],
    learners: list[str],
    steps: int,
    seeds: list[int],
    n_envs: int | None = None,
    overrides: list[tuple[str | None, str, Any]] | None = None,
    hyperparams: dict[str, str] | None = None,
    eval_every: int | None = None,
    eval_episodes: int = 10,
    final_eval_episodes: int = 30,
    unset: list[str] | None = None,
) -> list[RunSpec]:
    """
    One :class:`RunSpec` per (task, learner, seed): the learner's defaults, then its zoo entry for the task less the
    ``unset`` keys, then the overrides.

    :param env_ids: tasks
    :param learners: learner names; ``name@tag`` is a variant of ``name`` that overrides address as ``name@tag``
    :param steps: env steps per run, the same for all
    :param seeds: seeds
    :param n_envs: environments per run; None takes the zoo entry's, else 8
    :param overrides: ``(learner or None for all, key, value)``; a dict value updates a dict entry
    :param hyperparams: learner name -> a zoo yaml file to read instead of the learner's own
    :param eval_every: env steps between evaluations (default: steps / 20)
    :param eval_episodes: episodes per evaluation along the way
    :param final_eval_episodes: episodes of the final evaluation
    :param unset: ``"[learner.]key[.subkey]"``: a hyperparameter, or a key of a dict one (``policy_kwargs``), to remove
        from the zoo entry before the overrides apply (an entry without it is an error); so an unset dict and an
        override of it replace the dict
    """
    # "learner@tag" is a variant: the learner under another name, with overrides of its own.
    unknown = [name for name in learners if name.split("@")[0] not in LEARNERS]
    if unknown:
        raise ValueError(f"unknown learner(s) {', '.join(unknown)}; known: {', '.join(LEARNERS)}")
    if steps < 1 or not seeds or not env_ids or not learners:
        raise ValueError("compare needs steps >= 1, at least one seed, one task and one learner")
    for kind, names in (("learner", learners), ("task", env_ids), ("seed", seeds)):
        twice = sorted({str(n) for n in names if list(names).count(n) > 1})
        if twice:
            raise ValueError(f"{kind}(s) {', '.join(twice)} given twice: each would be run and counted twice")
    for name, location in (hyperparams or {}).items():
        if name not in learners:
            raise ValueError(f"--hyperparams {name}={location}: {name} is not one of the learners {learners}")
        if hyperparams_file(location) is None:
            raise ValueError(f"--hyperparams {name}={location}: no such file")
    for target, key, value in overrides or []:
        if target is not None and target not in learners:
            raise ValueError(f"--set {target}.{key}: {target} is not one of the learners {learners}")
        for name in learners:
            if target is None or target == name:
                check_override(LEARNERS[name.split("@")[0]], name, key, value)
    removals = [_unset_target(text, learners) for text in unset or []]
    specs = []
    for env_id in env_ids:
        for name in learners:
            learner = LEARNERS[name.split("@")[0]]
            files = (hyperparams[name],) if hyperparams and name in hyperparams else learner.hyperparams
            # Whole keys this learner unsets are neither parsed nor refused: they are about to go.
            whole = [key for target, key, subkey in removals if subkey is None and target in (None, name)]
            entry, source = lookup(files, env_id, unparsed=whole)
            where = f"{name}'s hyperparameters for {env_id} ({source or 'defaults'})"
            removed = []
            for text, (target, key, subkey) in zip(unset or [], removals):
                if target is None or target == name:
                    _remove(entry, key, subkey, f"--unset {text}: {where}")
                    removed.append(key if subkey is None else f"{key}.{subkey}")
            applied: dict[str, Any] = {}
            for target, key, value in overrides or []:
                if target is None or target == name:
                    if key in learner.fixed:
                        raise ValueError(f"{name}.{key} is fixed to {learner.fixed[key]!r}: it defines the learner")
                    _override(entry, key, value)
                    _override(applied, key, value)
            run = {key: entry.pop(key) for key in RUN_KEYS if key in entry}
            if "frame_stack" in run and not is_atari_id(env_id):
                # rl-zoo3 stacks frames of any task; the envs here stack Atari's only, so it would be dropped unsaid.
                raise ValueError(f"{where}: compare stacks frames for Atari only; --unset frame_stack runs without them")
            normalize = _normalize(run.get("normalize", False), entry.get("gamma"), where)
            for seed in seeds:
                specs.append(
                    RunSpec(
                        learner=name,
                        algorithm=learner.algorithm,
                        env_id=env_id,
                        seed=seed,
                        steps=steps,
                        n_envs=int(n_envs or run.get("n_envs", 8)),
                        policy=str(run.get("policy", learner.policy)),
                        kwargs={**entry, **learner.fixed},
                        normalize=normalize,
                        frame_stack=int(run.get("frame_stack", 4)),
                        eval_every=eval_every or max(steps // 20, 1),
                        env_kwargs=dict(run.get("env_kwargs") or {}),
                        eval_episodes=eval_episodes,
                        final_eval_episodes=final_eval_episodes,
                        source=source or "defaults",
                        overrides=dict(applied),
                        unset=list(removed),
                    )
                )
    return specs


def _normalize(value: Any, gamma: Any, where: str) -> bool | dict[str, Any]:
    """
    rl-zoo3's ``normalize``: a bool, or VecNormalize's keywords (``{'norm_obs': False, 'norm_reward': True}``); as
    rl-zoo3 does, VecNormalize discounts the returns whose spread scales the rewards with the algorithm's ``gamma``
    when the hyperparameters give one.

    :param value: the entry's ``normalize``
    :param gamma: the entry's ``gamma``, None if it has none
    :param where: whose hyperparameters, for the errors
    :raises ValueError: naming ``where`` for any other value, or a keyword VecNormalize does not take
    """
    if isinstance(value, bool):
        options: dict[str, Any] = {}
    elif isinstance(value, dict) and all(isinstance(key, str) for key in value):
        options = dict(value)
    else:
        raise ValueError(f"{where}: normalize is a bool or a dict of VecNormalize's keywords, got {value!r}")
    allowed = set(inspect.signature(VecNormalize.__init__).parameters) - {"self", "venv", "training"}
    unknown = sorted(set(options) - allowed)
    if unknown:
        raise ValueError(f"{where}: VecNormalize takes no keywords {unknown}; it takes {sorted(allowed)}")
    if value is False:
        return False
    if gamma is not None:
        options["gamma"] = gamma
    return options or True


def _unset_target(text: str, learners: list[str]) -> tuple[str | None, str, str | None]:
    """
    ``"[learner.]key[.subkey]"`` as ``(learner or None for all, key, subkey or None)``; ``"a.b"`` names a learner's
    key when ``a`` is one of ``learners``, else a key of the hyperparameter ``a``.
    """
    parts = text.strip().split(".")
    target: str | None
    subkey: str | None
    if len(parts) == 3 and parts[0] in learners:
        target, key, subkey = parts
    elif len(parts) == 2:
        target, key, subkey = (parts[0], parts[1], None) if parts[0] in learners else (None, parts[0], parts[1])
    elif len(parts) == 1:
        target, key, subkey = None, parts[0], None
    else:
        raise ValueError(f"--unset takes [learner.]key[.subkey] with a learner of {learners}, got {text!r}")
    if not key or subkey == "":
        raise ValueError(f"--unset takes [learner.]key[.subkey], got {text!r}")
    return target, key, subkey


def _remove(entry: dict[str, Any], key: str, subkey: str | None, where: str) -> None:
    """Remove ``entry[key]``, or ``entry[key][subkey]`` (a copy of that dict without it); ValueError if absent."""
    if key not in entry:
        raise ValueError(f"{where} have no {key}")
    if subkey is None:
        del entry[key]
        return
    value = entry[key]
    if not isinstance(value, dict) or subkey not in value:
        raise ValueError(f"{where} have no {key}.{subkey} (its {key} is {value!r})")
    entry[key] = {k: v for k, v in value.items() if k != subkey}


def _override(entry: dict[str, Any], key: str, value: Any) -> None:
    """``entry[key] = value``, except that a dict (policy_kwargs) updates a dict already there rather than replacing it."""
    both_dicts = isinstance(value, dict) and isinstance(entry.get(key), dict)
    entry[key] = {**entry[key], **value} if both_dicts else value


class _BarUpdates:
    """Takes a run's progress messages in this process, as the queue does for runs in their own processes."""

    def __init__(self, bar: Any) -> None:
        self.bar, self.steps = bar, 0

    def put(self, message: tuple) -> None:
        self.bar.update(message[2] - self.steps)
        self.steps = message[2]


def _run_in_processes(
    specs: list[RunSpec], jobs: int, bar: Any, finished: Callable[[int, RunResult], None]
) -> list[RunResult]:
    ctx = mp.get_context("spawn")  # no forked torch state; each run starts clean
    messages = ctx.Queue()
    results: dict[int, RunResult] = {}
    running: dict[int, Any] = {}
    done_steps = [0] * len(specs)
    waiting = list(range(len(specs)))

    def handle(message: tuple) -> None:
        kind, index, payload = message
        if kind == "progress":
            bar.update(payload - done_steps[index])
            done_steps[index] = payload
        else:
            results[index] = payload
            finished(index, payload)
            bar.update(specs[index].steps - done_steps[index])
            done_steps[index] = specs[index].steps

    try:
        while waiting or running:
            while waiting and len(running) < jobs:
                index = waiting.pop(0)
                process = ctx.Process(target=worker_main, args=(specs[index], messages, index), daemon=True)
                process.start()
                running[index] = process
            try:
                handle(messages.get(timeout=0.5))
            except queues.Empty:
                pass
            for index, process in list(running.items()):
                if index in results:
                    process.join()
                    del running[index]
                elif not process.is_alive():
                    # A result sent just before exiting may still be in the queue.
                    while True:
                        try:
                            handle(messages.get(timeout=1.0))
                        except queues.Empty:
                            break
                    if index not in results:
                        results[index] = RunResult(
                            specs[index], error=f"the run's process died (exit code {process.exitcode})"
                        )
                        finished(index, results[index])
                    del running[index]
    finally:
        # Interrupted (SIGINT, SIGTERM) or failed: no run outlives the comparison.
        for process in running.values():
            process.terminate()
        for process in running.values():
            process.join(timeout=10)
            if process.is_alive():
                process.kill()
    return [results[i] for i in range(len(specs))]


@contextmanager
def _sigterm_interrupts() -> Iterator[None]:
    """SIGTERM raises KeyboardInterrupt here, as SIGINT does, so that the workers are ended and the results kept."""

    def interrupt(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt(f"signal {signum}")

    try:
        previous = signal.signal(signal.SIGTERM, interrupt)
    except ValueError:  # not the main thread: signals cannot be handled here
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def check_writable(out: str) -> None:
    """Raise ValueError unless the folder ``out`` can be made and written to (checked before any training)."""
    try:
        os.makedirs(out, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=out, prefix=".write-check"):
            pass
    except OSError as err:
        raise ValueError(f"the output folder {out} is not writable ({err.strerror or err})") from None


def compare(
    env_ids: list[str],
    learners: list[str],
    steps: int,
    seeds: list[int] | int = 3,
    jobs: int = 1,
    out: str = "runs/compare",
    threshold: float | None = None,
    progress_bar: bool = True,
    resume: bool = False,
    **spec_options: Any,
) -> list[RunResult]:
    """
    Train each learner on each task for the same env steps with each seed; write the table, the curves and
    the CSV to ``out``.

    :param env_ids: tasks (see :class:`RunSpec`)
    :param learners: learner names (:data:`sb3_rtrl.cli.compare.LEARNERS`)
    :param steps: env steps per run
    :param seeds: a list of seeds, or their number (0, 1, ...)
    :param jobs: runs at a time; 1 runs them in this process, more in their own processes
    :param out: output folder
    :param threshold: a return; the table then gives the env steps and seconds each run took to reach it
    :param progress_bar: show the progress of all runs together, in env steps
    :param resume: reuse the runs already recorded in ``out`` for these specs and this code (see :func:`run_specs`)
    :param spec_options: more arguments of :func:`build_specs` (n_envs, overrides, hyperparams, eval_every, ...)
    :return: one result per run, failed ones with their error
    """
    seed_list = list(range(seeds)) if isinstance(seeds, int) else list(seeds)
    specs = build_specs(env_ids, learners, steps, seed_list, **spec_options)
    return run_specs(specs, jobs, out, threshold, progress_bar, resume)


def run_specs(
    specs: list[RunSpec],
    jobs: int = 1,
    out: str = "runs/compare",
    threshold: float | None = None,
    progress_bar: bool = True,
    resume: bool = False,
) -> list[RunResult]:
    """
    Run the given runs (see :func:`compare`, which builds them from learners, tasks and seeds); write the table, the
    curves and the CSV to ``out``, and each finished run's record to its ``runs.json``.

    :param resume: reuse the runs recorded in ``out``'s ``runs.json`` whose spec and code are those of a run here,
        and run only the others; records that match no run here are kept in the file
    :raises ComparisonInterrupted: on SIGINT or SIGTERM, with the runs that had finished (written out too)
    :raises ValueError: for ``jobs`` < 1, an output folder that cannot be written, or (with ``resume``) a
        ``runs.json`` that is not a comparison's records
    """
    if jobs < 1:
        raise ValueError(f"jobs must be >= 1, got {jobs}")
    check_writable(out)
    done: dict[int, RunResult] = {}
    # Every record to keep in runs.json, by key: the file's (when resuming), then each run's as it finishes.
    kept = {record_key(entry): entry for entry in read_records(out)} if resume else {}
    keys = [spec_key(spec) for spec in specs]
    for index, key in enumerate(keys):
        if key is not None and key in kept:
            done[index] = result_from_record(specs[index], kept[key])
    if resume:
        others = len(kept) - len({keys[i] for i in done})
        print(
            f"resuming: {len(done)} of {len(specs)} runs are in {os.path.join(out, RECORDS_FILE)}"
            + (f"; {others} record(s) there are of other runs or other code, kept but not used" if others else "")
        )
    todo = [index for index in range(len(specs)) if index not in done]

    def finished(index: int, result: RunResult) -> None:
        # Each run's points, record and the table so far are on disk as soon as it ends.
        done[index] = result
        key = keys[index]
        if result.error is None and key is not None:
            kept[key] = record(result)
            write_records(out, list(kept.values()))
        write_table([done[i] for i in sorted(done)], out, threshold)

    try:
        with (
            _sigterm_interrupts(),
            tqdm(
                total=sum(specs[i].steps for i in todo), unit="step", unit_scale=True, disable=not progress_bar, desc="compare"
            ) as bar,
        ):
            if jobs == 1:
                for index in todo:
                    progress = _BarUpdates(bar)
                    finished(index, run_one(specs[index], progress, index))
                    bar.update(specs[index].steps - progress.steps)
            elif todo:
                _run_in_processes([specs[i] for i in todo], jobs, bar, lambda i, result: finished(todo[i], result))
    except KeyboardInterrupt:
        results = [done[i] for i in sorted(done)]
        if results:
            write_report(results, out, threshold)
        raise ComparisonInterrupted(results, len(specs)) from None
    results = [done[i] for i in range(len(specs))]
    write_report(results, out, threshold)
    return results
