// Unit checks of the core's pure parts (no network): msgpack round trips and malformed input, the ring
// buffer, the resampler, the jitter buffer + audio clock, the video frame queue, the JSON reader and the
// streamed-clip playout map. Prints one
// "PASS name" line per check and exits 1 on the first failure.
using System;
using System.Collections.Generic;
using Xstreamer.Avatar.Core;

namespace Xstreamer.Avatar.Tests
{
    internal static class CoreTests
    {
        private static int _passed;

        private static void Check(bool ok, string what)
        {
            if (!ok) throw new Exception("FAILED: " + what);
        }

        private static void Run(string name, Action a)
        {
            a();
            _passed++;
            Console.WriteLine("PASS " + name);
        }

        private static int Main()
        {
            try
            {
                Run("msgpack_int_boundaries", MsgPackInts);
                Run("msgpack_rejects_garbage", MsgPackGarbage);
                Run("ring_buffer_wraps", RingWraps);
                Run("resampler_rate_and_continuity", Resampler);
                Run("jitter_buffer_clock", JitterClock);
                Run("jitter_buffer_underrun_and_flush", JitterUnderrun);
                Run("video_queue_due_and_late", VideoQueue);
                Run("json_reader_strict", JsonStrict);
                Run("stream_playout_map", PlayoutMap);
                Run("fast_media_header_never_accepts_what_the_validator_refuses", FastMediaFuzz);
                Run("motion_queue_due_shared_and_flush", MotionQueue);
            }
            catch (Exception e)
            {
                Console.WriteLine(e.Message);
                return 1;
            }
            Console.WriteLine("ALL " + _passed);
            return 0;
        }

        private static void MsgPackInts()
        {
            long[] values = { 0, 127, 128, 255, 256, 65535, 65536, 4294967295L, 4294967296L, long.MaxValue,
                              -1, -32, -33, -128, -129, -32768, -32769, int.MinValue, (long)int.MinValue - 1, long.MinValue };
            int[] sizes = { 1, 1, 2, 2, 3, 3, 5, 5, 9, 9, 1, 1, 2, 2, 3, 3, 5, 5, 9, 9 };
            for (int i = 0; i < values.Length; i++)
            {
                var w = new MsgPackWriter();
                w.Write(values[i]);
                byte[] b = w.ToArray();
                Check(b.Length == sizes[i], "smallest encoding of " + values[i] + " has " + sizes[i] + " bytes, got " + b.Length);
                Check((long)MsgPackReader.Unpack(b) == values[i], "round trip of " + values[i]);
            }
            var m = new MsgPackWriter();
            m.WriteMapHeader(2); m.Write("s"); m.Write(new string('x', 40)); m.Write("d"); m.Write(0.25);
            var map = (MsgMap)MsgPackReader.Unpack(m.ToArray());
            Check((string)map["s"] == new string('x', 40) && (double)map["d"] == 0.25, "map round trip");
            Check(map.Keys_[0] == "s" && map.Keys_[1] == "d", "key order kept");
        }

        private static void MsgPackGarbage()
        {
            byte[][] bad =
            {
                new byte[0], new byte[] { 0xc1 }, new byte[] { 0x82, 0xa1, 0x61 }, new byte[] { 0xdb, 0xff, 0xff, 0xff, 0xff },
                new byte[] { 0x81, 0xa1, 0x61, 0x01, 0x00 }, new byte[] { 0xa2, 0xc3, 0x28 }, new byte[] { 0x82, 0xa1, 0x61, 1, 0xa1, 0x61, 2 },
            };
            foreach (byte[] b in bad)
            {
                bool threw = false;
                try { MsgPackReader.Unpack(b); } catch (MsgPackException) { threw = true; }
                Check(threw, "garbage " + JsonOut.Hex(b) + " rejected");
            }
            var deep = new List<byte>();
            for (int i = 0; i < 1000; i++) deep.Add(0x91);
            deep.Add(0x01);
            bool deepThrew = false;
            try { MsgPackReader.Unpack(deep.ToArray()); } catch (MsgPackException) { deepThrew = true; }
            Check(deepThrew, "nesting depth limited");
            bool typed = false;
            try { ProtocolCodec.UnpackHeader(new byte[] { 0x93, 1, 2, 3 }); }
            catch (ProtocolException e) { typed = e.Code == ErrorCode.Malformed; }
            Check(typed, "a non-map header is a typed malformed error");
        }

