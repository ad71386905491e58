"""rl-zoo3 runs RTRLA2C and RTRLPPO with its own train and enjoy scripts (extra ``zoo``)."""

import subprocess
import sys

import pytest

pytest.importorskip("rl_zoo3")


def zoo(*args, cwd):
    result = subprocess.run([sys.executable, "-m", "sb3_rtrl.zoo", *args], cwd=cwd, capture_output=True, text=True,
                            timeout=600)  # fmt: skip
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return result.stdout


@pytest.mark.parametrize("algo, extra", [("rtrl_a2c", []), ("rtrl_ppo", []),
                                         ("rtrl_a2c", ["--hyperparams", "policy_kwargs:dict(hidden_size=16, cell='rtu')"])],
                         ids=["rtrl_a2c", "rtrl_ppo", "rtrl_a2c-rtu"])  # fmt: skip
def test_zoo_train_and_enjoy(tmp_path, algo, extra):
    out = zoo("train", "--algo", algo, "--env", "CartPoleNoVel-v1", "-n", "512", "-f", "logs", "--seed", "0", *extra,
              cwd=tmp_path)  # fmt: skip
    assert f"zoo/hyperparams/{algo}.yml" in out
    run_dir = tmp_path / "logs" / algo / "CartPoleNoVel-v1_1"
    assert (run_dir / "CartPoleNoVel-v1.zip").is_file()
    if extra:  # the zoo's --hyperparams reach the policy: the saved config names the RTU
        assert "cell: rtu" in (run_dir / "CartPoleNoVel-v1" / "config.yml").read_text()
    out = zoo("enjoy", "--algo", algo, "--env", "CartPoleNoVel-v1", "-f", "logs", "--exp-id", "1", "--no-render",
              "-n", "200", cwd=tmp_path)  # fmt: skip
    assert "Mean reward" in out or "Episode Reward" in out


def test_zoo_usage_error():
    result = subprocess.run([sys.executable, "-m", "sb3_rtrl.zoo", "fly"], capture_output=True, text=True)
    assert result.returncode != 0 and "usage: python -m sb3_rtrl.zoo" in result.stderr
