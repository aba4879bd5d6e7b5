"""Batched matrix products over the frequencies, followed by FFTs.

numpy hands ``matmul`` on float64/complex128 arrays to OpenBLAS, whose kernels use 256-bit AVX
registers and may return without clearing their upper halves (``vzeroupper``). SSE code run next
(scipy's pocketfft here) then pays a state-transition penalty on every instruction, until some AVX
code clears the state: measured on a 2-core AMD EPYC, the inverse FFT of the ``phi4``
conditional's polyphase components (64 chains of 4 × 32² fields) took 1.7-1.8 ms right after the
product and 0.9 ms once a numpy addition of 16 or more doubles had run (a copy did not clear the
state, nor did an addition of 8 or fewer). :func:`matmul` therefore ends with one small numpy
addition, which costs about a microsecond and changes no result. See docs/performance.md, "Gradient floor".
"""

from __future__ import annotations

import numpy as np

_A = np.zeros(64)
_B = np.zeros(64)


def clear_vector_state() -> None:
    """Run one small numpy AVX2 loop (an addition of 64 doubles into a private buffer): it clears
    the upper halves of the vector registers that a BLAS kernel may have left dirty."""
    np.add(_A, _A, out=_B)


def matmul(a: np.ndarray, b: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """``np.matmul(a, b, out=out)``, then :func:`clear_vector_state` (for the FFT that follows)."""
    y = np.matmul(a, b, out=out)
    clear_vector_state()
    return y