        private static void RingWraps()
        {
            var r = new FloatRingBuffer(5);
            var src = new float[] { 1, 2, 3, 4 };
            Check(r.Write(src, 0, 4) == 4, "write 4");
            var dst = new float[3];
            Check(r.Read(dst, 0, 3) == 3 && dst[2] == 3, "read 3");
            Check(r.Write(src, 0, 4) == 4 && r.Count == 5 && r.Free == 0, "wrapped write fills");
            Check(r.Write(src, 0, 1) == 0, "full buffer refuses");
            var all = new float[5];
            Check(r.Read(all, 0, 5) == 5 && all[0] == 4 && all[1] == 1 && all[4] == 4, "wrapped read order");
        }

        private sealed class Ramp : ISampleSource
        {
            public long Next; public long Limit = long.MaxValue;
            public bool TryPop(out float s) { if (Next >= Limit) { s = 0; return false; } s = Next++ * 1e-5f; return true; }
        }

        private static void Resampler()
        {
            var rs = new LinearResampler(22050, 48000);
            var src = new Ramp();
            var outBuf = new float[48000 * 2];
            for (int i = 0; i < 50; i++) rs.Process(outBuf, i * 960 * 2, 960, 2, src);
            // one second of output must consume one second of input (±2 samples of interpolation look-ahead)
            Check(Math.Abs(src.Next - 22050) <= 2, "48k output for 1 s consumed " + src.Next + " source samples");
            for (int i = 2; i < 96000; i += 2)
            {
                Check(outBuf[i] == outBuf[i + 1], "both channels carry the same sample");
                float step = outBuf[i] - outBuf[i - 2];
                Check(step > 0 && step < 1e-5f * 22050 / 48000 * 1.01f, "ramp stays monotonic and linear at " + i);
            }
            var empty = new Ramp { Limit = 0 };
            var z = new float[] { 9, 9, 9, 9 };
            Check(new LinearResampler(22050, 44100).Process(z, 0, 4, 1, empty) == 0 && z[0] == 0 && z[3] == 0, "underrun gives zeros");
        }

        private static byte[] Pcm(int samples, short value)
        {
            var b = new byte[samples * 2];
            for (int i = 0; i < samples; i++) { b[2 * i] = (byte)value; b[2 * i + 1] = (byte)(value >> 8); }
            return b;
        }

        private static void JitterClock()
        {
            var jb = new AudioJitterBuffer(160, 22050);   // output rate == source rate: 1 output sample = 1 pts
            var outBuf = new float[882];
            Check(jb.Read(outBuf, 0, 882, 1) == 0 && jb.Clock.Pts == -1, "silent and no clock before data");
            jb.Write(1000, 1, Pcm(882, 16384), 0, 882);
            jb.Write(1882, 1, Pcm(882, 16384), 0, 882);
            Check(jb.Read(outBuf, 0, 882, 1) == 0 && jb.IsBuffering, "80 ms < 160 ms target: still buffering");
            jb.Write(2764, 1, Pcm(882, 16384), 0, 882);
            jb.Write(3646, 1, Pcm(882, 16384), 0, 882);
            Check(jb.Read(outBuf, 0, 441, 1) == 441, "plays once the target is buffered");
            Check(Math.Abs(outBuf[100] - 0.5f) < 1e-4, "PCM16 scaled to float");
            long pts = jb.Clock.Pts;
            Check(pts >= 1000 + 439 && pts <= 1000 + 442, "clock = pts of samples played (" + pts + ")");
            jb.Read(outBuf, 0, 882, 1);
            Check(jb.Clock.Pts >= 1000 + 1321 && jb.Clock.Pts <= 1000 + 1324, "clock advances by samples played");
            long played = jb.Clock.SamplesPlayed;
            var jb48 = new AudioJitterBuffer(0, 48000);
            for (int i = 0; i < 30; i++) jb48.Write(i * 882, 1, Pcm(882, 100), 0, 882);
            var b48 = new float[960 * 2];
            for (int i = 0; i < 50; i++) jb48.Read(b48, 0, 960, 2);   // one second at 48 kHz stereo
            Check(Math.Abs(jb48.Clock.Pts - 22050) <= 3, "one second at 48 kHz advances the clock by 22050 (" + jb48.Clock.Pts + ")");
            Check(played > 0, "samples counted");
        }

