"""crf.energy (Eq. 8) against a direct pixel-by-pixel evaluation."""

import numpy as np
import pytest

from crf import energy
from helpers.crf_problems import brute_energy, random_occ

@pytest.mark.parametrize("shape", [(1, 1), (1, 6), (6, 1), (3, 4), (5, 5)])
def test_energy_matches_brute_force(shape):
    rng = np.random.default_rng(shape[0] * 10 + shape[1])
    for k in range(30):
        labels = rng.integers(0, 4, shape)
        sigma = rng.random(shape)
        occ = random_occ(rng, labels, feasible=k % 3 != 0)
        lam, mu = rng.choice([0.0, 1.0, 20.0]), rng.choice([0.0, 3.0, 100.0])
        expected = brute_energy(labels, sigma, occ, lam, mu)
        assert energy(labels, sigma, occ, lam, mu) == pytest.approx(expected, rel=1e-12, abs=1e-12)


def test_violated_pair_is_infinite_and_activated_pair_rewarded():
    sigma = np.array([[0.2, 0.2]])
    occ = np.zeros((1, 2, 4), bool)
    occ[0, 0, 1] = True  # the left pixel occludes the right one
    assert energy(np.array([[0, 1]]), sigma, occ) == np.inf
    assert energy(np.array([[2, 1]]), sigma, occ) == pytest.approx(0.2 + 0.2 + 20 - 100)
    assert energy(np.array([[1, 1]]), sigma, occ) == pytest.approx(0.4)


@pytest.mark.parametrize("labels, sigma, occ, message", [
    (np.zeros((2, 2)), np.zeros((2, 2)), np.zeros((2, 2, 4), bool), "integer"),
    (-np.ones((2, 2), int), np.zeros((2, 2)), np.zeros((2, 2, 4), bool), ">= 0"),
    (np.zeros((2, 3), int), np.zeros((2, 2)), np.zeros((2, 2, 4), bool), "shape"),
    (np.zeros((2, 2), int), np.full((2, 2), np.nan), np.zeros((2, 2, 4), bool), "NaN"),
    (np.zeros((2, 2), int), np.full((2, 2), 1.5), np.zeros((2, 2, 4), bool), r"\[0, 1\]"),
    (np.zeros((2, 2), int), np.zeros((2, 2)), np.zeros((2, 2, 3), bool), "shape"),
    (np.zeros((2, 2), int), np.zeros((2, 2)), np.zeros((2, 2, 4), int), "bool"),
    (np.zeros((2, 2), int), np.zeros((2, 2)), np.ones((2, 2, 4), bool), "outside"),
    (np.zeros((0, 2), int), np.zeros((0, 2)), np.zeros((0, 2, 4), bool), "shape"),
])
def test_bad_inputs_raise(labels, sigma, occ, message):
    with pytest.raises(ValueError, match=message):
        energy(labels, sigma, occ)
