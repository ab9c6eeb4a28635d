"""gpu_check.sh's training plan: the largest batch at which the recipe fits the stage, else fewer steps."""

import pytest

from experiments import gpu_plan


@pytest.mark.parametrize("rate, seconds, expected", [
    (1000.0, 300.0, (32, 3000)),  # 0.5 * 1000 img/s * (300 - 70) s = 115000 images >= 3000 * 32
    (450.0, 300.0, (16, 3000)),   # 51750: 3000 * 16 fits, 3000 * 32 does not
    (220.0, 300.0, (8, 3000)),    # 25300 >= 3000 * 8
    (200.0, 300.0, (8, 2800)),    # 23000: 2875 steps of 8, in hundreds
    (100.0, 120.0, (8, 300)),     # 2500 images
    (1.0, 60.0, (8, 100)),        # the stage is all start-up: the least plan
])
def test_plan_fits_the_recipe_or_shortens_it(rate, seconds, expected):
    assert gpu_plan.plan(rate, seconds, 3000) == expected


def test_smoke_writes_the_plan_for_the_shell(tmp_path):
    out = tmp_path / "plan.env"
    gpu_plan.main(["--train-seconds", "100", "--out", str(out), "--smoke", "--loader-processes", "0"])
    values = dict(line.split("=") for line in out.read_text().splitlines())
    assert values["BATCH"] == "2" and values["STEPS"] == "6" and int(values["RATE"]) > 0 and int(values["THREADS"]) >= 1