        private static void JitterUnderrun()
        {
            var jb = new AudioJitterBuffer(0, 22050);
            jb.Write(0, 1, Pcm(882, 1000), 0, 882);
            var outBuf = new float[2000];
            Check(jb.Read(outBuf, 0, 2000, 1) < 2000 && outBuf[1999] == 0 && jb.Underruns == 1, "underrun pads zeros");
            long stalled = jb.Clock.Pts;
            jb.Read(outBuf, 0, 2000, 1);
            Check(jb.Clock.Pts == stalled, "zeros do not advance the clock");
            jb.Write(882, 1, Pcm(882, 1000), 0, 882);
            jb.Flush();
            Check(jb.BufferedMs == 0 && jb.Read(outBuf, 0, 100, 1) == 0, "flush empties the buffer");
            var tiny = new AudioJitterBuffer(1000, 22050);
            tiny.Write(0, 2, Pcm(882, 1000), 0, 882);
            Check(tiny.Read(outBuf, 0, 100, 1) == 0, "short tail waits for the target");
            tiny.Drain();
            Check(tiny.Read(outBuf, 0, 100, 1) == 100, "drain lets the tail of an utterance play");
            var small = new AudioJitterBuffer(0, 22050, 1);
            for (int i = 0; i < 30; i++) small.Write(i * 882, 1, Pcm(882, 1), 0, 882);
            Check(small.Overflows == 5, "a full ring drops and counts (" + small.Overflows + ")");
        }

        private static void VideoQueue()
        {
            var q = new VideoFrameQueue(10);
            for (int i = 0; i < 5; i++) q.Push(new VideoFrame { Pts = i * 882, Utt = 1 });
            Check(q.TakeDue(-1) == null, "nothing due before the clock starts");
            VideoFrame f = q.TakeDue(882 * 2 + 10);
            Check(f != null && f.Pts == 882 * 2 && q.DroppedLate == 2, "newest due frame, older ones dropped as late");
            Check(q.TakeDue(882 * 2 + 20) == null, "starved: nothing new (the caller holds the last frame)");
            q.Push(new VideoFrame { Pts = 100, Utt = 2 });
            q.Push(new VideoFrame { Pts = 99999, Utt = 2 });
            q.Flush(2);
            Check(q.Count == 2, "flush by utterance keeps the others");
            for (int i = 0; i < 20; i++) q.Push(new VideoFrame { Pts = 100000 + i, Utt = 3 });
            Check(q.Count == 10 && q.DroppedOverflow == 12, "capacity bounds the queue");
        }

