"""rl-zoo3 runs RTRLA2C and RTRLPPO with its own train and enjoy scripts (extra ``zoo``)."""

import subprocess
import sys

import pytest

from sb3_rtrl import RTRLA2C, RTRLPPO
from sb3_rtrl.policies import DEFAULT_CELL

pytest.importorskip("rl_zoo3")


def zoo(*args, cwd):
    result = subprocess.run(
        [sys.executable, "-m", "sb3_rtrl.cli.zoo", *args], cwd=cwd, capture_output=True, text=True, timeout=600
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return result.stdout


# The shipped rtrl_a2c entry uses the RTU, the rtrl_ppo entry (RecurrentPPO's own) the default cell; the zoo's
# --hyperparams switch the rtrl_a2c entry to the eLSTM.
CASES = [
    ("rtrl_a2c", [], "rtu"),
    ("rtrl_ppo", [], DEFAULT_CELL),
    ("rtrl_a2c", ["--hyperparams", "policy_kwargs:dict(hidden_size=16, cell='elstm')"], "elstm"),
]


@pytest.mark.parametrize("algo, extra, cell", CASES, ids=["rtrl_a2c-rtu", "rtrl_ppo", "rtrl_a2c-elstm"])
def test_zoo_train_and_enjoy(tmp_path, algo, extra, cell):
    out = zoo(
        "train", "--algo", algo, "--env", "CartPoleNoVel-v1", "-n", "512", "-f", "logs", "--seed", "0", *extra, cwd=tmp_path
    )
    assert f"zoo/hyperparams/{algo}.yml" in out
    run_dir = tmp_path / "logs" / algo / "CartPoleNoVel-v1_1"
    assert (run_dir / "CartPoleNoVel-v1.zip").is_file()
    # The trained model has the cell the zoo entry (or --hyperparams) asked for.
    algorithm = RTRLA2C if algo == "rtrl_a2c" else RTRLPPO
    assert algorithm.load(run_dir / "CartPoleNoVel-v1.zip").policy.cell_name == cell
    out = zoo(
        "enjoy",
        "--algo",
        algo,
        "--env",
        "CartPoleNoVel-v1",
        "-f",
        "logs",
        "--exp-id",
        "1",
        "--no-render",
        "-n",
        "200",
        cwd=tmp_path,
    )
    assert "Mean reward" in out or "Episode Reward" in out


def test_zoo_usage_error():
    result = subprocess.run([sys.executable, "-m", "sb3_rtrl.cli.zoo", "fly"], capture_output=True, text=True)
    assert result.returncode != 0 and "usage: python -m sb3_rtrl.cli.zoo" in result.stderr
