"""Valid portraits (shipped gallery characters) drive the avatar's look: two characters give clearly different
frames, each close to its own portrait. Run on the shipped default Actor + VAE: the tiny preset's random Actor
makes frames that barely depend on the portrait (ada vs bruno differ by ~0.0003 grey levels), so it cannot
show this. The Thinker is the toy one (hidden size 576, like the cascade's): idle frames never read it, and
loading SmolLM2 + Piper would cost ~15 s for nothing."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from engine_core.checkpoint import load_actor
from engine_core.engine.engine import WEIGHTS_DIR, Engine, build_vae
from engine_core.thinker.toy import ToyThinker

GALLERY = Path(__file__).resolve().parents[1] / "sdk" / "portrait" / "gallery"


@pytest.fixture(scope="module")
def engine() -> Engine:
    actor, cfg = load_actor(WEIGHTS_DIR / "pixel")
    warnings: list[str] = []
    vae = build_vae(cfg, WEIGHTS_DIR / "pixel", "cpu", warnings)
    assert not warnings, warnings                         # the trained VAE, not a random one
    return Engine(cfg, ToyThinker(hidden_size=cfg.thinker.hidden_size), actor, vae, "cpu")


def _frames(engine: Engine, name: str, chunks: int = 2) -> tuple[np.ndarray, np.ndarray]:
    s = engine.open_session(portrait=(GALLERY / f"{name}.png").read_bytes())
    try:
        assert not s.warnings, s.warnings
        frames = np.concatenate([s.next_chunk().frames for _ in range(chunks)]).astype(np.float32)
        return frames, s.portrait.image.astype(np.float32)
    finally:
        s.close()


def test_two_gallery_portraits_give_clearly_different_frames(engine):
    ada, ada_portrait = _frames(engine, "ada")
    bruno, bruno_portrait = _frames(engine, "bruno")
    assert ada.shape == bruno.shape == (2 * engine.config.chunk_frames, 256, 256, 3)
    diff = np.abs(ada - bruno).mean()
    assert diff > 20, f"ada and bruno frames differ by only {diff:.2f} grey levels"
    # each avatar looks like its own portrait, far more than like the other one
    for frames, own, other in ((ada, ada_portrait, bruno_portrait), (bruno, bruno_portrait, ada_portrait)):
        to_own, to_other = np.abs(frames - own).mean(), np.abs(frames - other).mean()
        assert to_own < 15 and to_other > 3 * to_own, (to_own, to_other)
    again, _ = _frames(engine, "ada")
    assert np.abs(again - ada).mean() < 0.5                # the difference is the portrait's, not noise
