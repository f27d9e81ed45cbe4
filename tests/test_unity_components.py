"""The Unity components (Runtime/Unity) RUN under mono against the behavioural UnityEngine stand-in.

Tests~/Programs/UnityComponents.cs adds AvatarStreamClient / AvatarAudioOutput / AvatarVideoOutput to
GameObjects (serialised fields set first), sends the messages Unity would and pulls the streamed clip the way
Unity's stream reader does. It checks: FilterRead writes the resampled voice on every channel, zeros before
data / on underrun / without a core, and the clock counts only the samples played; StreamingClip leaves the
filter chain alone, its clock is the pts at the AudioSource's play position (Unity's read-ahead is not
counted), zeros after the voice, the loop point, a restart after a flush, a new output rate; the video output
shows the newest frame with pts <= clock - DSP latency, drops late frames, flips rows, holds the last frame
when starved and re-creates the texture on a size change; shutdown is bounded and a second connect works.
Each behaviour is also broken on purpose in a copy of the sources, and the program must then fail.
"""

from __future__ import annotations

import pytest
from unity_build import MONO, mb, mutated_sources

pytestmark = MONO

CHECKS = ["filterread_zeros_resample_clock", "streamingclip_filter_passes_through",
          "video_flip_drop_late_hold_when_starved", "streamingclip_clock_counts_played_samples",
          "client_shutdown_bounded_and_reconnect", "blendshapes_by_arkit_name_at_the_audio_clock",
          "material_property_per_pipeline_and_rgba", "inspector_reply_cap_and_face_points",
          "restart_loses_running_replies_ids_continue"]


def test_components_behave():
    proc = mb.run_mono(mb.unity_program("UnityComponents"), timeout=180)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    passed = [line.split(" ", 1)[1] for line in proc.stdout.splitlines() if line.startswith("PASS ")]
    assert passed == CHECKS and f"ALL {len(CHECKS)}" in proc.stdout, proc.stdout


MUTATIONS = [
    # (file, original, broken, the check that must then fail)
    ("AvatarVideoOutput.cs", "(f.Height - 1 - y) * row, row);", "y * row, row);", "rows flipped"),
    ("AvatarVideoOutput.cs", "if (f == null) return;   // starved: hold the last frame",
     "if (f == null) { if (_texture != null) { _texture.LoadRawTextureData(new byte[_flipped.Length]); "
     "_texture.Apply(false); } return; }",
     "the frame is held"),
    ("AvatarAudioOutput.cs", "return map == null || _source == null ? -1 : map.PtsAt(_source.timeSamples);",
     "return map == null ? -1 : b.Clock.Pts;", "play position"),
    ("AvatarAudioOutput.cs",
     "if (b == null || channels <= 0) { System.Array.Clear(data, 0, data.Length); return 0; }",
     "if (b == null || channels <= 0) return 0;", "zeros before the buffer is handed over"),
    ("AvatarAudioOutput.cs", "if (b == _lastBuffer && flushes == _lastFlushes) return;",
     "if (b == _lastBuffer) return;", "a flush restarts the stream"),
    ("AvatarBlendshapeOutput.cs", "* weightScale);", ");", "jawOpen x100"),
    ("AvatarBlendshapeOutput.cs", "Quaternion.Euler(pitch * headRotationScale, yaw * headRotationScale,",
     "Quaternion.Euler(yaw * headRotationScale, pitch * headRotationScale,", "head pose"),
    ("AvatarBlendshapeOutput.cs", "else if (cut >= 0) name = name.Substring(cut + 1);", "", "name normalisation"),
    ("AvatarBlendshapeOutput.cs", "long due = clock - (long)(delayMs", "long due = clock + 0 * (long)(delayMs",
     "interpolated towards the next frame"),
    ("AvatarVideoOutput.cs", "private static readonly string[] PipelineProperties = { \"_BaseMap\", \"_BaseColorMap\", \"_MainTex\" };",
     "private static readonly string[] PipelineProperties = { \"_MainTex\" };", "URP Lit"),
]


@pytest.mark.parametrize("fname,old,new,needle", MUTATIONS, ids=[m[3].replace(" ", "_") for m in MUTATIONS])
def test_a_broken_component_is_caught(fname, old, new, needle, tmp_path):
    sources = mutated_sources(tmp_path, fname, old, new)
    proc = mb.run_mono(mb.unity_program("UnityComponents", sources), timeout=180)
    assert proc.returncode != 0, proc.stdout
    assert "FAILED: " in proc.stdout, proc.stdout
    assert needle in proc.stdout.split("FAILED: ", 1)[1].splitlines()[0], proc.stdout
