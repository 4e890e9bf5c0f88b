"""Anonymous connection budgets (backend.connection_budget), as a state machine."""

from __future__ import annotations

from collections.abc import Callable

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from backend.connection_budget import ConnectionBudget, Refusal

KEYS = st.sampled_from(["a", "b", "c"])


class BudgetMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.budget = ConnectionBudget(per_address=3, total=5)
        self.held: list[tuple[str, Callable[[], None]]] = []

    @rule(key=KEYS)
    def take(self, key: str) -> None:
        mine = sum(1 for k, _ in self.held if k == key)
        result = self.budget.take(key)
        if mine >= 3:
            assert result is Refusal.ADDRESS
        elif len(self.held) >= 5:
            assert result is Refusal.TOTAL
        else:
            assert not isinstance(result, Refusal)
            self.held.append((key, result))

    @rule(index=st.integers(min_value=0, max_value=10), twice=st.booleans())
    def release(self, index: int, twice: bool) -> None:
        if not self.held:
            return
        _, release = self.held.pop(index % len(self.held))
        release()
        if twice:
            release()  # a second release (connection_lost after a handler) changes nothing

    @invariant()
    def counts_match(self) -> None:
        assert self.budget.held == len(self.held)
        for key in ("a", "b", "c"):
            assert self.budget.held_by(key) == sum(1 for k, _ in self.held if k == key)


TestConnectionBudget = BudgetMachine.TestCase
TestConnectionBudget.settings = settings(max_examples=50, stateful_step_count=30)
