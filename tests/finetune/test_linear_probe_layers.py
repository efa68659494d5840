"""`+probe_layers=...` of `python -m tasks.linear_probe`: which layers it names, and the error that
names the option on a bad value."""

from __future__ import annotations

import pytest
from omegaconf import OmegaConf

from tasks.linear_probe import probe_layers


def test_probe_layers_reads_all_a_list_and_unset() -> None:
    assert probe_layers(None, 4) == ["final"]
    assert probe_layers("all", 4) == [0, 1, 2, 3, "final"]
    assert probe_layers(OmegaConf.create([1, 3, "final"]), 4) == [1, 3, "final"]
    assert probe_layers(2, 4) == [2]


@pytest.mark.parametrize("spec", ["4", "middle", [0, 7]])
def test_a_layer_the_backbone_lacks_names_the_option(spec: object) -> None:
    with pytest.raises(ValueError, match=r"probe_layers=.*expected 0\.\.3, 'final' or 'all'"):
        probe_layers(spec, 4)
