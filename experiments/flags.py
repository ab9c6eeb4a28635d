"""Command-line flags shared by the prediction and evaluation entry points."""

from __future__ import annotations

import argparse


def add_source_arguments(parser: argparse.ArgumentParser) -> None:
    """``--checkpoint`` | ``--gt`` (exactly one), and the dataset split they read (``data.loading``)."""
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--checkpoint", help="training workdir to restore the network from")
    source.add_argument("--gt", action="store_true", help="feed the CRF with ground truth (Tab. 4 / Fig. 10)")
    parser.add_argument("--split", default="test")
    parser.add_argument("--dataset-config", nargs="*", default=[], metavar="KEY=VALUE",
                        help="builder config, e.g. num_train=0 num_validation=0 num_test=50")
    parser.add_argument("--data-dir", default="~/tensorflow_datasets")
    parser.add_argument("--out", required=True, help="output folder")


def add_crf_arguments(parser: argparse.ArgumentParser) -> None:
    """The CRF minimiser, its worker processes and the tiling of the forward pass."""
    parser.add_argument("--method", default="solve", choices=("solve", "jump", "expansion"),
                        help="CRF minimiser: solve (default, crf.solve), jump (the paper's jump moves), expansion")
    parser.add_argument("--processes", type=int, default=None, help="CRF worker processes (default: all cores)")
    parser.add_argument("--tile-size", type=int, default=512, help="larger images are predicted in tiles")
    parser.add_argument("--tile-overlap", type=int, default=64, help="pixels shared by neighbouring tiles")
