"""One evaluation of a factor's energy and gradient shared by the two calls a sampler makes."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

Array = np.ndarray


def shared_evaluation(energy_and_grad: Callable[[Array], tuple[Array, Array]],
                      grad: Callable[[Array], Array] | None = None,
                      ) -> tuple[Callable[[Array], Array], Callable[[Array], Array]]:
    """(energy, grad) callables for a sampler that share one evaluation: a MALA step asks for the
    energy and then the gradient of the same proposal, and one ``energy_and_grad`` pass gives
    both. ``grad`` (optional) answers a gradient asked at another array."""
    last: dict = {}

    def energy(x):
        e, g = energy_and_grad(x)
        last["x"], last["g"] = x, g
        return e

    def shared_grad(x):
        if last.get("x") is x:
            return last["g"]
        return grad(x) if grad is not None else energy_and_grad(x)[1]

    return energy, shared_grad
