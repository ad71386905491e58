"""``sb3-rtrl compare``: learners side by side, zoo hyperparameters read safely, failures reported, outputs."""

from __future__ import annotations

import contextlib
import csv
import dataclasses
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import torch as th
from stable_baselines3.common.utils import LinearSchedule

from sb3_rtrl.cli import main
from sb3_rtrl.cli.compare import LEARNERS, Learner, compare, register_learner
from sb3_rtrl.cli.compare.hyperparams import lookup, parse_override, parse_value
from sb3_rtrl.cli.compare.runner import build_specs
from sb3_rtrl.envs import DELAYED_RECALL_ID
from sb3_rtrl.policies import LONG_MEMORY_NETWORK
from sb3_rtrl.torch_layers import ImpalaCNN


@pytest.fixture
def helper_learners():
    register_learner(Learner("dies", "compare_helpers:DiesAtConstruction", "MlpPolicy"))
    register_learner(Learner("raises", "compare_helpers:RaisesAtConstruction", "MlpPolicy"))
    yield
    LEARNERS.pop("dies")
    LEARNERS.pop("raises")


def test_zoo_values_are_parsed_without_eval():
    schedule = parse_value("lin_1e-3")
    assert isinstance(schedule, LinearSchedule) and schedule(1.0) == pytest.approx(1e-3) and schedule(0.0) == 0.0
    kwargs = parse_value(
        "dict(ortho_init=False, activation_fn=nn.ReLU, net_arch=dict(pi=[64], vf=[64]), "
        "features_extractor_class=sb3_rtrl.torch_layers.ImpalaCNN, betas=(0.9, 0.99))"
    )
    assert kwargs == dict(
        ortho_init=False,
        activation_fn=th.nn.ReLU,
        net_arch=dict(pi=[64], vf=[64]),
        features_extractor_class=ImpalaCNN,
        betas=(0.9, 0.99),
    )
    assert parse_value("MlpLstmPolicy") == "MlpLstmPolicy" and parse_value(3) == 3 and parse_value("[1, -2]") == [1, -2]
    for evil in ["__import__('os').system('true')", "dict(x=os.system)", "dict(**x)", "dict(x=print('hi'))", "lin_x"]:
        with pytest.raises(ValueError, match="cannot read|allowlist"):
            parse_value(evil)
    assert parse_override("rtrl_a2c.n_steps=16") == ("rtrl_a2c", "n_steps", 16)
    assert parse_override("gamma=0.9") == (None, "gamma", 0.9)
    with pytest.raises(ValueError, match="key=value"):
        parse_override("gamma")


def test_a_task_registered_by_a_module_is_looked_up_by_its_name(tmp_path):
    """gymnasium's ``module:Name-v0`` ids (rl-zoo3's NoVel tasks, POPGym flattened) find the zoo entry of ``Name-v0``."""
    zoo = tmp_path / "zoo.yml"
    zoo.write_text("Name-v0:\n  n_steps: 7\n")
    assert lookup([str(zoo)], "some_module:Name-v0") == ({"n_steps": 7}, f"{zoo}:Name-v0")
    assert lookup([str(zoo)], "some_module:ns/Name-v0")[1] == f"{zoo}:Name-v0"
    assert lookup([str(zoo)], "some_module:Other-v0") == ({}, None)


def test_atari_games_use_the_atari_entry_without_its_wrapper(tmp_path):
    zoo = tmp_path / "zoo.yml"
    zoo.write_text(
        "atari:\n  env_wrapper:\n    - stable_baselines3.common.atari_wrappers.AtariWrapper\n  frame_stack: 4\n"
        "  policy_kwargs: 'dict(features_extractor_class=sb3_rtrl.torch_layers.ImpalaCNN)'\n"
    )
    entry, source = lookup([str(zoo)], "ALE/Breakout-v5")
    assert source == f"{zoo}:atari" and "env_wrapper" not in entry and entry["frame_stack"] == 4
    assert entry["policy_kwargs"]["features_extractor_class"] is ImpalaCNN
    assert lookup([str(zoo)], "BreakoutNoFrameskip-v4")[1] == f"{zoo}:atari"


