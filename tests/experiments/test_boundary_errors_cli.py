"""``experiments.boundary_errors``: the pixel table and the ground-truth repairs of the shipped model's boundaries."""

import json

from experiments import boundary_errors
from oosis_jax.inference import boundary_errors as errors


def test_repairs_table_instances_and_states_the_network_boundaries_once(tmp_path):
    # the repairs change the CRF's input, not the b and e maps, whose APs the table used to repeat in every row
    boundary_errors.main(["--scenes", "1", "--processes", "1", "--out", str(tmp_path)])
    rows = json.loads((tmp_path / "rows.json").read_text())["oracle"]
    assert list(rows) == list(errors.REPAIRS)
    assert all("boundary AP" not in row and "WC" in row for row in rows.values())
    table = (tmp_path / "table.md").read_text()
    assert table.count("The network's b and e maps (every row's): boundary AP ") == 1
    assert (tmp_path / "boundaries.png").stat().st_size > 0
