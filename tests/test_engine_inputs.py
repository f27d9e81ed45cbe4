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
from engine_core.errors import (AudioError, BackendUnavailableError, CheckpointError, ConfigError,
                                ContextOverflowError, PersonaError, PortraitError, TextError,
                                TextTooLongError)
from sdk.protocol.constants import MAX_TEXT_CHARS
from sdk.protocol.messages import ErrorCode, Persona

pytestmark = pytest.mark.engine


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


def test_text_errors_carry_their_own_codes(engine):
    s = engine.open_session()
    try:
        with pytest.raises(TextTooLongError) as info:
            s.speak("x" * 5000)
        assert info.value.code == "text_too_long" and "5000 characters" in str(info.value)
        with pytest.raises(TextTooLongError):
            s.chat("y" * (MAX_TEXT_CHARS + 1))
        with pytest.raises(TextError) as info:
            s.chat("   ")
        assert info.value.code == "empty_text" and not isinstance(info.value, TextTooLongError)
        assert s.chat("x" * MAX_TEXT_CHARS) > 0            # at the limit is fine
    finally:
        s.close()


def test_engine_error_codes_and_their_protocol_mapping():
    from engine_core.daemon.server import error_code_of

    assert (CheckpointError.code, ConfigError.code, BackendUnavailableError.code) == \
        ("bad_checkpoint", "bad_config", "backend_unavailable")
    assert ContextOverflowError.code == TextTooLongError.code == "text_too_long"
    # input errors keep their protocol code; load-time errors reach a client as `internal`
    assert error_code_of(TextTooLongError("long")) is ErrorCode.TEXT_TOO_LONG
    assert error_code_of(ContextOverflowError("long")) is ErrorCode.TEXT_TOO_LONG
    assert error_code_of(TextError("empty")) is ErrorCode.EMPTY_TEXT
    assert error_code_of(PortraitError("x")) is ErrorCode.INVALID_PORTRAIT
    for exc in (CheckpointError("x"), ConfigError("x"), BackendUnavailableError("x"), ValueError("x")):
        assert error_code_of(exc) is ErrorCode.INTERNAL


def test_model_that_is_neither_a_directory_nor_a_preset(tmp_path):
    with pytest.raises(ConfigError, match="no such model directory or preset '/nonexistent/dir'") as info:
        Engine.load("/nonexistent/dir")
    assert "unknown model preset" not in str(info.value)
    with pytest.raises(CheckpointError, match="has no actor.safetensors"):
        Engine.load(str(tmp_path))


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


def _vae_file(path, config: dict, tensors: dict) -> None:
    save_file({k: v.contiguous() for k, v in tensors.items()}, str(path),
              metadata={"format": "xstreamer.small_vae", "config": json.dumps(config)})


def test_vae_checkpoints_are_versioned_and_upgraded_by_the_same_function(tmp_path):
    from engine_core.checkpoint import VAE_FORMAT, VAE_VERSION
    from engine_core.codecs.vae import SmallVAE, SmallVAEConfig
    from engine_core.codecs.vae_io import load_small_vae, read_small_vae_config, save_small_vae
    from engine_core.engine.engine import WEIGHTS_DIR

    torch.manual_seed(0)
    vae = SmallVAE(SmallVAEConfig.tiny())
    # A file written now carries the current version in its config.
    path = save_small_vae(vae, tmp_path / "new")
    from safetensors import safe_open
    with safe_open(str(path), framework="pt") as f:
        assert json.loads(f.metadata()["config"])["version"] == VAE_VERSION == 1
    # An old-style file (config without a version: version 0) loads, upgraded, with the same weights.
    old_cfg = {k: v for k, v in SmallVAEConfig.tiny().to_dict().items() if k != "version"}
    _vae_file(tmp_path / "old.safetensors", old_cfg, vae.state_dict())
    old = load_small_vae(tmp_path / "old.safetensors")
    assert old.cfg == SmallVAEConfig.tiny() and old.cfg.version == 1
    assert all(torch.equal(a, b) for a, b in zip(vae.state_dict().values(), old.state_dict().values()))
    # The one upgrade function does it (format-dispatched), for the VAE as for the Actor.
    meta, _ = upgrade_checkpoint({"format": VAE_FORMAT, "config": old_cfg}, {})
    assert meta["config"]["version"] == 1
    # A future version is refused with CheckpointError, by both readers.
    _vae_file(tmp_path / "future.safetensors", {**old_cfg, "version": 2}, vae.state_dict())
    with pytest.raises(CheckpointError, match="SmallVAE checkpoint config version 2 is newer"):
        load_small_vae(tmp_path / "future.safetensors")
    with pytest.raises(CheckpointError, match="newer"):
        read_small_vae_config(tmp_path / "future.safetensors")
    with pytest.raises(CheckpointError, match="newer"):
        upgrade_checkpoint({"format": VAE_FORMAT, "config": {**old_cfg, "version": 7}}, {})
    # The shipped default VAE still loads through this path.
    shipped = load_small_vae(WEIGHTS_DIR / "pixel")
    assert shipped.cfg == read_small_vae_config(WEIGHTS_DIR / "pixel") and shipped.cfg.version == 1


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