def test_specs_take_defaults_then_the_zoo_entry_then_overrides(tmp_path):
    zoo = tmp_path / "zoo.yml"
    zoo.write_text(
        "CartPoleNoVel-v1:\n  n_envs: 4\n  n_steps: 8\n  learning_rate: lin_1e-3\n  normalize: true\n"
        "  policy_kwargs: 'dict(hidden_size=16)'\n"
    )
    specs = build_specs(
        ["sb3_rtrl/CartPoleNoVel-v1"],
        ["rtrl_a2c", "tbptt_a2c"],
        1000,
        [0, 1],
        overrides=[("rtrl_a2c", "n_steps", 4)],
        hyperparams={"rtrl_a2c": str(zoo), "tbptt_a2c": str(zoo)},
    )
    assert len(specs) == 4
    rtrl, tbptt = specs[0], specs[2]
    assert rtrl.n_envs == 4 and rtrl.normalize and rtrl.kwargs["n_steps"] == 4 and tbptt.kwargs["n_steps"] == 8
    assert rtrl.kwargs["gradient"] == "rtrl" and tbptt.kwargs["gradient"] == "tbptt"
    assert rtrl.kwargs["policy_kwargs"] == dict(hidden_size=16) and rtrl.source.endswith(":CartPoleNoVel-v1")
    assert rtrl.overrides == dict(n_steps=4) and tbptt.overrides == {}  # for the report
    assert [s.seed for s in specs] == [0, 1, 0, 1] and all(s.steps == 1000 for s in specs)
    overrides = [("rtrl_a2c@small", "policy_kwargs", dict(hidden_size=2)), (None, "n_steps", 3)]
    variants = build_specs([DELAYED_RECALL_ID], ["rtrl_a2c", "rtrl_a2c@small"], 10, [0], overrides=overrides)
    assert [s.learner for s in variants] == ["rtrl_a2c", "rtrl_a2c@small"] and variants[1].algorithm.endswith(":RTRLA2C")
    shipped = dict(hidden_size=32, **LONG_MEMORY_NETWORK)
    assert variants[0].kwargs["policy_kwargs"] == shipped
    assert variants[1].kwargs["policy_kwargs"] == dict(shipped, hidden_size=2)  # updated, not replaced
    assert variants[0].kwargs["n_steps"] == variants[1].kwargs["n_steps"] == 3
    assert variants[0].overrides == dict(n_steps=3)
    assert variants[1].overrides == dict(policy_kwargs=dict(hidden_size=2), n_steps=3)
    both = [("rtrl_a2c", "policy_kwargs", dict(hidden_size=2)), ("rtrl_a2c", "policy_kwargs", dict(cell="rtu"))]
    (merged,) = build_specs([DELAYED_RECALL_ID], ["rtrl_a2c"], 10, [0], overrides=both)
    assert merged.overrides == dict(policy_kwargs=dict(hidden_size=2, cell="rtu"))
    with pytest.raises(ValueError, match="rtrl_a2c.gradient is fixed"):
        build_specs([DELAYED_RECALL_ID], ["rtrl_a2c"], 10, [0], overrides=[(None, "gradient", "tbptt")])
    with pytest.raises(ValueError, match="unknown learner.*known: rtrl_a2c"):
        build_specs([DELAYED_RECALL_ID], ["rtrl_ppo2"], 10, [0])


def test_unset_removes_keys_of_the_zoo_entry_before_the_overrides(tmp_path):
    """``--unset``: a memoryless baseline can read a recurrent learner's entry without its LSTM keywords."""
    zoo = tmp_path / "zoo.yml"
    zoo.write_text(
        "CartPoleNoVel-v1:\n  n_envs: 4\n  n_steps: 8\n  normalize: true\n"
        "  policy_kwargs: 'dict(lstm_hidden_size=16, enable_critic_lstm=True, ortho_init=False)'\n"
    )
    task = "sb3_rtrl/CartPoleNoVel-v1"
    files, alone = {"ppo": str(zoo), "rtrl_a2c": str(zoo)}, {"ppo": str(zoo)}
    unset = ["ppo.policy_kwargs.lstm_hidden_size", "ppo.policy_kwargs.enable_critic_lstm", "normalize"]
    ppo, rtrl = build_specs([task], ["ppo", "rtrl_a2c"], 10, [0], unset=unset, hyperparams=files)
    assert ppo.kwargs["policy_kwargs"] == dict(ortho_init=False) and not ppo.normalize and ppo.n_envs == 4
    assert rtrl.kwargs["policy_kwargs"] == dict(lstm_hidden_size=16, enable_critic_lstm=True, ortho_init=False)
    assert not rtrl.normalize and rtrl.unset == ["normalize"]
    assert ppo.unset == ["policy_kwargs.lstm_hidden_size", "policy_kwargs.enable_critic_lstm", "normalize"]
    # An unset dict and an override of it: the override replaces the entry's dict instead of updating it.
    (replaced,) = build_specs(
        [task],
        ["ppo"],
        10,
        [0],
        unset=["policy_kwargs"],
        overrides=[("ppo", "policy_kwargs", dict(net_arch=[8]))],
        hyperparams=alone,
    )
    assert replaced.kwargs["policy_kwargs"] == dict(net_arch=[8]) and replaced.kwargs["n_steps"] == 8
    # A key the entry does not have is named with the task and the file, never passed over.
    with pytest.raises(ValueError, match=r"--unset ppo.policy_kwargs.hidden: ppo's hyperparameters for .*zoo.yml"):
        build_specs([task], ["ppo"], 10, [0], unset=["ppo.policy_kwargs.hidden"], hyperparams=alone)
    with pytest.raises(ValueError, match="have no gamma"):
        build_specs([task], ["ppo"], 10, [0], unset=["gamma"], hyperparams=alone)
    with pytest.raises(ValueError, match="have no n_steps.x"):
        build_specs([task], ["ppo"], 10, [0], unset=["n_steps.x"], hyperparams=alone)
    with pytest.raises(ValueError, match=r"with a learner of \['ppo'\]"):
        build_specs([task], ["ppo"], 10, [0], unset=["a2c.policy_kwargs.x"], hyperparams=alone)
    with pytest.raises(ValueError, match="--unset takes"):
        build_specs([task], ["ppo"], 10, [0], unset=["policy_kwargs."], hyperparams=alone)


