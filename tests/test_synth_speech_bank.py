"""Speech bank -> rendered corpus: what the GPU training machines draw without Piper, the LM or a face detector."""

import json

import numpy as np

from engine_core.data.synth.render import SAMPLES_PER_FRAME, load_clip
from engine_core.data.synth.speech_bank import build_bank, render_corpus


def test_bank_renders_training_clips_with_aligned_hidden_states(tmp_path):
    bank = tmp_path / "bank.npz"
    info = build_bank(bank, utterances=2, seed=3, identities=6, progress=False)
    assert info["utterances"] == 2 and 1 <= info["identities"] <= 6
    meta = json.loads(bytes(np.load(bank)["meta"]).decode())
    assert all(u["sentence"] % 10 != 0 for u in meta["utterances"])       # held-out sentences never enter
    assert all(i % 10 != 0 for i, _ in meta["identities"])               # nor held-out identities

    out = tmp_path / "corpus"
    render_corpus(bank, out, clips=3, seed=1, progress=False)
    manifest = json.loads((out / "manifest.json").read_text())
    assert [c["id"] for c in manifest["clips"]] == ["000000", "000001", "000002"]
    for c in manifest["clips"]:
        clip = load_clip(out / c["dir"])
        t = clip.frames.shape[0]
        assert clip.audio.shape[0] == t * SAMPLES_PER_FRAME and c["frames"] == t
        with np.load(out / c["dir"] / "hidden.npz") as z:
            hidden, frames = z["hidden"], z["frames"]
        assert hidden.shape == (len(frames), 576) and np.all(np.diff(frames) >= 0)
        voiced = np.flatnonzero(np.abs(clip.audio.reshape(t, -1)).max(1) > 500)
        assert voiced[0] - 3 <= frames[0] and frames[-1] <= voiced[-1] + 3      # tokens sit where speech is
    again = tmp_path / "again"
    render_corpus(bank, again, clips=1, seed=1, progress=False)
    assert (out / "clips/000000/frames.npz").read_bytes() == (again / "clips/000000/frames.npz").read_bytes()
