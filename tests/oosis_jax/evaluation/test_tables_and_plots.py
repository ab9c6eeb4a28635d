"""Report tables (`oosis_jax.evaluation.tables`) and the curves' plots (`results.plot_curves`, `oair`)."""

import numpy as np
import pytest
from matplotlib.figure import Figure

from oosis_jax.evaluation import oair, results, tables


def test_markdown_refuses_ragged_rows_and_escapes_pipes():
    with pytest.raises(ValueError, match=r"row 1 \['b'\] has 1 cells, the header 2"):
        tables.markdown(("name", "value"), [["a", 1.0], ["b"]])
    text = tables.markdown(("name", "a|b"), [["x | y", 2.0]])
    assert text.splitlines()[0] == "| name | a\\|b |" and text.splitlines()[2] == "| x \\| y | 2.0 |"


def test_held_out_header_says_the_first_number_is_predicted():
    header = tables.HELD_OUT_HEADERS[-1]
    assert header == "predicted (GT) instances / scene"
    result = {"num_pred_instances": 141, "num_gt_instances": 83, "num_images": 10, "weighted_coverage": 0.5,
              "oair_iou": {"recall": [0.5], "accuracy": [0.5]}, "mask": {"mAP": 0.1}, "boundaries": None}
    assert dict(zip(tables.HELD_OUT_HEADERS, tables.held_out_row(result)))[header] == "14.1 (8.3)"


@pytest.fixture
def figures(monkeypatch):
    """The matplotlib figures saved while a test runs."""
    saved, save = [], Figure.savefig

    def spy(self, *args, **kwargs):
        saved.append(self)
        return save(self, *args, **kwargs)

    monkeypatch.setattr(Figure, "savefig", spy)
    return saved


def _curve(recall, accuracy, key="min_score"):
    return {key: list(np.linspace(0, 1, len(recall))), "recall": recall, "accuracy": accuracy}


def _results(confidence_points: int, with_boundaries: bool = True, num_images: int = 4) -> dict:
    line = {"recall": [0.0, 0.5, 1.0], "precision": [1.0, 0.8, 0.5], "AP": 0.7}
    return {"num_images": num_images, "oair_iou": _curve([0.5, 0.4], [0.9, 0.8], "iou_threshold"),
            "oair_confidence": _curve([0.5] * confidence_points, [0.9] * confidence_points),
            "boundaries": {"oriented": line, "plain": line} if with_boundaries else None}


def test_boundary_curves_of_one_model_share_its_colour(tmp_path, figures):
    results.plot_curves({"a": _results(6), "b": _results(6)}, tmp_path)
    lines = figures[-1].axes[0].get_lines()
    colours = {line.get_label(): line.get_color() for line in lines}
    assert colours["a oriented (AP 70.0)"] == colours["a plain (AP 70.0)"]
    assert colours["b oriented (AP 70.0)"] == colours["b plain (AP 70.0)"] != colours["a plain (AP 70.0)"]
    assert {line.get_linestyle() for line in lines if "oriented" in line.get_label()} == {"-"}
    assert {line.get_linestyle() for line in lines if "plain" in line.get_label()} == {"--"}


@pytest.mark.parametrize("counts, words", [((6, 6), "(6 thresholds)"), ((1,), "(1 threshold)"),
                                           ((1, 6), "(1-6 thresholds per model)")])
def test_confidence_plot_counts_its_thresholds(tmp_path, figures, counts, words):
    # the title said "6 thresholds" also when predictions without scores had one
    results.plot_curves({f"m{i}": _results(n, False) for i, n in enumerate(counts)}, tmp_path)
    assert figures[1].axes[0].get_title() == f"OAIR, minimum confidence {words}; 4 images"


def test_every_plot_says_how_many_images_it_evaluates(tmp_path, figures):
    results.plot_curves({"a": _results(6, num_images=40), "b": _results(6, num_images=3)}, tmp_path)
    titles = [figure.axes[0].get_title() for figure in figures[-3:]]
    assert all(title.endswith("; 3-40 images per model") for title in titles), titles
    assert titles[2].startswith("Occlusion boundaries: oriented (POR) and plain (PR)")


def test_a_curve_with_nothing_to_draw_says_why(tmp_path, figures):
    nan = float("nan")
    oair.plot_oair_curves({"drawn": _curve([0.5, 0.2], [0.9, 0.7]), "empty": _curve([nan, nan], [nan, nan]),
                           "missed": _curve([0.0, 0.0], [nan, nan])}, tmp_path / "oair.png")
    labels = [text.get_text() for text in figures[-1].axes[0].get_legend().get_texts()]
    assert labels == ["drawn", "empty (no GT pairs)", "missed (no pair recovered)"]
    oair.plot_oair_curves({"drawn": _curve([0.5, 0.2], [0.9, 0.7])}, tmp_path / "oair.png", first="IoU 0.5")
    axes = figures[-1].axes[0]
    dots = [line for line in axes.get_lines() if line.get_markersize() == 7 and len(line.get_xdata())]
    assert [(d.get_xdata()[0], d.get_ydata()[0]) for d in dots] == [(0.5, 0.9)]  # the first threshold's point
    assert [t.get_text() for t in axes.get_legend().get_texts()] == ["drawn", "large dot: IoU 0.5"]


def test_strict_json_writes_undefined_metrics_as_null():
    import json

    import numpy as np

    from oosis_jax.evaluation import tables

    value = {"WC": float("nan"), "AP": np.float64("inf"), "curve": np.array([0.5, np.nan]),
             "rows": [(1, np.float32(0.25))], "n": np.int64(3)}
    text = tables.strict_json(value)
    assert "NaN" not in text and "Infinity" not in text
    assert json.loads(text) == {"WC": None, "AP": None, "curve": [0.5, None], "rows": [[1, 0.25]], "n": 3}


def test_plot_curves_without_results_is_a_clear_error(tmp_path):
    with pytest.raises(ValueError, match="no results to plot"):
        results.plot_curves({}, tmp_path)


def test_an_undefined_number_reads_n_a_in_a_table():
    assert tables.markdown(["a", "b"], [[float("nan"), 1.25]]).splitlines()[-1] == "| n/a | 1.2 |"
