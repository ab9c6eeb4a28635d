"""Sec. 5.1 direct training: order-label targets, reading a label map as instances, and a smoke run."""

import numpy as np
import pytest

from experiments import direct_training


def _chain():
    """Instances 1 | 2 | 3 side by side: 3 occludes 2, 2 occludes 1; instance 4 alone."""
    inst = np.zeros((4, 8), np.int32)
    inst[:2, 0:2], inst[:2, 2:4], inst[:2, 4:6], inst[3, 6:8] = 1, 2, 3, 4
    return inst, np.array([[3, 2], [2, 1]])


def test_instance_order_labels_follow_sec_5_1_and_clip():
    inst, edges = _chain()
    np.testing.assert_array_equal(direct_training.instance_order_labels(inst, edges), [1, 2, 3, 1])
    np.testing.assert_array_equal(direct_training.instance_order_labels(inst, edges, max_label=2), [1, 2, 2, 1])


def test_order_label_source_replaces_classes_only():
    inst, edges = _chain()
    example = {"image": np.zeros((4, 8, 3), np.uint8), "instance_map": inst, "edges": edges,
               "classes": np.array([5, 5, 5, 5], np.int32)}
    source = direct_training.OrderLabelExamples([example])
    assert len(source) == 1
    out = source[0]
    np.testing.assert_array_equal(out["classes"], [1, 2, 3, 1])
    assert out["instance_map"] is inst and example["classes"].tolist() == [5, 5, 5, 5]
    with pytest.raises(ValueError, match="max_label"):
        direct_training.OrderLabelExamples([example], max_label=0)


def test_label_map_becomes_instances_with_order():
    labels = np.array([[0, 1, 1, 2, 2],
                       [0, 1, 1, 2, 2]])
    probabilities = np.eye(direct_training.MAX_LABEL + 1)[labels] * 0.9 + 0.01
    pred = direct_training.labels_to_prediction(probabilities)
    assert pred.instance_map.max() == 2
    np.testing.assert_array_equal(pred.classes, [1, 1])
    # the label-2 component occludes the label-1 component
    a, b = pred.instance_map[0, 3], pred.instance_map[0, 1]
    assert pred.edges.tolist() == [[a, b]]
    np.testing.assert_allclose(pred.scores, [0.91, 0.91])


def test_smoke_run_writes_table_and_depth_maps(tmp_path):
    out = direct_training.main(["--smoke", "--out", str(tmp_path)])
    assert list(out["results"]) == [direct_training.DIRECT_ROW]
    results = out["results"][direct_training.DIRECT_ROW]
    assert results["num_images"] == 4 and 0.0 <= results["weighted_coverage"] <= 1.0
    assert "Direct training" in (tmp_path / "results.md").read_text()
    assert (tmp_path / "depth_maps.png").stat().st_size > 0
