"""Forward-pass counting and budgets (``core.models.passes``), on a tiny wrapped model."""

from __future__ import annotations

import time

import pytest
import torch

from interp_agent.core.models.loading import tiny_model
from interp_agent.core.models.passes import BudgetExhausted, budget, forward_passes


@pytest.fixture(scope="module")
def model(one_torch_thread):
    return tiny_model().model


def test_every_sequence_of_a_forward_pass_and_of_each_generation_step_counts(model) -> None:
    ids = torch.randint(0, 50, (3, 5))
    before = forward_passes()
    with torch.no_grad():
        model(input_ids=ids)
        model(ids)  # positional input_ids count the same
    assert forward_passes() - before == 6
    before = forward_passes()
    with torch.no_grad():
        model.generate(ids, attention_mask=torch.ones_like(ids), max_new_tokens=4, do_sample=False, pad_token_id=0)
    steps = (forward_passes() - before) / 3
    assert steps == int(steps) and steps >= 3  # each step of the batch of 3 counts 3


def test_a_pass_budget_stops_at_the_next_pass_once_spent_and_only_inside_its_block(model) -> None:
    ids = torch.randint(0, 50, (4, 5))
    done = 0
    with pytest.raises(BudgetExhausted, match="10 forward passes"), budget(max_passes=10), torch.no_grad():
        for _ in range(10):
            model(input_ids=ids)
            done += 1
    assert done == 3  # 4 + 4 + 4 passes run (the third reached the budget); the fourth is refused
    with torch.no_grad():
        model(input_ids=ids)  # outside the block nothing is refused


def test_a_time_budget_refuses_passes_after_its_deadline(model) -> None:
    ids = torch.randint(0, 50, (1, 5))
    with pytest.raises(BudgetExhausted, match="time budget"), budget(max_seconds=0.05), torch.no_grad():
        model(input_ids=ids)
        time.sleep(0.06)
        model(input_ids=ids)


def test_nested_budgets_each_hold(model) -> None:
    ids = torch.randint(0, 50, (2, 5))
    with budget(max_passes=100), pytest.raises(BudgetExhausted, match="2 forward passes"), budget(max_passes=2):
        with torch.no_grad():
            model(input_ids=ids)
            model(input_ids=ids)