        private static void JsonStrict()
        {
            var m = (MsgMap)JsonReader.Parse("\uFEFF {\"a\": [1, -2.5e1, true, false, null, \"x\\u00e9\\ud83d\\ude42\\n\"], \"b\": {}, \"c\": 9223372036854775808}");
            var a = (List<object>)m["a"];
            Check((long)a[0] == 1 && (double)a[1] == -25.0 && (bool)a[2] && !(bool)a[3] && a[4] == null, "scalars decode to the msgpack value set");
            Check((string)a[5] == "x\u00e9\U0001F642\n", "escapes and surrogate pairs");
            Check(((MsgMap)m["b"]).Count == 0 && m["c"] is double, "empty object; an integer beyond long is a double");
            Check(m.Keys_[0] == "a" && m.Keys_[2] == "c", "key order kept");
            string[] bad =
            {
                "", "{", "{\"a\": 1,}", "[1,]", "{\"a\" 1}", "{'a': 1}", "[01]", "[1.]", "[.5]", "[+1]", "[NaN]", "[Infinity]",
                "\"tab\there\"", "\"\\x\"", "\"\\u12\"", "{\"a\": 1, \"a\": 2}", "[1] [2]", "tru", "nul", "[1e400]",
            };
            foreach (string b in bad)
            {
                bool threw = false;
                try { JsonReader.Parse(b); } catch (JsonException) { threw = true; }
                Check(threw, "rejected: " + b);
            }
            var deep = new string('[', 100) + new string(']', 100);
            bool deepThrew = false;
            try { JsonReader.Parse(deep); } catch (JsonException) { deepThrew = true; }
            Check(deepThrew, "nesting depth limited");
            try { JsonReader.Parse("{\n  \"a\": 1\n  \"b\": 2}"); Check(false, "missing comma accepted"); }
            catch (JsonException e) { Check(e.Line == 3 && e.Column == 3, "error position line " + e.Line + " col " + e.Column); }
            bool utf8 = false;
            try { JsonReader.Parse(new byte[] { 0x22, 0xe9, 0x22 }); } catch (JsonException) { utf8 = true; }
            Check(utf8, "invalid UTF-8 rejected");
        }

        private static void PlayoutMap()
        {
            // 1 output frame = 1 pts unit (rates equal) to keep the arithmetic visible.
            var map = new StreamPlayoutMap(100, 22050, 22050, 8);
            Check(map.PtsAt(0) == -1, "nothing known yet");
            map.Record(40, 0, -1);                 // 40 frames of silence before any audio
            Check(map.PtsAt(10) == -1, "silence before the first sample: no clock");
            map.Record(40, 40, 1040);              // frames 40..79 hold pts 1000..1039
            Check(map.PtsAt(40) == 1000 && map.PtsAt(65) == 1025, "pts of the sample at the play position");
            Check(map.LeadFrames(50) == 30, "lead = written - played");
            map.Record(40, 10, 1050);              // frames 80..99,0..19: 10 real then zeros, wraps the clip end
            Check(map.PtsAt(85) == 1045 && map.PtsAt(95) == 1050 && map.PtsAt(5) == 1050, "underrun zeros hold the clock, across the wrap");
            Check(map.PtsAt(20) == 1050, "caught up with the write head: the newest clock");
            map.SetPosition(0);                    // a seek / loop: position 0 is written again
            map.Record(20, 20, 2020);
            Check(map.PtsAt(10) == 2010, "the newest chunk at a position wins");
            map.Reset();
            Check(map.PtsAt(10) == -1 && map.WritePosition == 0, "reset forgets");
        }

        private static void WriteValue(MsgPackWriter w, Random r, object canonical)
        {
            // mostly the canonical value, sometimes another type or an edge value
            switch (r.Next(60))
            {
                case 0: w.Write(-1L); return;
                case 1: w.Write(1.0); return;
                case 2: w.Write("7"); return;
                case 3: w.Write(true); return;
                case 4: w.WriteNil(); return;
                case 5: w.Write((long)r.Next(0, 5000)); return;
                case 6: w.Write(long.MaxValue); return;
                default: w.WriteValue(canonical); return;
            }
        }

