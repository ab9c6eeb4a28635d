"""Small CRF problems and a direct pixel-by-pixel Eq. (8) for the crf tests (conventions of docs/contracts.md)."""

import numpy as np

OFFSETS = ((0, -1), (0, 1), (-1, 0), (1, 0))  # left, right, up, down (docs/contracts.md)


def brute_energy(labels, sigma, occ, lam=20.0, mu=100.0):
    """Eq. (8) summed pair by pair: unary Eq. (5), smoothness Eq. (6), occlusion Eq. (7) with c_inf = inf."""
    height, width = labels.shape
    total = 0.0
    for y in range(height):
        for x in range(width):
            total += (1 - sigma[y, x]) if labels[y, x] == 0 else sigma[y, x]
            for d, (dy, dx) in enumerate(OFFSETS):
                v, u = y + dy, x + dx
                if not (0 <= v < height and 0 <= u < width):
                    continue
                if d in (1, 3) and labels[y, x] != labels[v, u]:  # each unordered pair once
                    total += lam
                if occ[y, x, d]:
                    if labels[y, x] < labels[v, u]:
                        return np.inf
                    total -= mu * (labels[y, x] > labels[v, u])
    return total


def random_occ(rng, labels, density=0.5, feasible=True):
    """Random occlusion pairs inside the image; with ``feasible`` only pairs that ``labels`` satisfies."""
    height, width = labels.shape
    occ = rng.random((height, width, 4)) < density
    for d, (dy, dx) in enumerate(OFFSETS):
        for y in range(height):
            for x in range(width):
                v, u = y + dy, x + dx
                if not (0 <= v < height and 0 <= u < width):
                    occ[y, x, d] = False
                elif feasible and labels[y, x] < labels[v, u]:
                    occ[y, x, d] = False
    return occ


def rectangles(boxes, shape=(14, 30)):
    """Ground-truth (sigma, occ) of axis-aligned boxes painted back to front (later boxes in front)."""
    inst = np.zeros(shape, dtype=np.int64)
    for k, (y0, y1, x0, x1) in enumerate(boxes, start=1):
        inst[y0:y1, x0:x1] = k
    # Pixel p occludes neighbour q when p is an instance painted after q's instance (or q is background).
    occ = np.zeros(shape + (4,), bool)
    padded = np.pad(inst, 1, constant_values=-1)
    for d, (dy, dx) in enumerate(((0, -1), (0, 1), (-1, 0), (1, 0))):
        neighbour = padded[1 + dy:1 + dy + shape[0], 1 + dx:1 + dx + shape[1]]
        occ[..., d] = (inst > 0) & (neighbour >= 0) & (inst > neighbour)
    return (inst == 0).astype(float), occ, inst


def noisy_scene(seed, shape, rng, noise, drop):
    """Ground-truth ``(sigma, occ)`` of the synthetic scene ``seed`` (``data.synthetic.make_scene``, ``shape``)
    made prediction-like: sigma perturbed by N(0, ``noise``) and clipped, each occlusion pair dropped with
    probability ``drop``; both drawn from ``rng`` in that order."""
    from data.synthetic import make_scene
    from data.targets import occlusion_map

    scene = make_scene(seed, *shape)
    sigma = np.clip((scene["instance_map"] == 0) + rng.normal(0.0, noise, shape), 0.0, 1.0)
    occ = occlusion_map(scene["instance_map"], scene["edges"]) & (rng.random(shape + (4,)) >= drop)
    return sigma, occ


def fail_solve_on_width(monkeypatch, width: int) -> None:
    """Make ``crf.solve_many``'s "solve" method raise ``ValueError("synthetic CRF failure")`` on every image
    ``width`` pixels wide (in-process workers only, ``processes=1``), and solve the others as usual."""
    import crf.batch

    solve = crf.batch.METHODS["solve"]

    def fails_on_width(sigma, occ, **kwargs):
        if sigma.shape[1] == width:
            raise ValueError("synthetic CRF failure")
        return solve(sigma, occ, **kwargs)

    monkeypatch.setitem(crf.batch.METHODS, "solve", fails_on_width)


def random_grid(rng, height, width, scale, zero_fraction=0.3, inf_fraction=0.0):
    """Random grid capacities ``[tedges, right, down]``, each ``float64 (H, W, 2)`` (``crf.grid_maxflow``);
    ``zero_fraction`` of them are 0 and ``inf_fraction`` of the neighbour arcs are infinite."""
    arrays = []
    for _ in range(3):
        caps = rng.random((height, width, 2)) * scale
        caps[rng.random(caps.shape) < zero_fraction] = 0.0
        arrays.append(caps)
    for arcs in arrays[1:]:
        arcs[rng.random(arcs.shape) < inf_fraction] = np.inf
    return arrays