def test_unset_lets_an_entry_with_keys_compare_does_not_apply_run_without_them(tmp_path):
    """A refused key (a wrapper class compare would not import) is neither parsed nor refused when it is unset."""
    zoo = tmp_path / "zoo.yml"
    zoo.write_text(
        "CartPoleNoVel-v1:\n  n_steps: 8\n  env_wrapper:\n    - some_module.SomeWrapper\n"
        "  normalize: true\n  normalize_kwargs: 'dict(norm_obs=False)'\n"
    )
    task, files, alone = "sb3_rtrl/CartPoleNoVel-v1", {"ppo": str(zoo), "a2c": str(zoo)}, {"ppo": str(zoo)}
    with pytest.raises(ValueError, match=r"compare does not apply env_wrapper, normalize_kwargs \(--unset removes a key\)"):
        build_specs([task], ["ppo"], 10, [0], hyperparams=alone)
    # Unset for one learner only: the other still reads the whole entry, and is refused.
    with pytest.raises(ValueError, match="compare does not apply env_wrapper, normalize_kwargs"):
        build_specs([task], ["ppo", "a2c"], 10, [0], unset=["ppo.env_wrapper", "ppo.normalize_kwargs"], hyperparams=files)
    (spec,) = build_specs([task], ["ppo"], 10, [0], unset=["env_wrapper", "normalize_kwargs"], hyperparams=alone)
    assert spec.kwargs == dict(n_steps=8) and spec.normalize and spec.unset == ["env_wrapper", "normalize_kwargs"]
    # A key of a refused dict is not the whole key: the entry keeps it, and is refused.
    with pytest.raises(ValueError, match=r"compare does not apply normalize_kwargs \("):
        build_specs([task], ["ppo"], 10, [0], unset=["env_wrapper", "normalize_kwargs.norm_obs"], hyperparams=alone)


def test_frame_stack_outside_atari_is_refused_not_dropped(tmp_path):
    """rl-zoo3 stacks frames of any task, compare only Atari's: an entry's frame_stack elsewhere is an error."""
    zoo = tmp_path / "zoo.yml"
    zoo.write_text("CartPoleNoVel-v1:\n  frame_stack: 2\n  n_steps: 8\n")
    task, files = "sb3_rtrl/CartPoleNoVel-v1", {"ppo": str(zoo)}
    with pytest.raises(ValueError, match=r"ppo's hyperparameters for .*zoo.yml:CartPoleNoVel-v1\): compare stacks frames"):
        build_specs([task], ["ppo"], 10, [0], hyperparams=files)
    (spec,) = build_specs([task], ["ppo"], 10, [0], unset=["frame_stack"], hyperparams=files)
    assert spec.kwargs == dict(n_steps=8) and spec.unset == ["frame_stack"]


def test_shipped_and_zoo_files_are_found():
    entry, source = lookup(LEARNERS["rtrl_a2c"].hyperparams, "sb3_rtrl/CartPoleNoVel-v1")
    assert source is not None and source.endswith("rtrl_a2c.yml:CartPoleNoVel-v1") and entry["n_steps"] == 16
    assert lookup(LEARNERS["rtrl_a2c"].hyperparams, "popgym-RepeatFirstEasy-v0") == ({}, None)
    pytest.importorskip("rl_zoo3")
    entry, source = lookup(LEARNERS["recurrent_ppo"].hyperparams, "sb3_rtrl/CartPoleNoVel-v1")
    assert source is not None and source.endswith("ppo_lstm.yml:CartPoleNoVel-v1")
    assert entry["policy_kwargs"]["activation_fn"] is th.nn.ReLU and entry["n_epochs"] == 20


@pytest.mark.parametrize("env_id", ["sb3_rtrl/CartPoleNoVel-v1", "sb3_rtrl/PendulumNoVel-v1"])
def test_shipped_rtrl_ppo_entries_are_recurrent_ppos_own(env_id):
    """Where rl-zoo3 tunes RecurrentPPO, the shipped RTRLPPO entry is that entry unchanged: the class is all that differs."""
    pytest.importorskip("rl_zoo3")
    from sb3_rtrl.cli.compare import records

    ours, our_source = lookup(LEARNERS["rtrl_ppo"].hyperparams, env_id)
    theirs, their_source = lookup(LEARNERS["recurrent_ppo"].hyperparams, env_id)
    assert our_source is not None and our_source.endswith(f"rtrl_ppo.yml:{env_id.split('/')[-1]}")
    # Compared as the run records describe settings: a schedule (which compares by identity) by its attributes.
    assert their_source is not None and records._plain(ours) == records._plain(theirs)


def test_compare_in_process_writes_table_csv_and_curves(tmp_path, helper_learners, capsys):
    results = compare(
        [DELAYED_RECALL_ID],
        ["rtrl_a2c", "a2c", "raises"],
        256,
        seeds=1,
        out=str(tmp_path),
        threshold=-1.0,
        progress_bar=False,
        n_envs=2,
        eval_every=128,
        eval_episodes=2,
        final_eval_episodes=2,
        overrides=[(None, "n_steps", 4), ("rtrl_a2c", "policy_kwargs", dict(hidden_size=4))],
    )
    ok = {r.spec.learner: r for r in results}
    assert ok["rtrl_a2c"].error is None and ok["a2c"].error is None
    assert "RuntimeError: this learner always fails" in ok["raises"].error
    assert [p[0] for p in ok["rtrl_a2c"].points] == [128, 256, 256] and ok["rtrl_a2c"].steps_done == 256
    table = capsys.readouterr().out
    assert "FAILED raises on sb3_rtrl/DelayedRecall-v0, seed 0: RuntimeError: this learner always fails" in table
    assert "rtrl_a2c" in table and "1/1" in table
    with open(tmp_path / "points.csv") as f:
        rows = list(csv.DictReader(f))
    assert {r["learner"] for r in rows} == {"rtrl_a2c", "a2c"} and sum(r["final"] == "1" for r in rows) == 2
    assert os.path.getsize(tmp_path / "curves.png") > 10_000 and (tmp_path / "table.txt").is_file()


