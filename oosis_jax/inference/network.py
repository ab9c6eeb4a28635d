"""Stage 1 at inference: full-resolution head probabilities of the network, tiled for large images.

`head_probabilities` runs the network on one uint8 (H, W, 3) image at its full resolution; images larger than
``tile_size`` in a dimension are covered by overlapping tiles of a fixed size (one compilation), whose
probabilities are averaged with weights that fall off linearly towards each tile's inner edges, so seams get
no hard steps. `oosis_jax.inference.predictor.Predictor` batches it and chains it with stage 2.
"""

from __future__ import annotations

import jax
import numpy as np
from flax import nnx
from jax.sharding import Mesh, NamedSharding
from jax.sharding import PartitionSpec as P

from oosis_jax.models import normalize_images, probabilities
from oosis_jax.models.outputs import PAD_COLOR

TILE_SIZE = 512
TILE_OVERLAP = 64
PAD_MULTIPLE = 64  # images are padded to multiples of this, so few input shapes get compiled


def padded_shape(height: int, width: int) -> tuple[int, int]:
    """``(height, width)`` rounded up to multiples of ``PAD_MULTIPLE`` (the shape the network runs on)."""
    return tuple(-(-n // PAD_MULTIPLE) * PAD_MULTIPLE for n in (height, width))


def padded_batch(count: int, batch_size: int) -> int:
    """The batch a network call of ``count`` (1..batch_size) same-shape images runs at: the next power of two,
    at most ``batch_size`` (so few batch sizes get compiled). Eval-mode images do not interact, so the blank
    images that fill the batch change no result."""
    if not 1 <= count <= batch_size:
        raise ValueError(f"count must be in 1..{batch_size}, got {count}")
    return min(batch_size, 1 << (count - 1).bit_length())


@nnx.jit
def forward(model, normalized):
    """Jitted network heads ``(s, b, e)`` of normalised images ``float32 (B, H, W, 3)`` (eval mode)."""
    probs = probabilities(model(normalized, train=False))
    return probs["s"], probs["b"], probs["e"]


def local_mesh() -> Mesh | None:
    """A 1-D ``data`` mesh over this process's devices, which a batch's network call is split over (each
    device computes its share of the images); None with one device."""
    devices = jax.local_devices()
    return Mesh(np.array(devices), ("data",)) if len(devices) > 1 else None


def replicated(model, mesh: Mesh):
    """A new module with every array of ``model`` copied to each device of ``mesh`` (``model`` unchanged)."""
    graphdef, state = nnx.split(model)
    with jax.set_mesh(mesh):  # not a caller's (e.g. one of Explicit axes, which would refuse these Auto ones)
        return nnx.merge(graphdef, jax.device_put(state, NamedSharding(mesh, P())))


def batch_heads(model, padded: np.ndarray, mesh: Mesh | None = None) -> tuple[np.ndarray, ...]:
    """``(s, b, e)`` numpy float32 of the uint8 images ``padded`` (B, H, W, 3) by `forward`. With ``mesh``
    (``model`` `replicated` on it, B a multiple of its size) the batch is split over its devices; eval-mode
    images do not interact, so each image's heads are those of a one-device call (to float rounding). The call
    runs under ``mesh``, whatever mesh the caller has set (one of Explicit axes refuses arrays of Auto ones)."""
    normalized = normalize_images(padded)
    if mesh is None:
        return jax.device_get(forward(model, normalized))
    with jax.set_mesh(mesh):
        return jax.device_get(forward(model, jax.device_put(normalized, NamedSharding(mesh, P("data")))))


def check_tiles(tile_size, tile_overlap) -> None:
    """``ValueError`` unless ``tile_size`` is an int >= ``PAD_MULTIPLE`` and ``tile_overlap`` an int in
    [0, tile_size // 2]. Images are padded to multiples of ``PAD_MULTIPLE`` before they are tiled, so a smaller tile
    would only multiply the network calls (a 1x1 image in 1-pixel tiles: 4096 calls, 15 minutes); so would an
    overlap near the tile size (tile 64, overlap 63: about 8400 calls for a 120x130 image, 8 minutes), while with
    at most half a tile each tile brings at least half a tile of new pixels."""
    for name, value in (("tile_size", tile_size), ("tile_overlap", tile_overlap)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
            raise ValueError(f"{name} must be an integer, got {value!r}")
    if tile_size < PAD_MULTIPLE:
        raise ValueError(f"tile size {tile_size} must be >= {PAD_MULTIPLE}: images are padded to multiples of "
                         f"{PAD_MULTIPLE} before they are tiled")
    if not 0 <= tile_overlap <= tile_size // 2:
        raise ValueError(f"tile overlap {tile_overlap} must lie in [0, {tile_size // 2}], half the tile size "
                         f"{tile_size}: each tile must bring at least half a tile of new pixels")


def tile_starts(length: int, tile: int, overlap: int) -> list[int]:
    """Start offsets of tiles of size ``tile`` covering ``0..length`` with at least ``overlap`` shared pixels.

    The last tile ends exactly at ``length``; a single tile at 0 when ``length <= tile``.
    """
    if length <= tile:
        return [0]
    check_tiles(tile, overlap)
    count = int(np.ceil((length - overlap) / (tile - overlap)))
    return [int(round(s)) for s in np.linspace(0, length - tile, count)]


def _ramp(length: int, overlap: int, first: bool, last: bool) -> np.ndarray:
    """1-D blending weights of a tile: linear ramps over ``overlap`` pixels at inner edges, floor 1e-3."""
    w = np.ones(length, np.float32)
    ramp = np.linspace(1e-3, 1.0, max(overlap, 1), dtype=np.float32)
    if not first:
        w[:len(ramp)] = np.minimum(w[:len(ramp)], ramp)
    if not last:
        w[-len(ramp):] = np.minimum(w[-len(ramp):], ramp[::-1])
    return w


def tiled_probabilities(forward, image, tile_size: int = TILE_SIZE, overlap: int = TILE_OVERLAP) -> dict:
    """Blend ``forward`` over overlapping tiles of a uint8 (H, W, 3) ``image``: ``dict(s, b, e)`` float32.

    ``forward(tile)`` maps a uint8 (h, w, 3) tile (all tiles have one size) to float arrays s (h, w, K),
    b (h, w), e (h, w, 4). Each output pixel is the weighted mean over the tiles covering it (`_ramp`
    weights), so probability vectors stay normalised.
    """
    image = np.asarray(image)
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3 or 0 in image.shape:
        raise ValueError(f"image must be a non-empty uint8 (H, W, 3) array, got {image.dtype} {image.shape}")
    height, width = image.shape[:2]
    tile_h, tile_w = min(tile_size, height), min(tile_size, width)
    rows, cols = tile_starts(height, tile_h, overlap), tile_starts(width, tile_w, overlap)
    acc, total = None, np.zeros((height, width, 1), np.float32)
    for i, y in enumerate(rows):
        for j, x in enumerate(cols):
            heads = forward(image[y:y + tile_h, x:x + tile_w])
            stacked = np.concatenate([heads["s"], heads["b"][..., None], heads["e"]], axis=-1)
            weight = np.outer(_ramp(tile_h, overlap, i == 0, i == len(rows) - 1),
                              _ramp(tile_w, overlap, j == 0, j == len(cols) - 1))[..., None]
            if acc is None:
                acc = np.zeros((height, width, stacked.shape[-1]), np.float32)
            acc[y:y + tile_h, x:x + tile_w] += weight * stacked
            total[y:y + tile_h, x:x + tile_w] += weight
    acc /= total
    num_s = acc.shape[-1] - 5
    return {"s": acc[..., :num_s], "b": acc[..., num_s], "e": acc[..., num_s + 1:]}


def head_probabilities(model, image, tile_size: int = TILE_SIZE, overlap: int = TILE_OVERLAP) -> dict:
    """``dict(s, b, e)`` of one uint8 (H, W, 3) image as numpy float32: s (H, W, C+1), b (H, W), e (H, W, 4).

    ``model`` is a `oosis_jax.models.PSPNet`, run in evaluation mode on tiles (`tiled_probabilities`). The
    image is first padded at the bottom and right to multiples of ``PAD_MULTIPLE`` with ``PAD_COLOR`` (zero
    after normalisation, as the training crops' padding), so that images of many sizes share a few compiled
    shapes; the outputs are cropped back.
    """
    def tile_heads(tile):
        s, b, e = forward(model, normalize_images(tile[None]))
        return {"s": np.asarray(s[0]), "b": np.asarray(b[0]), "e": np.asarray(e[0])}

    image = np.asarray(image)
    if image.ndim != 3 or 0 in image.shape:
        raise ValueError(f"image must be a non-empty uint8 (H, W, 3) array, got {image.dtype} {image.shape}")
    height, width = image.shape[:2]
    padded_h, padded_w = padded_shape(height, width)
    padded = np.broadcast_to(PAD_COLOR, (padded_h, padded_w, 3)).astype(image.dtype)
    padded[:height, :width] = image
    heads = tiled_probabilities(tile_heads, padded, tile_size, overlap)
    return {key: value[:height, :width] for key, value in heads.items()}


def device_summary() -> str:
    """Which JAX backend runs the network (printed by the experiment scripts)."""
    return f"{jax.default_backend()} ({len(jax.devices())} device(s))"
