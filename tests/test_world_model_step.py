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