def test_compare_in_processes_survives_a_dead_process(tmp_path, helper_learners):
    results = compare(
        [DELAYED_RECALL_ID],
        ["dies", "rtrl_a2c"],
        64,
        seeds=1,
        jobs=2,
        out=str(tmp_path),
        progress_bar=False,
        n_envs=2,
        eval_episodes=1,
        final_eval_episodes=1,
        overrides=[("rtrl_a2c", "n_steps", 4), ("rtrl_a2c", "policy_kwargs", dict(hidden_size=4))],
    )
    by_name = {r.spec.learner: r for r in results}
    assert by_name["dies"].error == "the run's process died (exit code 3)"
    assert by_name["rtrl_a2c"].error is None and by_name["rtrl_a2c"].steps_done == 64


def test_cli_compare_errors_exit_2(tmp_path, capsys):
    with pytest.raises(SystemExit) as info:
        main(["compare", "--env", DELAYED_RECALL_ID, "--steps", "10", "--learners", "nope", "--out", str(tmp_path)])
    assert info.value.code == 2 and "unknown learner(s) nope" in capsys.readouterr().err
    with pytest.raises(SystemExit) as info:
        main(["compare", "--env", DELAYED_RECALL_ID, "--steps", "10", "--set", "policy_kwargs=dict(x=os.system)"])
    assert info.value.code == 2 and "allowlist" in capsys.readouterr().err
    with pytest.raises(SystemExit) as info:
        argv = ["compare", "--env", DELAYED_RECALL_ID, "--steps", "10", "--learners", "rtrl_a2c", "--out", str(tmp_path)]
        main([*argv, "--unset", "policy_kwargs.no_such_key"])
    assert (
        info.value.code == 2 and "--unset policy_kwargs.no_such_key: rtrl_a2c's hyperparameters for" in capsys.readouterr().err
    )


def test_tuple_observations_are_flattened_for_every_learner():
    """SB3 takes no Tuple observations: compare flattens them (one-hot) and leaves other spaces alone."""
    import gymnasium as gym
    from gymnasium import spaces

    from sb3_rtrl.envs.factory import flatten_tuple_observations

    class TupleEnv(gym.Env):
        observation_space = spaces.Tuple([spaces.Discrete(2), spaces.Discrete(4)])
        action_space = spaces.Discrete(2)

        def reset(self, *, seed=None, options=None):
            return (1, 2), {}

    env = flatten_tuple_observations(TupleEnv())
    assert isinstance(env.observation_space, spaces.Box) and env.observation_space.shape == (6,)
    assert env.reset()[0].tolist() == [0, 1, 0, 0, 1, 0]
    plain = gym.make("CartPole-v1")
    assert flatten_tuple_observations(plain) is plain


INTERRUPTED_SCRIPT = """
import faulthandler, signal, sys
faulthandler.register(signal.SIGUSR1, all_threads=True)  # a hang's stacks, on the test's request
# As a run in a terminal's foreground: a shell starts background jobs, and so this test under them, with SIGINT
# ignored, which the script would inherit.
signal.signal(signal.SIGINT, signal.default_int_handler)
sys.path.insert(0, {tests!r})
from sb3_rtrl.cli.compare import Learner, compare, register_learner
register_learner(Learner("sleeps", "compare_helpers:SleepsAtConstruction", "MlpPolicy"))
compare([{env!r}], ["rtrl_a2c", "sleeps"], 64, seeds=1, jobs=2, out={out!r}, progress_bar=False, eval_episodes=1,
        final_eval_episodes=1, overrides=[("rtrl_a2c", "n_steps", 4), ("rtrl_a2c", "policy_kwargs", dict(hidden_size=4))])
"""


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_an_interrupted_comparison_keeps_what_finished_and_leaves_no_worker(tmp_path, monkeypatch, signum):
    out, pid_file = tmp_path / "out", tmp_path / "sleeper.pid"
    monkeypatch.setenv("COMPARE_SLEEPER_PID", str(pid_file))
    script = INTERRUPTED_SCRIPT.format(tests=os.path.dirname(__file__), env=DELAYED_RECALL_ID, out=str(out))
    # Output to a file, not a pipe, and in a session of its own: a worker left behind can neither hold the test
    # waiting for the pipe's end nor outlive the test.
    log_path = tmp_path / "compare.log"
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-u", "-c", script], stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
    try:
        deadline = time.monotonic() + 120
        # Wait until the quick run has finished (its points are on disk) and the other one is running.
        while not ((out / "points.csv").is_file() and pid_file.is_file() and pid_file.read_text()):
            assert process.poll() is None and time.monotonic() < deadline, log_path.read_text()
            time.sleep(0.2)
        sleeper = int(pid_file.read_text())
        process.send_signal(signum)
        try:
            # Generous: the report's plot and the workers' ends take seconds, many more on a loaded machine.
            process.wait(timeout=180)
        except subprocess.TimeoutExpired:
            # Where it hangs: every thread's stack, written to the log by the script's faulthandler.
            process.send_signal(signal.SIGUSR1)
            time.sleep(2)
            pytest.fail(f"the comparison did not end within 180 s of the signal:\n{log_path.read_text()}")
        # Checked before the session is killed below, which would end it anyway.
        for _ in range(50):
            if not os.path.exists(f"/proc/{sleeper}") or "Z" in open(f"/proc/{sleeper}/stat").read().split()[2]:
                break
            time.sleep(0.2)
        else:
            pytest.fail(f"the interrupted run's process {sleeper} is still running:\n{log_path.read_text()}")
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
    output = log_path.read_text()
    assert process.returncode != 0
    assert "interrupted: 1 of 2 runs had finished" in output
    with open(out / "points.csv") as f:
        rows = list(csv.DictReader(f))
    assert {row["learner"] for row in rows} == {"rtrl_a2c"} and any(row["final"] == "1" for row in rows)
    assert "rtrl_a2c" in (out / "table.txt").read_text() and (out / "curves.png").is_file()


