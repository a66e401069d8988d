"""Small world models the tests share (pytest puts this folder on ``sys.path``)."""

import torch
from torch import nn


class CatMLP(nn.Module):
    """``s + 0.1 * MLP(cat(s, a))``: the most common MLP world model, two-dimensional actions."""

    def __init__(self, dim: int = 4):
        super().__init__()
        torch.manual_seed(0)
        self.net = nn.Sequential(nn.Linear(dim + 2, 32), nn.Tanh(), nn.Linear(32, dim))

    def forward(self, state, action):
        return state + 0.1 * self.net(torch.cat([state, action], dim=-1))


class RewardingCatMLP(CatMLP):
    """``CatMLP``'s next state, and the reward ``-|s' - 0.3|^2`` of it."""

    def forward(self, state, action):
        next_state = super().forward(state, action)
        return next_state, -(next_state - 0.3).square().sum(-1, keepdim=True)


class PointMass(nn.Module):
    """``s + 0.1 * a``: a goal is reached in a straight line."""

    def forward(self, state, action):
        return state + 0.1 * action
