"""Smoke run of experiments/bench_maxflow.py: a row per input, every move's cut equal across the three methods."""

from experiments import bench_maxflow


def test_bench_maxflow_smoke():
    table = bench_maxflow.main(["--smoke"])
    lines = table.strip().splitlines()
    assert [line.split("|")[1].strip() for line in lines[2:]] == ["gt", "noisy", "adversarial",
                                                                  "predicted, shipped views"]
    for cells in (line.split("|")[1:-1] for line in lines[2:]):
        images, per_image, all_moves = int(cells[2]), float(cells[3]), int(cells[4].split("/")[1])
        assert per_image >= 1 and all_moves == round(images * per_image)  # every image took at least one move


def test_counts_say_their_unit():
    """The "moves" column is per image; "handed over" and "BK's cut found" count every move of the row's images."""
    assert bench_maxflow.HEADERS[3] == "moves/image"
    assert bench_maxflow.HEADERS[4] == "handed over (all moves)"
    assert bench_maxflow.HEADERS[11].startswith("BK's cut found (all moves)")
