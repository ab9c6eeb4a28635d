"""Smoke run of experiments/bench_maxflow.py: a row per input, every move's cut equal across the three methods."""

from experiments import bench_maxflow


def test_bench_maxflow_smoke():
    table = bench_maxflow.main(["--smoke"])
    lines = table.strip().splitlines()
    assert [line.split("|")[1].strip() for line in lines[2:]] == ["gt", "noisy", "adversarial",
                                                                  "predicted, shipped views"]
    assert all(float(line.split("|")[4]) >= 1 for line in lines[2:])  # every image took at least one move
