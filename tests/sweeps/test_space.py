"""Sweep overrides -> Optuna search space, fixed overrides and the per-trial grid."""

from __future__ import annotations

import pytest
from hydra.core.override_parser.overrides_parser import OverridesParser
from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

from hydra_plugins.plantbimoe_optuna_sweeper._space import format_value, plan_sweep

PARSER = OverridesParser.create()


def _plan(params: dict[str, str], command_line: list[str]):
    from_config = PARSER.parse_overrides([f"{k}={v}" for k, v in params.items()])
    return plan_sweep(from_config, PARSER.parse_overrides(command_line))


def test_functions_are_searched_plain_lists_are_a_grid_and_the_rest_is_fixed() -> None:
    plan = _plan(
        {
            "optimizer.lr": "tag(log, interval(1e-5, 1e-3))",
            "data.batch_size": "choice(8, 16)",
            "task.dropout": "interval(0, 0.3)",
            "+task.width": "tag(int, interval(8, 64))",
        },
        ["data/mpgb=core_promoter", "seed=1,2", "task.rc_eval=range(0,2)"],
    )
    assert plan.space == {
        "optimizer.lr": FloatDistribution(1e-5, 1e-3, log=True),
        "data.batch_size": CategoricalDistribution([8, 16]),
        "task.dropout": FloatDistribution(0.0, 0.3),
        "task.width": IntDistribution(8, 64),
    }
    assert plan.keys["task.width"] == "+task.width"
    assert plan.fixed == ["data/mpgb=core_promoter"]
    assert plan.grid == [["seed=1", "task.rc_eval=0"], ["seed=1", "task.rc_eval=1"],
                         ["seed=2", "task.rc_eval=0"], ["seed=2", "task.rc_eval=1"]]
    overrides = plan.trial_overrides({"optimizer.lr": 1e-4, "task.width": 16})
    assert overrides == ["data/mpgb=core_promoter", "optimizer.lr=0.0001", "+task.width=16"]


def test_a_fixed_command_line_value_takes_a_parameter_out_of_the_search() -> None:
    params = {"optimizer.lr": "interval(1e-5, 1e-3)", "task.dropout": "interval(0, 0.3)"}
    plan = _plan(params, ["optimizer.lr=3e-4"])
    assert list(plan.space) == ["task.dropout"] and plan.fixed == ["optimizer.lr=3e-4"] and plan.grid == [[]]


@pytest.mark.parametrize(
    ("value", "message"),
    [("tag(cube, interval(1, 2))", "unknown interval tags"), ("tag(int, interval(1.5, 4))", "integer bounds"),
     ("tag(log, choice(1, 2))", "tags apply to interval")],
)
def test_bad_search_dimensions_are_named(value: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        _plan({"task.x": value}, [])


@pytest.mark.parametrize("value", [None, True, False, 3, 2.5e-05, "adamw", "it's a/b"])
def test_sampled_values_survive_the_override_parser(value) -> None:
    (override,) = PARSER.parse_overrides([f"x={format_value(value)}"])
    assert override.value() == value and type(override.value()) is type(value)
