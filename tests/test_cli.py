"""The sb3-rtrl command line: train (short), plot, copy, check, and its errors."""

import subprocess
import sys

import pytest
from stable_baselines3.common.logger import configure

from sb3_rtrl import RTRLA2C
from sb3_rtrl.cli import main


def test_train_short_run_writes_table_png_and_models(tmp_path, capsys):
    main(
        [
            "train",
            "--steps",
            "3000",
            "--n-envs",
            "4",
            "--delay",
            "5",
            "--eval-episodes",
            "10",
            "--out",
            str(tmp_path),
            "--no-progress-bar",
        ]
    )
    out = capsys.readouterr().out
    assert "rtrl_a2c" in out and "tbptt_a2c" in out and "success" in out
    # a preset of compare: its table, CSV and curves, beside the training curves and the models
    assert (tmp_path / "table.txt").is_file() and (tmp_path / "points.csv").is_file() and (tmp_path / "curves.png").is_file()
    assert (tmp_path / "learning_curve.png").stat().st_size > 1000
    assert (tmp_path / "rtrl" / "model.zip").is_file() and (tmp_path / "tbptt" / "model.zip").is_file()
    # The recall task trains the network of its shipped config: the paper's heads, forget gates at 0.95.
    policy = RTRLA2C.load(tmp_path / "rtrl" / "model.zip").policy
    assert not policy.skip_connection and policy.net_arch == [] and policy.forget_bias == 3.0 and policy.init_std == 0.1


def test_train_refuses_unknown_or_repeated_gradients(tmp_path):
    from sb3_rtrl.cli.train import run

    for gradients in ((), ("rtrl", "rtrl"), ("bptt",)):
        with pytest.raises(ValueError, match="gradients must be"):
            run("CartPole-v1", steps=64, out=str(tmp_path), gradients=gradients, progress_bar=False)


def test_train_on_other_tasks_uses_the_default_network(tmp_path):
    from sb3_rtrl.cli.train import run

    run("CartPole-v1", steps=64, n_envs=2, out=str(tmp_path), gradients=("rtrl",), eval_episodes=1, progress_bar=False)
    policy = RTRLA2C.load(tmp_path / "rtrl" / "model.zip").policy
    assert policy.skip_connection and policy.net_arch == dict(pi=[64, 64], vf=[64, 64])
    assert policy.cell_name == "mixed_gated_v4" and policy.cell.elstm.forget_bias == (0.0, 6.0)
    assert (policy.cell.elstm_width, policy.cell.rtu_width, policy.cell.gated_width) == (20, 4, 8)
    assert policy.cell.gated_read_norm


def test_plot_monitor_and_progress_logs(tmp_path):
    model = RTRLA2C("MlpLstmPolicy", "sb3_rtrl/DelayedRecall-v0", n_steps=4, policy_kwargs=dict(hidden_size=8))
    model.set_logger(configure(str(tmp_path / "progress_run"), ["csv"]))
    model.learn(2000, log_interval=1)
    main(
        [
            "train",
            "--steps",
            "800",
            "--n-envs",
            "2",
            "--delay",
            "3",
            "--eval-episodes",
            "2",
            "--out",
            str(tmp_path / "t"),
            "--gradients",
            "rtrl",
            "--no-progress-bar",
        ]
    )
    png = tmp_path / "curves.png"
    main(["plot", f"monitor={tmp_path / 't' / 'rtrl'}", str(tmp_path / "progress_run"), "--out", str(png), "--window", "5"])
    assert png.stat().st_size > 1000


def test_copy_passes_its_options(monkeypatch, capsys):
    import sb3_rtrl.cli.copy_task as copy_task

    seen = {}
    real = copy_task.train_copy_task

    def spy(**kwargs):
        seen.update(kwargs)
        return real(**kwargs)

    monkeypatch.setattr(copy_task, "train_copy_task", spy)
    main(
        [
            "copy",
            "--max-length",
            "3",
            "--hidden-size",
            "16",
            "--batch-size",
            "4",
            "--max-tokens",
            "50",
            "--forget-bias",
            "-1.5",
            "--max-grad-norm",
            "2.0",
            "--curriculum",
            "--learning-rate",
            "0.01",
            "--falling-rate",
        ]
    )
    assert seen["forget_bias"] == -1.5 and seen["max_grad_norm"] == 2.0 and seen["curriculum"] is True
    assert seen["learning_rate"](2) == pytest.approx(0.01) and seen["learning_rate"](20) == pytest.approx(0.001)
    assert seen["max_length"] == 3 and seen["hidden_size"] == 16 and seen["batch_size"] == 4
    assert "sequence accuracy" in capsys.readouterr().out
    main(
        [
            "copy",
            "--max-length",
            "3",
            "--hidden-size",
            "16",
            "--batch-size",
            "4",
            "--max-tokens",
            "20",
            "--no-falling-rate",
            "--max-grad-norm",
            "0",
            "--no-curriculum",
        ]
    )
    assert seen["learning_rate"] == 0.01 and seen["max_grad_norm"] is None and seen["curriculum"] is False
    for bad in (["--learning-rate", "-1"], ["--learning-rate", "-1", "--no-falling-rate"], ["--max-grad-norm", "-2"]):
        with pytest.raises(SystemExit) as err:
            main(["copy", "--max-tokens", "5", *bad])
        assert err.value.code == 2


def test_cli_errors():
    with pytest.raises(SystemExit) as err:
        main(["train", "--env", "NoSuchEnv-v9"])
    assert err.value.code == 2
    with pytest.raises(SystemExit) as err:
        main(["train", "--steps", "0"])
    assert err.value.code == 2
    with pytest.raises(SystemExit) as err:
        main(["plot", "/nonexistent/run"])
    assert err.value.code == 2


def test_train_exits_1_when_a_run_fails(tmp_path, capsys):
    with pytest.raises(SystemExit) as err:
        main(["train", "--steps", "64", "--learning-rate", "-1", "--jobs", "1", "--out", str(tmp_path), "--no-progress-bar"])
    assert err.value.code == 1
    assert "FAILED rtrl_a2c" in capsys.readouterr().out


def test_python_dash_m_and_check():
    result = subprocess.run([sys.executable, "-m", "sb3_rtrl", "check"], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    errors = [float(line.split()[-1]) for line in result.stdout.splitlines() if "relative error" in line]
    assert len(errors) == 10 and max(errors) < 1e-10


def test_tensorboard_receives_rtrl_figures(tmp_path):
    pytest.importorskip("tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    model = RTRLA2C(
        "MlpLstmPolicy",
        "sb3_rtrl/DelayedRecall-v0",
        n_steps=4,
        policy_kwargs=dict(hidden_size=8),
        tensorboard_log=str(tmp_path),
    )
    model.learn(400, log_interval=1, tb_log_name="run")
    runs = list(tmp_path.iterdir())
    assert len(runs) == 1
    events = EventAccumulator(str(runs[0]))
    events.Reload()
    tags = set(events.Tags()["scalars"])
    assert {"train/rtrl_sensitivity_rms", "train/rtrl_cell_state_rms", "train/policy_loss"} <= tags, tags
    values = [e.value for e in events.Scalars("train/rtrl_sensitivity_rms")]
    assert values and max(values) > 0