@pytest.mark.parametrize(
    "args, message",
    [
        (["--learners", "rtrl_a2c", "rtrl_a2c"], "rtrl_a2c given twice"),
        (["--hyperparams", "rtrl_a2c=/nonexistent.yml"], "/nonexistent.yml: no such file"),
        (["--hyperparams", "ppo=/nonexistent.yml"], "ppo is not one of the learners"),
        (["--set", "rtrl_a2c.learning_rate=abc"], "learning_rate='abc'"),
        (["--set", "rtrl_a2c.no_such_argument=1"], "takes no argument 'no_such_argument'"),
        (["--set", "ppo.gamma=0.9"], "ppo is not one of the learners"),
        (["--out", "/proc/sb3-rtrl-out"], "output folder /proc/sb3-rtrl-out is not writable"),
    ],
)
def test_compare_command_line_mistakes_are_named_before_training(capsys, args, message):
    argv = ["compare", "--env", DELAYED_RECALL_ID, "--steps", "64", "--seeds", "1", "--no-progress-bar"]
    if "--learners" not in args:
        argv += ["--learners", "rtrl_a2c"]
    with pytest.raises(SystemExit) as info:
        main(argv + args)
    assert info.value.code == 2
    assert message in capsys.readouterr().err


def test_compare_exits_non_zero_when_runs_fail(tmp_path, capsys):
    argv = [
        "compare",
        "--env",
        DELAYED_RECALL_ID,
        "--learners",
        "rtrl_a2c",
        "--steps",
        "64",
        "--seeds",
        "1",
        "--no-progress-bar",
        "--out",
        str(tmp_path),
        "--set",
        "rtrl_a2c.policy_kwargs=dict(hidden_size=-1)",
    ]
    with pytest.raises(SystemExit) as info:
        main(argv)
    assert info.value.code == 1
    assert "1 of 1 runs failed" in capsys.readouterr().err


def test_env_kwargs_reach_the_task(tmp_path):
    """rl-zoo3's env_kwargs (in a zoo entry or with --set) build the task, for training and evaluation alike."""
    specs = build_specs(
        [DELAYED_RECALL_ID], ["rtrl_a2c"], 32, [0], overrides=[(None, "env_kwargs", dict(delay=2, num_cues=3))]
    )
    assert specs[0].env_kwargs == dict(delay=2, num_cues=3) and "env_kwargs" not in specs[0].kwargs
    from sb3_rtrl.cli.compare.worker import make_env

    env = make_env(DELAYED_RECALL_ID, 2, 0, env_kwargs=specs[0].env_kwargs)
    assert env.action_space.n == 3 and env.get_attr("delay") == [2, 2]
    with pytest.raises(ValueError, match="gymnasium ids only"):
        make_env("ALE/Pong-v5", 1, 0, env_kwargs=dict(x=1))


def test_a_normalize_dict_reaches_vec_normalize_for_training_and_evaluation(tmp_path, monkeypatch):
    """
    rl-zoo3's ``normalize: "{'norm_obs': False, ...}"`` is VecNormalize's keywords, not a plain true; its ``gamma`` is
    the algorithm's.
    """
    zoo = tmp_path / "zoo.yml"
    zoo.write_text("CartPoleNoVel-v1:\n  normalize: \"{'norm_obs': False, 'norm_reward': True}\"\n  gamma: 0.9\n")
    task = "sb3_rtrl/CartPoleNoVel-v1"
    (spec,) = build_specs([task], ["rtrl_a2c"], 32, [0], hyperparams={"rtrl_a2c": str(zoo)})
    assert spec.normalize == dict(norm_obs=False, norm_reward=True, gamma=0.9)
    from sb3_rtrl.cli.compare import worker

    made = []
    init = worker.VecNormalize.__init__

    def recorded(self, venv, **kwargs):
        init(self, venv, **kwargs)
        made.append(self)

    monkeypatch.setattr(worker.VecNormalize, "__init__", recorded)
    save_dir = tmp_path / "run"
    result = worker.run_one(
        dataclasses.replace(spec, eval_every=16, eval_episodes=1, final_eval_episodes=1, save_dir=str(save_dir))
    )
    assert result.error is None, result.error
    train, evaluation = made
    # The statistics the model was trained with are kept beside it.
    kept = worker.VecNormalize.load(str(save_dir / "vecnormalize.pkl"), train.venv)
    np.testing.assert_array_equal(kept.ret_rms.var, train.ret_rms.var)
    assert (kept.norm_obs, kept.gamma) == (False, 0.9) and (save_dir / "model.zip").is_file()
    assert (train.norm_obs, train.norm_reward, train.gamma, train.training) == (False, True, 0.9, True)
    assert (evaluation.norm_obs, evaluation.norm_reward, evaluation.gamma, evaluation.training) == (False, False, 0.9, False)
    # As rl-zoo3 does, the rewards are scaled by returns discounted as the algorithm's (its gamma, --set included).
    zoo.write_text("CartPoleNoVel-v1:\n  normalize: true\n  gamma: 0.98\n")
    (plain,) = build_specs([task], ["rtrl_a2c"], 32, [0], hyperparams={"rtrl_a2c": str(zoo)})
    (reset,) = build_specs([task], ["rtrl_a2c"], 32, [0], hyperparams={"rtrl_a2c": str(zoo)}, overrides=[(None, "gamma", 0.5)])
    assert plain.normalize == dict(gamma=0.98) and reset.normalize == dict(gamma=0.5) and reset.kwargs["gamma"] == 0.5
    zoo.write_text("CartPoleNoVel-v1:\n  normalize: false\n  gamma: 0.98\n")
    assert build_specs([task], ["rtrl_a2c"], 32, [0], hyperparams={"rtrl_a2c": str(zoo)})[0].normalize is False
    for text, match in (
        ("'{\"norm_ob\": False}'", r"VecNormalize takes no keywords \['norm_ob'\]"),
        ("3", "normalize is a bool or a dict"),
    ):
        zoo.write_text(f"CartPoleNoVel-v1:\n  normalize: {text}\n")
        named = rf"rtrl_a2c's hyperparameters for {task} \(.*zoo.yml:CartPoleNoVel-v1\): {match}"
        with pytest.raises(ValueError, match=named):
            build_specs([task], ["rtrl_a2c"], 32, [0], hyperparams={"rtrl_a2c": str(zoo)})


