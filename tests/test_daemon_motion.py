"""Motion on the wire, from a live daemon (`xstreamer serve --model tiny-motion`, real sockets on loopback): the
`opened` reply names the channels, every video frame has a motion packet with its pts, a 512 session sends 512x512
frames, a transparent portrait RGBA frames, and a portrait whose face cannot be found is refused with a typed error
until its five points are given."""

from __future__ import annotations

import io

import cv2
import numpy as np
import pytest

from sdk.client import Client
from sdk.errors import InvalidInputError
from sdk.launcher import DaemonProcess
from sdk.portrait.characters import character
from sdk.protocol import ErrorCode, ProtocolError
from sdk.protocol.messages import MOTION_CHANNELS
from test_daemon_helpers import check_continuity, collect_until, is_end

pytestmark = pytest.mark.process


@pytest.fixture(scope="module")
def daemon():
    with DaemonProcess(model="tiny-motion", extra_args=["--max-sessions", "4"]) as d:
        yield d
    assert d.proc.returncode == 0, "".join(d.stderr_tail)


def _png(img: np.ndarray) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(img).save(buf, format="PNG")
    return buf.getvalue()


def test_every_frame_carries_its_motion(daemon):
    with Client(daemon.control) as client, client.open_session() as s:
        assert s.info.motion_channels == list(MOTION_CHANNELS) and s.info.video_format == "rgb24"
        assert (s.info.width, s.info.height) == (256, 256)
        utt = s.speak("Motion, please.")
        st = collect_until(s, is_end(utt), timeout=120)
        check_continuity(st)
        video = {p.pts: p for p in st.of("video")}
        motion = [(p, payload) for p, payload, _ in st.packets if p.type == "motion"]
        assert motion and {p.pts for p, _ in motion} == set(video)
        for p, payload in motion:
            values = np.frombuffer(payload, "<f4")
            assert p.channels == len(MOTION_CHANNELS) == len(values) and np.isfinite(values).all()
            assert (values[:21] >= 0).all() and (values[:21] <= 1).all()          # blendshape weights
            named = s.motion(p, payload)
            assert list(named) == list(MOTION_CHANNELS) and named["jawOpen"] == pytest.approx(float(values[0]))
        with pytest.raises(ProtocolError):
            s.motion(video[motion[0][0].pts], b"")                                  # not a motion packet
        kinds = [p.type for p, _, _ in st.packets if p.pts == motion[0][0].pts and p.type != "state"]
        assert kinds.index("video") < kinds.index("motion")                        # video, then its motion


def test_512_frames_and_a_transparent_portrait(daemon):
    ch = character("ada")
    rgb = cv2.cvtColor(cv2.imread(str(ch.file)), cv2.COLOR_BGR2RGB)
    yy, xx = np.mgrid[0:256, 0:256]
    alpha = np.where(((xx - 128) / 100) ** 2 + ((yy - 140) / 125) ** 2 < 1, 255, 0).astype(np.uint8)
    with Client(daemon.control) as client:
        with client.open_session(portrait=_png(np.dstack([rgb, alpha])), face_points=ch.face_points,
                                 video_size=512) as s:
            assert (s.info.width, s.info.height, s.info.video_format) == (512, 512, "rgba32")
            utt = s.speak("Transparent.")
            st = collect_until(s, is_end(utt), timeout=120)
            frames = [(p, payload) for p, payload, _ in st.packets if p.type == "video"]
            assert frames and all((p.width, p.height, p.format) == (512, 512, "rgba32") for p, _ in frames)
            img = np.frombuffer(frames[-1][1], np.uint8).reshape(512, 512, 4)
            assert img[4, 4, 3] == 0 and img[280, 256, 3] == 255


def test_a_picture_without_a_findable_face_needs_its_five_points(daemon):
    noise = np.random.default_rng(1).integers(60, 200, (300, 300, 3), dtype=np.uint8)
    with Client(daemon.control) as client:
        with pytest.raises(InvalidInputError) as err:
            client.open_session(portrait=_png(noise))
        assert err.value.code is ErrorCode.INVALID_PORTRAIT and "five points" in err.value.message
        points = [[118, 130], [182, 130], [150, 170], [128, 205], [172, 205]]
        with client.open_session(portrait=_png(noise), face_points=points) as s:
            assert s.info.motion_channels
