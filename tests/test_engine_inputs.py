"""Bad input raises clear typed errors: portraits, personas, texts, audio, checkpoints, presets."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from safetensors.torch import save_file

from engine_core.actor.model import Actor
from engine_core.checkpoint import load_actor, read_actor_checkpoint, save_actor, upgrade_checkpoint
from engine_core.config import ModelConfig
from engine_core.engine import Engine
from engine_core.errors import AudioError, CheckpointError, ConfigError, PersonaError, PortraitError, TextError
from sdk.protocol.messages import Persona


@pytest.fixture(scope="module")
def engine() -> Engine:
    return Engine.load("tiny")


@pytest.mark.parametrize("data", [b"this is not an image", b"", b"\x89PNG\r\n\x1a\n garbage"])
def test_portrait_that_is_not_an_image(engine, data):
    with pytest.raises(PortraitError, match="(?i)image|empty"):
        engine.open_session(portrait=data)


def test_empty_persona(engine):
    with pytest.raises(PersonaError, match="empty system prompt"):
        engine.open_session(persona=Persona.model_construct(name="Ann", system_prompt="   ", greeting="",
                                                            voice="joe", model="tiny", character=None))
    with pytest.raises(PersonaError):
        engine.open_session(persona={"name": "", "system_prompt": "hi"})
    with pytest.raises(PersonaError):
        engine.open_session(persona="a string")


def test_bad_text_and_audio(engine):
    s = engine.open_session()
    try:
        with pytest.raises(TextError):
            s.chat("   ")
        with pytest.raises(TextError):
            s.speak("x" * 5000)
        with pytest.raises(AudioError):
            s.hear(np.zeros((2, 100), np.int16), 16000)
        with pytest.raises(AudioError):
            s.hear(np.zeros(100, np.int32), 16000)
        with pytest.raises(AudioError):
            s.hear(np.zeros(0, np.int16), 16000, final=True)
        with pytest.raises(PersonaError):
            s.set_persona({"system_prompt": ""})
    finally:
        s.close()


def test_checkpoint_of_the_wrong_shape(tmp_path):
    cfg = ModelConfig.from_name("tiny")
    actor = Actor(cfg)
    path = save_actor(actor, cfg, tmp_path / "ok")
    loaded, cfg2 = load_actor(tmp_path / "ok")
    assert cfg2 == cfg
    assert all(torch.equal(a, b) for a, b in zip(actor.state_dict().values(), loaded.state_dict().values()))
    # same weights, but a config claiming a wider Actor
    wide = ModelConfig.from_dict({**cfg.to_dict(), "actor": {**cfg.to_dict()["actor"], "width": 96}})
    save_actor(actor, wide, tmp_path / "bad")
    with pytest.raises(CheckpointError, match="wrong shape"):
        load_actor(tmp_path / "bad")
    with pytest.raises(CheckpointError, match="wrong shape"):
        Engine.load(str(tmp_path / "bad"))
    # not a checkpoint at all
    (tmp_path / "junk").mkdir()
    (tmp_path / "junk" / "actor.safetensors").write_bytes(b"junk")
    with pytest.raises(CheckpointError, match="not a readable"):
        read_actor_checkpoint(tmp_path / "junk")
    save_file({"w": torch.zeros(1)}, str(tmp_path / "other.safetensors"), metadata={"format": "other"})
    with pytest.raises(CheckpointError, match="not an xstreamer Actor"):
        read_actor_checkpoint(tmp_path / "other.safetensors")
    assert path.is_file()


def test_upgrade_checkpoint_handles_versions():
    cfg = ModelConfig.from_name("tiny").to_dict()
    old = {k: v for k, v in cfg.items() if k != "version"}
    meta, _ = upgrade_checkpoint({"config": old}, {})
    assert meta["config"]["version"] == 1 and ModelConfig.from_dict(meta["config"]) == ModelConfig.from_name("tiny")
    with pytest.raises(CheckpointError, match="newer"):
        upgrade_checkpoint({"config": {**cfg, "version": 99}}, {})


def test_unknown_preset_and_bad_config():
    with pytest.raises(ConfigError, match="unknown model preset"):
        ModelConfig.from_name("huge")
    with pytest.raises(ConfigError, match="unknown keys"):
        ModelConfig.from_dict({**ModelConfig.from_name("tiny").to_dict(), "colour": "red"})
    with pytest.raises(ConfigError, match="kv_heads"):
        ModelConfig.from_dict({**ModelConfig.from_name("tiny").to_dict(),
                               "actor": {**ModelConfig.from_name("tiny").to_dict()["actor"], "kv_heads": 3}})
    with pytest.raises(ConfigError):
        Engine.load("nonexistent-preset")
    json.dumps(ModelConfig.from_name("paper").to_dict())