def test_table_reports_the_final_return_and_the_mmer():
    """MMER (POPGym's measure): the best mean return along training, averaged over seeds; beside the final return."""
    from sb3_rtrl.cli.compare.report import format_table, summarize
    from sb3_rtrl.cli.compare.worker import RunResult, RunSpec

    def run(seed, means):
        spec = RunSpec("rtrl_a2c", "x:Y", "task", seed, 30, 1, "MlpLstmPolicy")
        points = [(10 * (i + 1), float(i), m, 0.0) for i, m in enumerate(means)]
        return RunResult(spec, points=points, final_mean=means[-1], final_std=0.0, train_seconds=3.0, steps_done=30)

    (summary,) = summarize([run(0, [0.1, 0.9, 0.5]), run(1, [0.2, 0.3, 0.7])])
    assert summary.final_mean == pytest.approx(0.6) and summary.mmer == pytest.approx(0.8)
    table = format_table([summary])
    assert "MMER" in table.splitlines()[0] and "0.800" in table.splitlines()[2]
    assert "success" not in table  # the task reported none


def test_table_reports_the_success_rate_where_the_task_has_one():
    from sb3_rtrl.cli.compare.report import format_table, summarize
    from sb3_rtrl.cli.compare.worker import RunResult, RunSpec

    def run(learner, seed, success):
        spec = RunSpec(learner, "x:Y", "task", seed, 30, 1, "MlpLstmPolicy")
        return RunResult(spec, points=[(30, 1.0, 0.0, 0.0)], final_mean=0.0, train_seconds=1.0, final_success=success)

    summaries = summarize([run("a", 0, 1.0), run("a", 1, 0.5), run("b", 0, None)])
    assert [s.success for s in summaries] == [0.75, None]
    lines = format_table(summaries).splitlines()
    assert lines[0].split()[-1] == "success" and lines[2].split()[-1] == "75%" and lines[3].split()[-1] == "-"


def test_table_names_the_overrides_beside_the_hyperparameters_source():
    """A ``--set`` value shows on the learner's hyperparameters line, so that a table never reads "defaults" over it."""
    from sb3_rtrl.cli.compare.report import format_table, summarize
    from sb3_rtrl.cli.compare.worker import RunResult, RunSpec

    def run(learner, overrides):
        spec = RunSpec(learner, "x:Y", "task", 0, 30, 1, "MlpLstmPolicy", source="defaults", overrides=overrides)
        return RunResult(spec, points=[(30, 1.0, 0.0, 0.0)], final_mean=0.0, train_seconds=1.0)

    lines = format_table(summarize([run("a", dict(ent_coef=0.0)), run("b", {})])).splitlines()
    assert "hyperparameters of a on task: defaults; --set ent_coef=0.0" in lines
    removed = RunSpec("c", "x:Y", "task", 0, 30, 1, "MlpPolicy", source="f.yml:task", unset=["policy_kwargs.lstm_hidden_size"])
    result = RunResult(removed, points=[(30, 1.0, 0.0, 0.0)], final_mean=0.0, train_seconds=1.0)
    assert (
        "hyperparameters of c on task: f.yml:task; --unset policy_kwargs.lstm_hidden_size"
        in format_table(summarize([result])).splitlines()
    )
    assert "hyperparameters of b on task: defaults" in lines


def test_one_env_builder_serves_every_tool(tmp_path):
    """sb3_rtrl.envs.make_env: gymnasium and POPGym ids, Monitor logs with the recall's success, unknown ids named."""
    from sb3_rtrl.envs import make_env

    env = make_env(DELAYED_RECALL_ID, 2, 0, monitor_dir=str(tmp_path), env_kwargs=dict(delay=2))
    env.reset()
    for _ in range(8):
        env.step(np.zeros(2, dtype=np.int64))
    logged = "".join(path.read_text() for path in tmp_path.glob("*.monitor.csv"))
    assert env.num_envs == 2 and "is_success" in logged
    assert make_env("popgym-RepeatPreviousEasy-v0", 1, 0).num_envs == 1
    with pytest.raises(ValueError, match="unknown environment id 'NoSuchTask-v0'"):
        make_env("NoSuchTask-v0")


