"""The dataset build command line (`data.annotations_tfds.build_main`, ``python -m data.kins|cocoa``), on KINS
fixture files: reused builds, user errors in one line, Ctrl-C / SIGTERM and the folders of killed builds."""

import os
import re
import signal

import pytest
from helpers.kins_files import original_file

import data.kins as kins
from data.annotations_tfds import build_main


def test_command_line_reports_a_reused_build_and_user_errors_in_one_line(tmp_path, capsys):
    original_file(tmp_path)
    original_file(tmp_path, "instances_val.json", "testing/image_2")
    (tmp_path / "training/image_2/000008.png").write_bytes(b"")
    argv = ["--manual-dir", str(tmp_path), "--data-dir", str(tmp_path / "tfds"), "--config", "original"]
    with pytest.warns(UserWarning, match="000008.png is empty"):
        build_main(kins, ("update2020", "original"), argv)
    assert "train: left out image 8: " in capsys.readouterr().out
    build_main(kins, ("update2020", "original"), argv)  # reused: the image is still named, and how to rebuild
    out = capsys.readouterr().out
    assert "train: left out image 8: " in out and re.search(r"reused; delete .*original/1\.0\.0 to build it again", out)
    (tmp_path / "instances_train.json").write_text('{"images": [')
    (tmp_path / "a_file").write_text("")
    for bad, match in ((argv[:1] + [str(tmp_path / "nowhere")] + argv[2:], "is not a folder"),
                       (argv[:3] + [str(tmp_path / "tfds2")] + argv[4:], r"instances_train\.json: malformed JSON"),
                       (argv[:3] + [str(tmp_path / "a_file")] + argv[4:], r"--data-dir .*a_file is not a folder")):
        with pytest.raises(SystemExit) as stop:
            build_main(kins, ("update2020", "original"), bad)
        assert stop.value.code == 2 and re.search(match, capsys.readouterr().err)


def test_a_terminated_build_leaves_no_unfinished_folder_and_killed_ones_are_named(tmp_path, monkeypatch, capsys):
    from data.kins.dataset_builder import Kins

    original_file(tmp_path)
    original_file(tmp_path, "instances_val.json", "testing/image_2")
    argv = ["--manual-dir", str(tmp_path), "--data-dir", str(tmp_path / "tfds"), "--config", "original"]
    killed = tmp_path / "tfds/kins/original/incomplete.QX81ZT_1.0.0"  # what a SIGKILL leaves
    (killed / "kins-train.array_record-00000-of-00001").parent.mkdir(parents=True)
    (killed / "kins-train.array_record-00000-of-00001").write_bytes(b"x" * 2**20)
    monkeypatch.setattr(Kins, "read", lambda self, paths, skipped: os.kill(os.getpid(), signal.SIGTERM))
    with pytest.warns(UserWarning, match=r"incomplete\.QX81ZT_1\.0\.0 \(1\.0 MiB\) is what a killed build left"):
        with pytest.raises(SystemExit) as stop:
            build_main(kins, ("update2020", "original"), argv)
    assert stop.value.code == 128 + signal.SIGTERM and "terminated (SIGTERM)" in capsys.readouterr().err
    assert sorted(p.name for p in (tmp_path / "tfds/kins/original").iterdir()) == [killed.name]  # ours is gone
    assert getattr(signal.getsignal(signal.SIGTERM), "__name__", None) != "_terminate"  # the handler is put back
