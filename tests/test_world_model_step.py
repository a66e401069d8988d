"""WorldModelStep: the direct call of a plain TensorDictModule and the TensorDict path agree."""

import torch
from tensordict.nn import TensorDictModule

from torchrl_grasp.world_models.step import WorldModelStep


class TwoStateModel(torch.nn.Module):
    def forward(self, position, velocity, action):
        return position + 0.1 * velocity, 0.9 * velocity + torch.tanh(action)


def _module(**kwargs):
    keys = [("agent", "position"), "velocity"]
    return TensorDictModule(TwoStateModel(), in_keys=[*keys, "action"], out_keys=keys, **kwargs), keys


def test_direct_call_matches_the_tensordict_path_in_value_and_gradient():
    module, keys = _module()
    direct = WorldModelStep(module, keys, "action")
    assert direct.direct is not None
    through_td = WorldModelStep(module, keys, "action")
    through_td.direct = None
    states = [torch.randn(5, 3), torch.randn(5, 3)]
    action = torch.randn(5, 3, requires_grad=True)
    results = []
    for step in (direct, through_td):
        out = step(states, action)
        (grad,) = torch.autograd.grad(sum(x.square().sum() for x in out), [action])
        results.append((out, grad))
    (out_a, grad_a), (out_b, grad_b) = results
    for a, b in zip(out_a, out_b):
        torch.testing.assert_close(a, b)
    torch.testing.assert_close(grad_a, grad_b)


def test_modules_that_do_more_than_call_take_the_tensordict_path():
    module, keys = _module()
    assert WorldModelStep(module, list(reversed(keys)), "action").direct is None  # keys in another order
    module.register_forward_hook(lambda *args: None)
    assert WorldModelStep(module, keys, "action").direct is None  # a hook must run


class RewardingModel(torch.nn.Module):
    def forward(self, x, action):
        next_x = x + action
        return next_x, -next_x.square().sum(-1, keepdim=True)


def test_a_model_that_also_writes_the_reward_is_called_directly_and_agrees_with_the_tensordict_path():
    module = TensorDictModule(RewardingModel(), in_keys=["x", "action"], out_keys=["x", "reward"])
    direct = WorldModelStep(module, ["x"], "action", reward_key="reward")
    assert direct.direct is not None and direct.direct_extras == ["reward"]
    through_td = WorldModelStep(module, ["x"], "action", reward_key="reward")
    through_td.direct = None
    start, actions = torch.randn(4, 2), torch.randn(4, 6, 2)
    (states_a, rewards_a, *_), (states_b, rewards_b, *_) = (
        step.rollout([start], actions, with_reward=True) for step in (direct, through_td)
    )
    torch.testing.assert_close(states_a[0], states_b[0])
    torch.testing.assert_close(rewards_a, rewards_b)
    torch.testing.assert_close(direct([start], actions[:, 0])[0], start + actions[:, 0])  # no reward asked
    # Without a reward_key, a module that writes more than the state keeps the TensorDict path.
    assert WorldModelStep(module, ["x"], "action").direct is None