def test_env_id_of_a_users_module(tmp_path, monkeypatch):
    """``module:Name-v0`` (gymnasium's form) imports the module, which registers the task; a bad module is named."""
    from sb3_rtrl.envs import make_env

    (tmp_path / "users_tasks_for_test.py").write_text(
        "import gymnasium as gym\ngym.register('UsersCartPole-v0', entry_point='gymnasium.envs.classic_control:CartPoleEnv')\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    env = make_env("users_tasks_for_test:UsersCartPole-v0", 2, 0)
    assert env.num_envs == 2 and env.observation_space.shape == (4,)
    with pytest.raises(ValueError, match="its module 'no_such_module_here' does not import"):
        make_env("no_such_module_here:UsersCartPole-v0")
    with pytest.raises(ValueError, match="unknown environment id 'users_tasks_for_test:NoSuchTask-v0'"):
        make_env("users_tasks_for_test:NoSuchTask-v0")


def test_flattened_popgym_task_gives_the_same_features(monkeypatch):
    """benchmarks/popgym_flat.py: a flattened task feeds a policy what SB3 makes of the raw MultiDiscrete observation."""
    pytest.importorskip("popgym")
    from stable_baselines3.common.preprocessing import preprocess_obs

    from sb3_rtrl.envs import make_env

    monkeypatch.syspath_prepend(os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "benchmarks"))
    raw, flat = make_env("popgym-ConcentrationEasy-v0", 2, 3), make_env("popgym_flat:FlatConcentrationEasy-v0", 2, 3)
    raw_obs, flat_obs = raw.reset(), flat.reset()
    rng = np.random.default_rng(0)
    for _ in range(60):
        features = [
            preprocess_obs(th.as_tensor(obs), env.observation_space).float() for obs, env in ((raw_obs, raw), (flat_obs, flat))
        ]
        assert features[0].shape == (2, 156) and th.equal(*features)
        actions = rng.integers(raw.action_space.n, size=2)
        (raw_obs, raw_rewards, raw_dones, _), (flat_obs, flat_rewards, flat_dones, _) = raw.step(actions), flat.step(actions)
        assert np.array_equal(raw_rewards, flat_rewards) and np.array_equal(raw_dones, flat_dones)


@pytest.fixture
def counted_runs(monkeypatch):
    """The learners of the runs that ran (in order) while the test compares in this process."""
    from sb3_rtrl.cli.compare import runner

    ran: list[str] = []
    real_run_one = runner.run_one

    def counted(spec, *args, **kwargs):
        ran.append(spec.learner)
        return real_run_one(spec, *args, **kwargs)

    monkeypatch.setattr(runner, "run_one", counted)
    return ran


def _quick_compare(out, learners, overrides=(), **options):
    """A comparison of runs of a few dozen steps."""
    overrides = [(None, "n_steps", 4), *overrides]
    if "rtrl_a2c" in learners:
        overrides.append(("rtrl_a2c", "policy_kwargs", dict(hidden_size=4)))
    return compare(
        [DELAYED_RECALL_ID],
        learners,
        32,
        seeds=1,
        out=str(out),
        progress_bar=False,
        n_envs=2,
        eval_every=32,
        eval_episodes=1,
        final_eval_episodes=1,
        overrides=overrides,
        **options,
    )


def test_resume_runs_only_the_runs_not_recorded_for_this_spec_and_code(tmp_path, monkeypatch, capsys, counted_runs):
    """``--resume`` reuses a finished run's record; a changed setting or other code runs again; old records stay."""
    import json

    from sb3_rtrl.cli.compare import records

    ran = counted_runs
    (first,) = _quick_compare(
        tmp_path,
        ["a2c"],
    )
    assert ran == ["a2c"] and len(json.loads((tmp_path / "runs.json").read_text())["runs"]) == 1
    # Resumed with one more learner: only that one runs; the recorded one comes back as it was measured.
    results = _quick_compare(tmp_path, ["a2c", "ppo"], resume=True)
    assert ran == ["a2c", "ppo"]
    assert results[0].points == first.points and results[0].final_mean == first.final_mean
    assert "resuming: 1 of 2 runs are in" in capsys.readouterr().out
    with open(tmp_path / "points.csv") as f:
        assert {row["learner"] for row in csv.DictReader(f)} == {"a2c", "ppo"}
    # A different setting is another run: it runs, and the records of the first two stay in the file.
    _quick_compare(tmp_path, ["a2c"], overrides=[("a2c", "gamma", 0.9)], resume=True)
    assert ran == ["a2c", "ppo", "a2c"]
    assert "2 record(s) there are of other runs or other code" in capsys.readouterr().out
    assert len(records.read_records(str(tmp_path))) == 3
    # Other code: nothing is reused.
    monkeypatch.setattr(records, "code_fingerprint", lambda: {"sb3_rtrl_sources": "other"})
    _quick_compare(tmp_path, ["a2c", "ppo"], resume=True)
    assert ran == ["a2c", "ppo", "a2c", "a2c", "ppo"]
    # Without --resume a comparison starts afresh, its records too.
    _quick_compare(
        tmp_path,
        ["a2c"],
    )
    assert len(records.read_records(str(tmp_path))) == 1


