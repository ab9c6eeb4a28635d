"""The benchmark and rendering scripts refuse counts that cannot run, before any work, and spell every flag
``--like-this`` (a zero used to end in ZeroDivisionError, UnboundLocalError or "nan img/s")."""

import pytest

from experiments import bench_crf, bench_loader, bench_maxflow, bench_solve, bench_synthetic, bench_train, render_scenes


@pytest.mark.parametrize("script, args", [
    (bench_crf, ["--scenes", "0"]), (bench_crf, ["--behaviour-scenes", "0"]), (bench_crf, ["--scaling", "-1"]),
    (bench_maxflow, ["--scenes", "0"]), (bench_maxflow, ["--predicted-scenes", "0"]),
    (bench_solve, ["--scenes", "0"]), (bench_solve, ["--repeats", "0"]),
    (bench_synthetic, ["--scenes", "0"]), (bench_synthetic, ["--num", "0"]),
    (bench_train, ["--steps", "0"]), (bench_train, ["--batch-sizes", "8", "0"]), (bench_train, ["--train-size", "0"]),
    (bench_loader, ["--threads", "0"]), (bench_loader, ["--processes", "2", "0"]),
    (bench_loader, ["--batch-size", "0"]),
    (render_scenes, ["--num", "0"]), (render_scenes, ["--first-seed", "-1"]),
])
def test_impossible_counts_are_usage_errors(script, args, capsys):
    with pytest.raises(SystemExit) as exit_info:
        script.main(args)
    assert exit_info.value.code == 2 and "must be >= " in capsys.readouterr().err


@pytest.mark.parametrize("script, args, message", [
    (bench_crf, ["--sizes", "0x10"], "each side must be >= 8, got 0x10"),
    (bench_crf, ["--adversarial", "0x0"], "each side must be >= 8"),
    (bench_crf, ["--behaviour-size", "4x4"], "each side must be >= 8"),
    (bench_solve, ["--size", "4x4"], "each side must be >= 8"), (bench_solve, ["--size", "x"], "expected HxW"),
    (bench_maxflow, ["--synthetic", "4x4"], "each side must be >= 8"),
    (bench_maxflow, ["--predicted", "abc"], "expected HxW"),
    (bench_solve, ["--figure", "/nonexistent/dir/x.png"], "the folder /nonexistent/dir does not exist"),
    (bench_train, ["--no-inference", "--batch-sizes"], "nothing to time"),
])
def test_sizes_outputs_and_empty_runs_are_usage_errors_before_any_work(script, args, message, capsys):
    """Sizes below a scene's smallest side were tracebacks (ValueError, IndexError) and a figure into a missing
    folder failed after the whole run; a run timing nothing exited 0."""
    with pytest.raises(SystemExit) as exit_info:
        script.main(args)
    assert exit_info.value.code == 2 and message in capsys.readouterr().err


@pytest.mark.parametrize("script, old", [(bench_train, "--no_inference"), (bench_train, "--batch_sizes"),
                                         (render_scenes, "--first_seed")])
def test_flags_have_one_spelling(script, old, capsys):
    with pytest.raises(SystemExit):
        script.main([old])
    assert f"unrecognized arguments: {old}" in capsys.readouterr().err


@pytest.mark.parametrize("script, args", [
    (bench_train, ["--model", "resnet50"]), (bench_train, ["--steps", "20"]), (bench_train, ["--train-size", "225"]),
    (bench_train, ["--infer-size", "615", "2048"]), (bench_train, ["--batch-sizes", "8"]),
    (bench_crf, ["--sizes", "615x2048"]), (bench_crf, ["--scenes", "3"]), (bench_crf, ["--large"]),
    (bench_crf, ["--scaling", "24"]), (bench_maxflow, ["--synthetic", "615x2048"]),
    (bench_maxflow, ["--views", "2x"]), (bench_maxflow, ["--predicted-scenes", "2"]),
    (bench_loader, ["--threads", "1"]), (bench_loader, ["--config", "synthetic_long"]),
    (bench_solve, ["--scenes", "2"]), (bench_solve, ["--size", "48x64"])])
def test_smoke_refuses_the_flags_it_would_override(script, args, capsys):
    """``--smoke`` sets the model, sizes and repeats itself: one given with it (even at its default value) is
    refused, not silently replaced."""
    with pytest.raises(SystemExit) as exit_info:
        script.main(["--smoke", *args])
    err = capsys.readouterr().err
    assert exit_info.value.code == 2 and f"{args[0]}" in err and "does not apply with --smoke" in err
