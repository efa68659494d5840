"""Split a sweep's overrides into Optuna's search space, fixed overrides and the per-trial grid.

Searched (Optuna samples one value per trial): ``interval(a, b)`` (float), ``tag(log, ...)``
(log scale), ``tag(int, ...)`` (integers), ``choice(x, y)`` (categorical; the function form).
Grid (every trial runs each combination; its value is their mean): plain lists ``a,b``,
``range(...)``, ``glob(...)``, e.g. ``seed=1,2,3``. Anything else is a fixed override.
A command-line override replaces a ``params`` entry of the same key, so ``optimizer.lr=1e-4``
removes the learning rate from the search.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from typing import Any

from hydra.core.override_parser.types import ChoiceSweep, IntervalSweep, Override, ValueType
from optuna.distributions import (
    BaseDistribution,
    CategoricalDistribution,
    FloatDistribution,
    IntDistribution,
)

GRID_TYPES = (ValueType.SIMPLE_CHOICE_SWEEP, ValueType.RANGE_SWEEP, ValueType.GLOB_CHOICE_SWEEP)
INTERVAL_TAGS = {"log", "int"}


@dataclass
class SweepPlan:
    """What every job of the sweep gets (`fixed`), what Optuna samples (`space`, by parameter
    name; `keys` holds the override key, e.g. ``+task.x``) and the `grid` run within a trial."""

    fixed: list[str] = field(default_factory=list)
    space: dict[str, BaseDistribution] = field(default_factory=dict)
    keys: dict[str, str] = field(default_factory=dict)
    grid: list[list[str]] = field(default_factory=lambda: [[]])

    def trial_overrides(self, params: dict[str, Any]) -> list[str]:
        """The overrides of one trial's sampled `params`, after the fixed ones."""
        return self.fixed + [f"{self.keys[name]}={format_value(v)}" for name, v in params.items()]

    def describe(self) -> str:
        """One line per searched parameter and the grid, for the log."""
        lines = [f"  {name}: {dist}" for name, dist in self.space.items()] or ["  (nothing searched)"]
        if len(self.grid) > 1:
            runs = [" ".join(g) for g in self.grid]
            lines.append(f"  every trial averages over {len(runs)} runs: {runs}")
        return "\n".join(lines)


def format_value(value: Any) -> str:
    """A sampled value as a Hydra override value (strings quoted, so their type survives)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"
    return repr(value)


def distribution(override: Override) -> BaseDistribution:
    """The Optuna distribution of a searched override (see the module docstring)."""
    key, value = override.get_key_element(), override.value()
    if isinstance(value, IntervalSweep):
        unknown = set(value.tags) - INTERVAL_TAGS
        if unknown:
            raise ValueError(f"{key}: unknown interval tags {sorted(unknown)}; use {sorted(INTERVAL_TAGS)}")
        log = "log" in value.tags
        if "int" in value.tags:
            if not (float(value.start).is_integer() and float(value.end).is_integer()):
                raise ValueError(f"{key}: tag(int, interval(a, b)) needs integer bounds")
            return IntDistribution(int(value.start), int(value.end), log=log)
        return FloatDistribution(float(value.start), float(value.end), log=log)
    if isinstance(value, ChoiceSweep):
        if value.tags:
            raise ValueError(f"{key}: tags apply to interval(...) only, not to choice(...)")
        bad = [c for c in value.list if c is not None and not isinstance(c, (bool, int, float, str))]
        if bad:
            raise ValueError(f"{key}: choice(...) values must be scalars, got {bad}")
        return CategoricalDistribution(value.list)
    raise ValueError(f"{key}: {override.input_line!r} is not a search dimension")


def plan_sweep(config_params: list[Override], command_line: list[Override]) -> SweepPlan:
    """The plan of `config_params` (hydra.sweeper.params) overridden by `command_line`."""
    merged: dict[str, Override] = {}
    for override in [*config_params, *command_line]:
        merged[override.key_or_group] = override
    plan = SweepPlan()
    grid_axes: list[list[str]] = []
    for name, override in merged.items():
        key = override.get_key_element()
        if not override.is_sweep_override():
            plan.fixed.append(override.input_line or key)
        elif override.value_type in GRID_TYPES:
            grid_axes.append([f"{key}={v}" for v in override.sweep_string_iterator()])
        else:
            plan.space[name] = distribution(override)
            plan.keys[name] = key
    plan.grid = [list(combo) for combo in itertools.product(*grid_axes)]
    return plan