        private static void FastMediaFuzz()
        {
            var r = new Random(2612);
            string[] types = { "audio", "video", "motion", "state", "vid", "" };
            var fields = new Dictionary<string, object>
            {
                { "v", (long)ProtocolV1.Version }, { "session", "s1" }, { "utt", 3L }, { "seq", 10L }, { "pts", 882L }, { "sample_rate", 22050L },
                { "samples", 882L }, { "width", 4L }, { "height", 2L }, { "format", "rgb24" }, { "channels", 5L }, { "extra", 1L },
            };
            var keys = new List<string>(fields.Keys);
            int accepted = 0;
            for (int n = 0; n < 20000; n++)
            {
                string type = types[r.Next(types.Length)];
                var chosen = new List<string> { "v", "session", "utt", "seq", "pts" };
                foreach (string k in keys) if (!chosen.Contains(k) && r.Next(4) == 0) chosen.Add(k);
                if (r.Next(6) == 0) chosen.RemoveAt(r.Next(chosen.Count));
                if (r.Next(20) == 0) chosen.Add(chosen[r.Next(chosen.Count)]);   // a duplicate key
                var w = new MsgPackWriter();
                w.WriteMapHeader(chosen.Count + 1);
                w.Write("type"); if (r.Next(10) == 0) w.Write(5L); else w.Write(type);
                foreach (string k in chosen)
                {
                    w.Write(k);
                    object canonical = fields[k];
                    if (k == "format" && r.Next(3) == 0) canonical = r.Next(2) == 0 ? "rgba32" : "bgr";
                    if (k == "session" && r.Next(8) == 0) canonical = "s2";
                    WriteValue(w, r, canonical);
                }
                byte[] header = w.ToArray();
                MediaHeader h;
                bool fast = FastMediaHeader.TryParse(header, 0, header.Length, System.Text.Encoding.ASCII.GetBytes("s1"), out h);
                long payload = fast ? h.ExpectedPayload : r.Next(0, 40);
                if (payload < 0 || payload > 1 << 20) continue;
                var frames = new List<byte[]> { System.Text.Encoding.ASCII.GetBytes("xs2/k1"), header, new byte[payload] };
                MediaPacket p = null;
                try { byte[] data; p = ProtocolCodec.DecodeMedia(frames, out data); }
                catch (ProtocolException) { }
                if (!fast) continue;
                accepted++;
                Check(p != null, "fast path accepted a header the validator refuses: " + JsonOut.Hex(header));
                Check(p.Utt == h.Utt && p.Seq == h.Seq && p.Pts == h.Pts && p.Session == "s1", "same utt/seq/pts " + JsonOut.Hex(header));
                var a = p as AudioPacket; var v = p as VideoPacket; var mo = p as MotionPacket;
                if (h.Kind == MediaHeader.Audio)
                    Check(a != null && (long)a.Fields["samples"] == h.Samples && (long)a.Fields["sample_rate"] == h.SampleRate, "same audio fields");
                else if (h.Kind == MediaHeader.Video) Check(v != null && v.Width == h.Width && v.Height == h.Height && v.BytesPerPixel == h.BytesPerPixel, "same video fields");
                else Check(mo != null && mo.Channels == h.Channels, "same motion fields");
            }
            Check(accepted > 300, "the fuzz reached the fast path (" + accepted + " accepted)");
        }

        private static void MotionQueue()
        {
            var q = new MotionFrameQueue();
            var payload = new byte[12];
            for (int i = 0; i < 3; i++)
            {
                Buffer.BlockCopy(BitConverter.GetBytes(0.25f * (i + 1)), 0, payload, 4 * i, 4);
            }
            q.PushFloat32(1764, 1, 2, payload, 0, 3);
            q.PushFloat32(882, 1, 1, payload, 0, 2);
            q.PushFloat32(2646, 2, 3, payload, 4, 2);
            var dst = new float[8];
            int count; long pts;
            Check(!q.TryGetDue(881, dst, out count, out pts), "nothing due before the first pts");
            Check(q.TryGetDue(1000, dst, out count, out pts) && pts == 882 && count == 2 && dst[0] == 0.25f && dst[1] == 0.5f, "first frame due");
            Check(q.TryGetDue(2000, dst, out count, out pts) && pts == 1764 && count == 3 && dst[2] == 0.75f, "newest due frame");
            Check(q.TryGetDue(2000, dst, out count, out pts) && pts == 1764, "a second reader at the same clock sees the same frame");
            Check(q.Count == 2, "older frames recycled, the due one kept");
            q.Flush(2);
            Check(q.Count == 1 && !q.TryGetDue(1000, dst, out count, out pts), "flush of utterance 2 keeps utterance 1");
            Check(q.TryGetDue(5000, dst, out count, out pts) && pts == 1764, "utterance 2's frame is gone");
        }
    }
}
