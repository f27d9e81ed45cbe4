"""The portrait renderer in worker processes (engine_core/motion/render_pool.py): the frames are exactly the ones
drawn in-process, for sessions spread over the workers; a closed renderer is freed in its worker."""

from __future__ import annotations

import numpy as np
import pytest

from engine_core.motion.channels import NUM_CHANNELS
from engine_core.motion.render import PortraitRenderer
from engine_core.motion.render_pool import RenderPool
from sdk.portrait.characters import characters

pytestmark = pytest.mark.process


def _motions(seed: int, n: int = 6) -> np.ndarray:
    rng = np.random.default_rng(seed)
    m = np.zeros((n, NUM_CHANNELS))
    m[:, :21] = np.clip(rng.normal(0.2, 0.2, (n, 21)), 0, 1)
    m[:, 21:24] = rng.normal(0, 3, (n, 3))
    return m


def test_frames_drawn_by_workers_are_the_frames_drawn_here():
    pool = RenderPool(processes=2)
    try:
        portraits = [c.portrait(256) for c in characters()[:3]]
        remotes = [pool.renderer(p.image, p.landmarks, frames=8) for p in portraits]
        assert len({r.worker for r in remotes}) == 2                      # spread over both workers
        for i, (p, r) in enumerate(zip(portraits, remotes)):
            motion = _motions(i)
            local = PortraitRenderer(p.image, p.landmarks)
            want = np.stack([local.render(m) for m in motion])
            got = r.render_many(motion)
            assert got.dtype == np.uint8 and got.shape == want.shape
            np.testing.assert_array_equal(got, want)
        with pytest.raises(ValueError):
            remotes[0].render_many(_motions(0, n=9))                      # more than it was made for
        remotes[1].close()
        with pytest.raises(RuntimeError):                                # freed in the worker
            remotes[1].worker.call("render", remotes[1].key, _motions(1))
        np.testing.assert_array_equal(remotes[2].render_many(_motions(5, 2)).shape, (2, 256, 256, portraits[2].image.shape[2]))
    finally:
        pool.close()
