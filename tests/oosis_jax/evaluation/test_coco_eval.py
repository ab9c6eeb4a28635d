"""Mask mAP through pycocotools from instance maps."""

import numpy as np
import pytest

from oosis_jax.evaluation import coco_map as coco_eval


def scene(shift=0):
    """A 40x40 map with three square instances (classes 1, 1, 2), optionally shifted right."""
    inst = np.zeros((40, 40), np.int32)
    inst[2:12, 2 + shift:12 + shift] = 1
    inst[20:36, 4 + shift:20 + shift] = 2
    inst[5:25, 24 + shift:36 + shift] = 3
    return dict(instance_map=inst, classes=np.array([1, 1, 2]), edges=np.zeros((0, 2), int),
                scores=np.array([0.9, 0.8, 0.7]))


def test_perfect_prediction_scores_one():
    result = coco_eval.mask_map([scene(), scene()], [scene(), scene()])
    assert result == {"mAP": pytest.approx(1.0), "AP50": pytest.approx(1.0), "AP75": pytest.approx(1.0)}


def test_shifted_prediction_scores_known_lower_value():
    # Shift by 2 px: IoUs are 8/12 = 0.667 (square 1), 14/18 = 0.778 (square 2), 10/14 = 0.714 (square 3).
    # Each is a true positive exactly at the 10 IoU thresholds <= its IoU: 4, 6 and 5 of 0.5:0.05:0.95.
    # Class 1 has two GT; its AP at a threshold is 1 when both match; at 0.7 and 0.75 only square 2 (ranked
    # second by score) matches: precision 1/2 at recall 1/2, so 101-point interpolation gives 0.5 * 51/101.
    result = coco_eval.mask_map([scene(shift=2)], [scene()])
    half = 0.5 * 51 / 101
    ap_class1 = (4 * 1.0 + 2 * half) / 10
    ap_class2 = 5 / 10
    assert result["mAP"] == pytest.approx((ap_class1 + ap_class2) / 2, abs=1e-6)
    assert result["AP50"] == pytest.approx(1.0) and result["AP75"] == pytest.approx(half / 2)


def test_rle_counts_are_str_and_empty_prediction():
    rles = coco_eval.encode_masks(scene()["instance_map"], 3)
    assert len(rles) == 3 and all(isinstance(r["counts"], str) for r in rles)
    empty = dict(scene(), instance_map=np.zeros((40, 40), np.int32))
    assert coco_eval.mask_map([empty], [scene()])["mAP"] == 0.0


def test_bad_inputs_raise():
    with pytest.raises(ValueError, match="differ in shape"):
        coco_eval.mask_map([dict(scene(), instance_map=np.zeros((40, 41), np.int32))], [scene()])
    undefined = coco_eval.mask_map([scene()], [dict(scene(), instance_map=np.zeros((40, 40), np.int32))])
    assert all(np.isnan(v) for v in undefined.values())  # no ground-truth instance: AP is undefined
    with pytest.raises(ValueError, match="2 predictions but 1"):
        coco_eval.mask_map([scene(), scene()], [scene()])
    with pytest.raises(ValueError, match="finite"):
        coco_eval.mask_map([dict(scene(), scores=np.array([np.nan, 1, 1]))], [scene()])


@pytest.mark.parametrize("shape", [(1, 1), (1, 9), (9, 1), (7, 5), (40, 33)])
def test_rles_are_pycocotools_own_from_runs_without_a_stack_of_masks(shape):
    """Against `pycocotools.mask.encode` of each full mask: ids without pixels, runs across columns, an
    instance at the first or last pixel, one instance over the whole image."""
    from pycocotools import mask as mask_utils

    rng = np.random.default_rng(shape[0] * 100 + shape[1])
    maps = [rng.integers(0, 6, shape), np.ones(shape, np.int32), np.zeros(shape, np.int32),
            np.repeat(rng.integers(0, 4, (1, shape[1])), shape[0], axis=0)]
    for inst in maps:
        num = 6  # ids 1..6: some without pixels in every map
        expected = mask_utils.encode(np.asfortranarray(np.stack([inst == k for k in range(1, num + 1)], -1)
                                                       .astype(np.uint8)))
        got = coco_eval.encode_masks(inst.astype(np.int32), num)
        assert [r["counts"] for r in got] == [r["counts"].decode("ascii") for r in expected]
        assert all(r["size"] == list(shape) for r in got)
        np.testing.assert_array_equal(mask_utils.area(got), [(inst == k).sum() for k in range(1, num + 1)])


def test_thousands_of_instances_at_kins_size_take_no_stack_of_masks():
    """2000 instances of a 375x1242 map, each a row segment (so 160 runs down the columns), as an untrained
    network gives thousands: a stack of their masks would take 0.9 GB (at 2048x615, 6000 took 23 GB)."""
    import tracemalloc

    inst = np.arange(375 * 1242, dtype=np.int32).reshape(375, 1242) // 160 % 2000 + 1
    tracemalloc.start()
    rles = coco_eval.encode_masks(inst, 2000)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert len(rles) == 2000 and peak < 50e6
    assert rles[0]["counts"] == coco_eval.encode_masks((inst == 1).astype(np.int32), 1)[0]["counts"]
