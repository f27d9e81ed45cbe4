"""The two CUDA streams a session's work runs on, so the Thinker and the Actor overlap on one GPU.

- The Thinker's worker thread (engine/feed.py) works on a stream of its own at the lowest priority: on the
  default stream every Thinker step would wait for the Actor's queued passes and each pass for the Thinker's
  steps (seen on an H200 at the paper shape: Actor passes of 1.0-1.3 s instead of 0.1 s while replying).
- The block loop (engine/session.py) works on a stream of its own at the highest priority: the Thinker runs
  ahead of real time (10 ms/token against the 53 ms/token speech needs), so when both have work queued the
  GPU should take the Actor's kernels first, which is what decides the first packet and the frame rate.

Data crosses between the two threads on the host (hidden states and audio are copied to the CPU per token
or segment), so neither stream ever waits on the other. On a CPU device both are no-ops.
"""

from __future__ import annotations

import contextlib
from typing import Iterator

import torch

ACTOR_PRIORITY = -1        # CUDA: lower is more urgent; PyTorch clamps to the device's range
THINKER_PRIORITY = 0       # the default streams' priority, the lowest


def new_stream(device: torch.device | str | None, priority: int) -> "torch.cuda.Stream | None":
    """A new CUDA stream of `priority` on `device`; None off CUDA."""
    if device is None or torch.device(device).type != "cuda":
        return None
    return torch.cuda.Stream(torch.device(device), priority=priority)


@contextlib.contextmanager
def running_on(stream: "torch.cuda.Stream | None") -> Iterator[None]:
    """Make `stream` the calling thread's current one, after the work the thread's stream queued before it
    (e.g. the weights' load); a no-op for None."""
    if stream is None:
        yield
        return
    stream.wait_stream(torch.cuda.current_stream(stream.device))
    with torch.cuda.stream(stream):
        yield
