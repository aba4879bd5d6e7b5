#!/usr/bin/env bash
# Benchmark-only environment with the peer reference kymatio (NOT a project dependency).
# kymatio 0.3.0 imports scipy.special.sph_harm, removed in scipy 1.17: pin scipy < 1.17 here.
# Creates .venv-bench next to the project (git-ignored) with kymatio + this project (no UI deps).
#   bash benchmarks/peer_env.sh && .venv-bench/bin/python benchmarks/bench_scattering.py
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
if [ ! -x .venv-bench/bin/python ]; then
  "$PY" -m venv .venv-bench
fi
.venv-bench/bin/pip install --quiet --upgrade pip
.venv-bench/bin/pip install --quiet "numpy>=1.26" "scipy>=1.11,<1.17" "pywavelets>=1.5" \
  "threadpoolctl>=3.1" "pillow>=10" "kymatio==0.3.0"
.venv-bench/bin/pip install --quiet --no-deps -e .
.venv-bench/bin/python -c "import kymatio, scipy, explorer.core.scattering as s; print('kymatio', kymatio.__version__, 'scipy', scipy.__version__)"
