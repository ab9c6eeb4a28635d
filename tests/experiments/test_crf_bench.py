"""Smoke run of experiments/bench_crf.py: both tables are printed, and every move's flow equals PyMaxflow's."""

import time

import numpy as np

from crf.move_graph import jump_move_graph
from experiments import bench_crf


def test_smoke_tables(capsys):
    speed, behaviour = bench_crf.main(["--smoke"])
    out = capsys.readouterr()
    assert "['" not in out.out + out.err  # no raw Python lists before the tables
    progress = [line for line in out.err.splitlines() if line.startswith("speed: ")]
    assert [line.split(", ")[:2] for line in progress] == [["speed: size = 60x160", "inputs = gt"],
                                                           ["speed: size = 60x160", "inputs = noisy"]]
    assert "equal flows = " in progress[0] and out.out.lstrip().startswith("## CRF speed")
    headers = [cell.strip() for cell in speed.strip().splitlines()[0].split("|")[1:-1]]
    assert headers[5:8] == ["PyMaxflow build+solve ms/move", "(PyMaxflow solve only ms/move)",
                            "ours / PyMaxflow build+solve"]
    speed_rows = [line.split("|")[1:-1] for line in speed.strip().splitlines()[2:]]
    assert [row[1].strip() for row in speed_rows] == ["gt", "noisy"]
    for row in speed_rows:
        agree, moves = row[11].strip().split("/")
        assert agree == moves and int(moves) >= 1
        assert float(row[3]) > 0 and float(row[5]) >= float(row[6]) > 0
    behaviour_rows = [line.split("|")[1:-1] for line in behaviour.strip().splitlines()[2:]]
    assert [row[0].strip() for row in behaviour_rows] == ["jump_moves", "expansion_moves"]
    for row in behaviour_rows:
        assert 0.0 <= float(row[5]) <= 100.0  # weighted coverage in %


def test_pymaxflow_times_exclude_our_capacities(monkeypatch):
    """PyMaxflow's input, our numpy capacities (``jump_move_graph``), is built outside its timing; its solve alone
    is part of its build and solve."""
    def slow_graph(*args, **kwargs):
        time.sleep(0.2)
        return jump_move_graph(*args, **kwargs)

    monkeypatch.setattr(bench_crf, "jump_move_graph", slow_graph)
    sigma, occ = bench_crf._inputs(0, 24, 32, "noisy")
    ours, theirs, solves, agree, visited = bench_crf.time_moves(sigma, occ)
    assert len(ours) == len(theirs) == len(solves) == len(visited) == agree >= 2
    assert theirs.max() < 0.2 and np.all(solves <= theirs)


def test_scaling_rows_are_reported_as_named_cells(monkeypatch, capsys):
    monkeypatch.setattr(bench_crf.crf.batch, "usable_cores", lambda: 1)  # one process only: no workers to start
    rows = bench_crf.scaling_rows(2, 24, 32)
    out = capsys.readouterr()
    assert len(rows) == 1 and out.out == "" and "['" not in out.err
    assert out.err.startswith("solve_many: images = 2, size = 24x32, workers = 1 process, wall s = ")
