"""data.examples: a split's examples decoded only when read (bounded memory over a whole split)."""

import numpy as np
import pytest

from data import examples
from data.synthetic import make_scene

TINY = dict(num_train=1, num_validation=3, num_test=1, min_height=16, max_height=24, min_width=16, max_width=32)


class _CountingSource:
    def __init__(self, items):
        self.items, self.reads = items, 0

    def __len__(self):
        return len(self.items)

    def __getitem__(self, i):
        self.reads += 1
        return self.items[i]


def test_examples_decode_on_read_and_resize():
    scenes = [make_scene(k, 12, 20) for k in range(4)]
    source = _CountingSource(scenes)
    lazy = examples.Examples(source, 3, (6, 10))
    assert len(lazy) == 3 and source.reads == 0
    first = lazy[0]
    assert source.reads == 1 and first["image"].shape == (6, 10, 3) and first["instance_map"].shape == (6, 10)
    np.testing.assert_array_equal(lazy[-1]["instance_map"], lazy[2]["instance_map"])
    assert [x["image"].shape for x in lazy[1:]] == [(6, 10, 3)] * 2
    assert len(list(lazy)) == 3  # iteration stops at count, not at the source's end
    with pytest.raises(IndexError, match="example 3 of 3"):
        lazy[3]


def test_split_examples_match_load_examples(tmp_path):
    lazy = examples.split_examples("synthetic", "validation", tmp_path, 2, **TINY)
    loaded = examples.load_examples("synthetic", "validation", tmp_path, 5, **TINY)
    assert len(lazy) == 2 and len(loaded) == 3
    for a, b in zip(lazy, loaded):
        assert a["image_id"] == b["image_id"]
        np.testing.assert_array_equal(a["image"], b["image"])
    for bad in (0, -1, True, 2.0):
        with pytest.raises(ValueError, match="limit must be a positive number"):
            examples.split_examples("synthetic", "validation", tmp_path, bad, **TINY)


def test_the_progress_bar_ends_full_when_the_last_examples_cannot_be_read(capsys):
    class Source:
        def __len__(self):
            return 3

        def __getitem__(self, i):
            if i == 2:
                raise ValueError("example 2 cannot be read")
            return {"image_id": i}

    failures = []
    assert [x["image_id"] for x in examples.progress(examples.readable(Source(), failures), 3, failures, "t")] == [0, 1]
    assert failures == [(2, "example 2 cannot be read")] and "t: 100%" in capsys.readouterr().err


def test_a_setting_named_like_the_folder_argument_is_refused_for_every_dataset(tmp_path):
    from data import loading

    for name in ("synthetic", "kins", "cocoa"):  # kins, cocoa: a TypeError of their builders before
        with pytest.raises(ValueError, match="has no setting 'data_dir': the tfds folder is the data_dir argument"):
            loading.load(name, "test", tmp_path, data_dir="/x")
