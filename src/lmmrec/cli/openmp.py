"""OpenMP's wait policy for the training commands, set before torch loads.

With the default policy, a thread waiting at the end of a parallel op spins on its core. On a
machine shared with other jobs that spinning competes with them and with torch's own other
thread, and an epoch can take several times as long; PASSIVE threads sleep instead, which is
as fast on a quiet machine here and much faster on a busy one
(benchmarks/results/threads-torch.md). libgomp reads the variable once, when it loads, so this
must run before the first `import torch` of the process; a value the user set wins. Only the
training commands call it: the local LLM (llama.cpp) uses OpenMP too and is tuned on its own.
"""

from __future__ import annotations

import os
import sys


def prefer_passive_wait() -> None:
    if "torch" not in sys.modules:
        os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
