"""The loader benchmark times the training stream in threads and in worker processes."""

import re

import pytest

from experiments import bench_loader


def test_smoke_times_one_thread_and_one_process(capsys):
    bench_loader.main(["--smoke"])
    out = capsys.readouterr().out
    assert "config=smoke batch=4" in out
    rows = re.findall(r"^(threads|processes)\s+1\s+([\d.]+)\s+([\d.]+)x$", out, re.M)
    assert [mode for mode, _, _ in rows] == ["threads", "processes"]
    assert all(float(rate) > 0 for _, rate, _ in rows) and rows[0][2] == "1.00"


def test_nothing_to_time_is_a_usage_error(capsys):
    with pytest.raises(SystemExit) as exit_info:
        bench_loader.main(["--threads", "--processes"])
    assert exit_info.value.code == 2 and "nothing to time" in capsys.readouterr().err


def test_an_unbuilt_dataset_is_one_line_naming_the_build_command(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        bench_loader.main(["--config", "kins", "--data-dir", str(tmp_path)])
    err = capsys.readouterr().err
    assert exit_info.value.code == 2 and "is not built in" in err and "python -m data.kins" in err
