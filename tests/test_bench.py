"""`xstreamer bench` on the tiny preset: the figures it reports are consistent with one another."""

from __future__ import annotations

import argparse
import json
import time

import pytest

from engine_core.bench.cli import configure, run
from engine_core.bench.probes import SegmentClock
from engine_core.thinker.toy import ToyThinker

pytestmark = pytest.mark.engine


def test_bench_reports_a_consistent_breakdown(tmp_path):
    parser = argparse.ArgumentParser()
    configure(parser)
    out = tmp_path / "bench.json"
    args = parser.parse_args(["--preset", "tiny", "--seconds", "3", "--trials", "2", "--mode", "chat",
                              "--json", str(out)])
    assert run(args) == 0
    r = json.loads(out.read_text())
    assert r["stream_seconds"] >= 3.0 and r["fps"] > 0
    assert r["chunks"] * r["chunk_frames"] == pytest.approx(r["stream_seconds"] * 25)
    assert len(r["first_packet_ms_all"]) == 2
    # the Thinker's share of the first packet comes before the packet itself
    assert 0 < r["first_speech_ready_ms"] <= r["first_packet_ms"]
    assert r["actor_ms_per_pass"] > 0 and r["actor_ms_per_pass_replying"] > 0
    # the parts of the first packet: at least the pyramid's steps of passes, then a decode, after the speech
    assert r["first_packet_passes"] >= 2 and r["first_packet_pass_ms"] > 0 and r["first_packet_decode_ms"] > 0
    assert r["first_speech_ready_ms"] + r["first_packet_decode_ms"] <= r["first_packet_ms"]
    assert r["start"] == "alone"                                  # the default; every policy is reported
    assert r["first_packet_ms_all_alone"] == r["first_packet_ms_all"]
    for p in ("own", "pyramid", "hold"):
        assert len(r[f"first_packet_ms_all_{p}"]) == 2 and r[f"first_packet_ms_{p}"] > 0
        assert r[f"startup_late_ms_{p}"] >= 0
    assert r["startup_late_ms"] >= 0
    assert r["thinker_ms_per_token"] > 0 and r["thinker_stream_ms_per_token"] > 0
    # per trial: the speech's share, and the garbage collector's pauses within it (0 when none ran)
    assert len(r["first_speech_ready_ms_all"]) == len(r["first_packet_gc_ms_all"]) == 2
    assert all(0 <= g <= f for g, f in zip(r["first_packet_gc_ms_all"], r["first_packet_ms_all"]))
    assert r["gc_passes_gen2"] >= 0


def test_segment_clock_observes_without_changing_the_output():
    thinker = ToyThinker(32, 64)
    plain = [s.num_frames for s in thinker.speak("one two three")]
    clock = SegmentClock(thinker)
    import time

    since = time.perf_counter()
    seen = [s.num_frames for s in thinker.speak("one two three")]
    assert seen == plain
    assert clock.frames_ready_at(since, plain[0]) is not None
    assert clock.frames_ready_at(since, sum(plain) + 1) is None     # never that many frames
    assert clock.tokens_between(since, time.perf_counter()) > 0
    assert clock.tokens_between(since - 60, since) == 0              # nothing was said before `since`
    clock.detach()
    assert "speak" not in thinker.__dict__


def test_the_actor_pass_micro_benchmark_times_every_pass_width():
    from engine_core.bench.actor_pass import main
    from engine_core.config import ModelConfig

    cfg = ModelConfig.from_name("tiny")
    r = main(["--preset", "tiny", "--device", "cpu", "--passes", "2"])
    assert sorted(r["passes"]) == list(range(1, cfg.steps + 2))          # 1 .. steps + 1 chunks in a pass
    for m, row in r["passes"].items():
        assert row["tokens"] == m * cfg.chunk_tokens and row["eager"] > 0 and row["graph"] > 0
    floors = [r["passes"][m]["flop_floor_ms_700T"] for m in sorted(r["passes"])]
    assert floors == sorted(floors)                                       # the compute floor grows with width


def test_the_thinker_turns_benchmark_sees_each_prompt_reuse_the_last(tmp_path):
    """Through the engine's SpeechFeed, each turn's prompt keeps what the last one left in the static cache: only
    the last reply and the new turn are prefilled, and after the conversation drops to half its turns (turn 9:
    16 turns + 1 > max_turns) more is, but not all of it."""
    from engine_core.bench.thinker_turns import main as turns

    out = tmp_path / "turns.json"
    r = turns(["--device", "cpu", "--small", "--turns", "10", "--json", str(out)])
    rows = r["turns"]
    assert json.loads(out.read_text())["turns"] == rows
    assert rows[0]["prefilled_tokens"] == rows[0]["prompt_tokens"]
    steady = {row["prefilled_tokens"] for row in rows[1:9]}
    assert len(steady) == 1 and steady.pop() < rows[1]["prompt_tokens"] < rows[8]["prompt_tokens"]
    assert rows[9]["prompt_tokens"] < rows[8]["prompt_tokens"]                    # turns dropped
    assert rows[1]["prefilled_tokens"] < rows[9]["prefilled_tokens"] < rows[9]["prompt_tokens"]
    for row in rows:                     # 13 audio tokens (one 1 s chunk) and at least one text token first
        assert row["steps"] >= 14 and row["speech_ready_ms"] > row["prefill_ms"] > 0


def test_the_gc_clock_times_each_collection():
    import gc

    from engine_core.bench.probes import GcClock

    clock = GcClock()
    try:
        t0 = time.perf_counter()
        gc.collect()
        t1 = time.perf_counter()
    finally:
        clock.detach()
    assert [g for _, _, g in clock.passes] == [2] and clock.ms_between(t0, t1) == clock.passes[0][1] > 0
    gc.collect()
    assert len(clock.passes) == 1                          # detached: no longer noted


def test_the_daemon_parts_benchmark_orders_each_replys_parts(tmp_path):
    """A real tiny engine, session worker and media publisher on loopback: every reply's first packet is received,
    after its chunk was computed and queued."""
    from engine_core.daemon.bench_parts import main as daemon_parts

    out = tmp_path / "parts.json"
    r = daemon_parts(["--model", "tiny", "--mode", "speak", "--replies", "3", "--settle-s", "1", "--gap-s", "0.5",
                      "--json", str(out)])
    assert json.loads(out.read_text())["replies"] == r["replies"] and len(r["replies"]) == 3
    for row in r["replies"]:
        assert 0 <= row["chunk_start"] <= row["chunk_end"] <= row["queued"] <= row["received"], row
