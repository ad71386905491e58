"""Features extractors used by the paper."""

from __future__ import annotations

import torch as th
from gymnasium import spaces
from stable_baselines3.common.preprocessing import is_image_space
from stable_baselines3.common.torch_layers import BaseFeaturesExtractor
from torch import nn

from sb3_rtrl.safe_load import register_safe_class


class _ResidualBlock(nn.Module):
    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv0 = nn.Conv2d(channels, channels, 3, padding=1)
        self.conv1 = nn.Conv2d(channels, channels, 3, padding=1)

    def forward(self, x: th.Tensor) -> th.Tensor:
        return x + self.conv1(th.relu(self.conv0(th.relu(x))))


class _ConvSequence(nn.Module):
    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, 3, padding=1)
        self.pool = nn.MaxPool2d(3, stride=2, padding=1)
        self.res0 = _ResidualBlock(out_channels)
        self.res1 = _ResidualBlock(out_channels)

    def forward(self, x: th.Tensor) -> th.Tensor:
        return self.res1(self.res0(self.pool(self.conv(x))))


class ImpalaCNN(BaseFeaturesExtractor):
    """
    The IMPALA ResNet stem (Espeholt et al., 2018) used by the paper: three stages of conv 3x3, max-pool
    3x3 stride 2 and two residual blocks, with 16, 32 and 32 channels, then ReLU, a linear layer and ReLU.

    :param observation_space: an image space (channels first after SB3's transposition)
    :param features_dim: size of the final linear layer (256 in the paper)
    :param channels: channels of the three stages
    :param normalized_image: whether images are already in [0, 1] (SB3's convention)
    """

    def __init__(
        self,
        observation_space: spaces.Box,
        features_dim: int = 256,
        channels: tuple[int, ...] = (16, 32, 32),
        normalized_image: bool = False,
    ) -> None:
        if not is_image_space(observation_space, check_channels=False, normalized_image=normalized_image):
            raise ValueError(f"ImpalaCNN needs an image observation space, got {observation_space}")
        super().__init__(observation_space, features_dim)
        stages, in_channels = [], observation_space.shape[0]
        for out_channels in channels:
            stages.append(_ConvSequence(in_channels, out_channels))
            in_channels = out_channels
        self.stages = nn.Sequential(*stages)
        with th.no_grad():
            n_flatten = self.stages(th.zeros(1, *observation_space.shape)).flatten(1).shape[1]
        self.linear = nn.Linear(n_flatten, features_dim)

    def forward(self, observations: th.Tensor) -> th.Tensor:
        x = th.relu(self.stages(observations)).flatten(1)
        return th.relu(self.linear(x))


register_safe_class(ImpalaCNN)
