"""Shared pytest fixtures. This folder is on sys.path (pytest's rootdir conftest), so tests import the
helper modules of ``tests/helpers/`` as ``helpers.*``; no test imports another test file."""

import warnings

import pytest


@pytest.fixture(scope="session")
def cocoa_build(tmp_path_factory):
    """A COCOA tfds build (default ``classes`` config, train and validation splits of 3 tiny images) from the
    fixture annotation files of ``helpers.cocoa_files``; returns its data_dir."""
    import data.cocoa as cocoa
    from data.annotations_order import OcclusionCycleWarning, OrderDisagreementWarning
    from helpers.cocoa_files import prepare

    manual = tmp_path_factory.mktemp("cocoa_manual")
    prepare(manual, with_regions=True)
    data_dir = tmp_path_factory.mktemp("cocoa_tfds")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", OcclusionCycleWarning)
        warnings.simplefilter("ignore", OrderDisagreementWarning)
        cocoa.builder(data_dir, manual_dir=manual).download_and_prepare()
    return str(data_dir)
