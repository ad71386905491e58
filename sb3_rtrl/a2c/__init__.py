"""RTRLA2C, the paper's R2AC: one actor-critic update per rollout with the exact RTRL gradient."""

from sb3_rtrl.a2c.a2c import RTRLA2C, default_ent_coef

__all__ = ["RTRLA2C", "default_ent_coef"]
