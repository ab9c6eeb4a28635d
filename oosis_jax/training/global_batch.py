"""A process's share of a batch as global arrays split by rows over the ``data`` mesh: what the training loop's
steps and the validation's network read (`to_global`)."""

from __future__ import annotations

import jax
import numpy as np
from jax.sharding import NamedSharding
from jax.sharding import PartitionSpec as P


def to_global(batch: dict, mesh, keys=None) -> dict:
    """Process-local numpy batch -> global arrays split by rows over ``mesh``'s ``data`` axis (each process gives
    its own rows, ``jax.make_array_from_process_local_data``); only the entries named in ``keys`` when given
    (`loop.step_keys`), the whole batch otherwise (``KeyError`` naming a missing one)."""
    sharding = NamedSharding(mesh, P("data"))
    if keys is not None:
        missing = [k for k in keys if k not in batch]
        if missing:
            raise KeyError(f"the batch lacks {missing} (it has {sorted(batch)})")
        batch = {k: batch[k] for k in keys}
    return {k: jax.make_array_from_process_local_data(sharding, np.asarray(v)) for k, v in batch.items()}