def test_resume_with_runs_in_processes_puts_each_result_in_its_place(tmp_path):
    (first,) = _quick_compare(tmp_path, ["ppo"])
    results = _quick_compare(tmp_path, ["a2c", "ppo", "rtrl_a2c"], resume=True, jobs=2)
    assert [r.spec.learner for r in results] == ["a2c", "ppo", "rtrl_a2c"] and all(r.error is None for r in results)
    # The recorded run, not a second one (whose training seconds would differ).
    assert results[1].points == first.points and results[0].steps_done == results[2].steps_done == 32


def test_a_run_whose_settings_cannot_be_described_is_not_recorded_nor_reused(tmp_path, counted_runs):
    """A function as a setting (here a learning rate) has no description that tells it from another: it runs again."""
    from sb3_rtrl.cli.compare import records

    ran = counted_runs
    lr = [("a2c", "learning_rate", lambda progress: 1e-3)]
    _quick_compare(tmp_path, ["a2c", "ppo"], overrides=lr)
    assert [r["spec"]["learner"] for r in records.read_records(str(tmp_path))] == ["ppo"]
    _quick_compare(tmp_path, ["a2c", "ppo"], overrides=lr, resume=True)
    assert ran == ["a2c", "ppo", "a2c"]
    # A schedule of plain attributes (rl-zoo3's lin_X) is described by them.
    (spec,) = build_specs([DELAYED_RECALL_ID], ["a2c"], 8, [0], overrides=[(None, "learning_rate", parse_value("lin_1e-3"))])
    described = {key: value for key, value in records.describe(spec)["kwargs"]["dict"]}
    assert described["learning_rate"] == {
        "object": "stable_baselines3.common.utils.LinearSchedule",
        "attributes": {"dict": [["end", 0.0], ["end_fraction", 1.0], ["start", 0.001]]},
    }


@pytest.mark.parametrize(
    "content, message",
    [
        ("not json", "cannot be read as a comparison's records"),
        ('{"runs": []}', "is not a comparison's records"),
        ('{"format": "sb3-rtrl compare runs", "version": 9, "runs": []}', "version 9"),
        ('{"format": "sb3-rtrl compare runs", "version": 1, "runs": [{"code": {}, "spec": {}}]}', "run 0: a record must"),
        (
            '{"format": "sb3-rtrl compare runs", "version": 1, "runs": [{"code": {}, "spec": {}, "result": {"points": '
            '[[1, 2, "x", 4]]}}]}',
            "each point must be",
        ),
    ],
)
def test_resume_names_what_is_wrong_with_the_records_file(tmp_path, capsys, content, message):
    (tmp_path / "runs.json").write_text(content)
    argv = ["compare", "--env", DELAYED_RECALL_ID, "--learners", "a2c", "--steps", "8", "--seeds", "1"]
    with pytest.raises(SystemExit) as info:
        main([*argv, "--no-progress-bar", "--out", str(tmp_path), "--resume"])
    err = capsys.readouterr().err
    assert info.value.code == 2 and str(tmp_path / "runs.json") in err and message in err


def test_resume_reads_no_more_than_a_bound(tmp_path, monkeypatch):
    from sb3_rtrl.cli.compare import records

    (tmp_path / "runs.json").write_text(" " * 100)
    monkeypatch.setattr(records, "MAX_BYTES", 50)
    with pytest.raises(ValueError, match="100 bytes, more than"):
        records.read_records(str(tmp_path))


@pytest.mark.parametrize("observation", ["image", "dict"])
def test_image_and_dict_tasks_run_each_learner_with_its_policy_kind(tmp_path, observation):
    """
    Image and Dict observations get the Cnn and MultiInput variants of a learner's Mlp policy, and the greedy
    evaluation sees the images as the algorithm does (SB3 puts channel-last images first for training).
    """
    results = compare(
        [DELAYED_RECALL_ID],
        ["rtrl_ppo", "recurrent_ppo", "ppo"],
        32,
        seeds=1,
        out=str(tmp_path),
        progress_bar=False,
        n_envs=2,
        eval_every=16,
        eval_episodes=1,
        final_eval_episodes=1,
        overrides=[
            (None, "env_kwargs", dict(delay=2, num_cues=3, noise_dims=1, observation=observation)),
            (None, "n_steps", 16),
            (None, "batch_size", 16),
            ("rtrl_ppo", "policy_kwargs", dict(lstm_hidden_size=8)),
            ("recurrent_ppo", "policy_kwargs", dict(lstm_hidden_size=8)),
        ],
    )
    assert [r.error for r in results] == [None] * 3
    assert all(r.steps_done == 32 and len(r.points) == 3 for r in results)


def test_policy_for_picks_the_variant_for_the_observations():
    from gymnasium import spaces

    from sb3_rtrl.cli.compare.worker import policy_for

    image = spaces.Box(0, 255, (36, 36, 1), np.uint8)
    vector = spaces.Box(-1.0, 1.0, (3,), np.float32)
    assert policy_for("MlpLstmPolicy", image) == "CnnLstmPolicy" and policy_for("MlpPolicy", image) == "CnnPolicy"
    assert policy_for("MlpLstmPolicy", spaces.Dict({"x": vector})) == "MultiInputLstmPolicy"
    assert policy_for("MlpLstmPolicy", vector) == "MlpLstmPolicy" and policy_for("CnnLstmPolicy", image) == "CnnLstmPolicy"
