"""Smoke run of experiments/bench_crf.py: both tables are printed, and every move's flow equals PyMaxflow's."""

from experiments import bench_crf


def test_smoke_tables():
    speed, behaviour = bench_crf.main(["--smoke"])
    speed_rows = [line.split("|")[1:-1] for line in speed.strip().splitlines()[2:]]
    assert [row[1].strip() for row in speed_rows] == ["gt", "noisy"]
    for row in speed_rows:
        agree, moves = row[10].strip().split("/")
        assert agree == moves and int(moves) >= 1
        assert float(row[3]) > 0 and float(row[5]) > 0
    behaviour_rows = [line.split("|")[1:-1] for line in behaviour.strip().splitlines()[2:]]
    assert [row[0].strip() for row in behaviour_rows] == ["jump_moves", "expansion_moves"]
    for row in behaviour_rows:
        assert 0.0 <= float(row[5]) <= 100.0  # weighted coverage in %
