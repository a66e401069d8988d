"""``make demo``: the fused collocation loss steering a point mass to a goal.

A stand-in main job until the planner lands: virtual states and actions of a
point mass ``s' = s + a`` are optimised together with the stop-gradient
collocation loss, and the true rollout of the actions is checked against the goal.
"""

from __future__ import annotations

import torch

from torchrl_grasp.ops import collocation_loss


def main(horizon: int = 20, steps: int = 300, max_action: float = 0.1) -> float:
    """Plans ``horizon`` steps from the origin to ``(1, 1)``; returns the rollout's miss distance."""
    start, goal = torch.zeros(2), torch.ones(2)
    fraction = torch.linspace(0, 1, horizon + 1)[1:-1, None]
    virtual_states = (start + fraction * (goal - start)).requires_grad_()
    actions = torch.zeros(horizon, 2, requires_grad=True)
    optimizer = torch.optim.Adam([{"params": [virtual_states], "lr": 0.01}, {"params": [actions], "lr": 0.01}])
    for step in range(steps):
        states = torch.cat([start[None], virtual_states.detach()])  # stop-gradient on the state input
        pred = states + actions
        next_states = torch.cat([virtual_states, goal[None]])
        loss = collocation_loss(pred, next_states, goal, goal_weight=0.1)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        with torch.no_grad():
            actions.clamp_(-max_action, max_action)  # bounded actions rule out a one-step jump
        if step % 100 == 0:
            print(f"step {step:4d}  collocation loss {loss.item():.5f}")
    miss = (start + actions.detach().sum(0) - goal).norm().item()
    print(f"true rollout ends {miss:.4f} from the goal after {steps} steps")
    return miss


if __name__ == "__main__":
    main()
