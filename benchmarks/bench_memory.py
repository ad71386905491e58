"""
Learner peak memory against episode length: RTRL's does not grow, full-episode BPTT's does.

Each case runs in a fresh process and reports the growth of its peak resident memory (ru_maxrss) over
what it held after building the model:
- RTRL: RTRLA2C and RTRLPPO (hidden 256, 8 envs, n_steps 16; RTRLPPO with batch_size 128 and its 10
  epochs) trained on the delayed-recall task with episodes of 100 and of 10,000 steps, for 1.5 episodes of
  the long task (exact gradients through whole episodes);
- full-episode BPTT: the same policy's forward and backward over one whole episode (T = 100, 10,000)
  with gradient="tbptt" from the episode start (what an exact BPTT learner must hold).

    OMP_NUM_THREADS=1 python benchmarks/bench_memory.py
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import resource


def _peak_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def _rtrl_case(algo: str, episode: int, steps: int, hidden: int, queue) -> None:
    import torch as th

    th.set_num_threads(1)
    from stable_baselines3.common.env_util import make_vec_env

    from sb3_rtrl import RTRLA2C, RTRLPPO
    from sb3_rtrl.envs import DELAYED_RECALL_ID

    env = make_vec_env(DELAYED_RECALL_ID, n_envs=8, seed=0, env_kwargs=dict(delay=episode - 1))
    kwargs = dict(policy_kwargs=dict(hidden_size=hidden), seed=0)
    if algo == "ppo":
        model = RTRLPPO("MlpLstmPolicy", env, n_steps=16, batch_size=128, **kwargs)
    else:
        model = RTRLA2C("MlpLstmPolicy", env, n_steps=16, **kwargs)
    model.learn(8 * 16)
    before = _peak_mib()
    model.learn(steps, reset_num_timesteps=False)
    queue.put((before, _peak_mib()))


def _bptt_case(episode: int, hidden: int, queue) -> None:
    import torch as th

    th.set_num_threads(1)
    from stable_baselines3.common.env_util import make_vec_env

    from sb3_rtrl import RTRLA2C
    from sb3_rtrl.envs import DELAYED_RECALL_ID
    from sb3_rtrl.rtrl import initial_state

    env = make_vec_env(DELAYED_RECALL_ID, n_envs=8, seed=0, env_kwargs=dict(delay=episode - 1))
    policy = RTRLA2C("MlpLstmPolicy", env, n_steps=16, policy_kwargs=dict(hidden_size=hidden), seed=0).policy
    obs_dim = env.observation_space.shape[0]
    obs = th.randn(episode * 8, obs_dim)
    actions = th.randint(0, 2, (episode * 8,))
    starts = th.zeros(episode, 8, dtype=th.bool)
    starts[0] = True
    state = initial_state(policy.cell, 8)
    before = _peak_mib()
    values, log_prob, _, _ = policy.evaluate_segment(obs, actions, starts, state, gradient="tbptt")
    (values.sum() + log_prob.sum()).backward()
    queue.put((before, _peak_mib()))


def measure(target, *args) -> tuple[float, float]:
    """Peak resident memory (MiB) of a fresh process running ``target``: after setup, and overall."""
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    proc = ctx.Process(target=target, args=(*args, queue))
    proc.start()
    before, peak = queue.get()
    proc.join()
    return before, peak


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--short", type=int, default=100)
    parser.add_argument("--long", type=int, default=10_000)
    parser.add_argument("--hidden", type=int, default=256)
    args = parser.parse_args()
    steps = int(1.5 * args.long) * 8
    rows = {}
    cases = (
        ("RTRL (RTRLA2C training)", _rtrl_case, ("a2c",), (steps,)),
        ("RTRL (RTRLPPO training)", _rtrl_case, ("ppo",), (steps,)),
        ("full-episode BPTT", _bptt_case, (), ()),
    )
    for name, target, first, extra in cases:
        rows[name] = [measure(target, *first, episode, *extra, args.hidden) for episode in (args.short, args.long)]
    print(f"learner peak memory (MiB), hidden {args.hidden}, 8 envs, episodes of {args.short} and {args.long} steps")
    print(f"  {'':<26} {'peak ' + str(args.short):>10} {'peak ' + str(args.long):>11} {'ratio':>6}   growth during the run")
    for name, ((b_short, p_short), (b_long, p_long)) in rows.items():
        print(
            f"  {name:<26} {p_short:10.1f} {p_long:11.1f} {p_long / p_short:6.3f}   "
            f"{p_short - b_short:.1f} and {p_long - b_long:.1f}"
        )


if __name__ == "__main__":
    main()
