"""The examples in ``__main__`` modules run too: pytest's doctest collection skips ``__main__.py`` files."""

import doctest
import importlib

import pytest


@pytest.mark.parametrize("module", ["torchrl_grasp.benchmark.__main__", "torchrl_grasp.world_models.__main__"])
def test_examples_of_main_modules_pass(module):
    result = doctest.testmod(importlib.import_module(module), optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0 and result.failed == 0, result
