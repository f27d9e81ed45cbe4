// Live end-to-end check against a real daemon: connect, open, say, interrupt, survive a restart.
// It prints facts as "TAG {json}" lines; tests/test_unity_live.py asserts on them and restarts the daemon
// when it reads "RESTART_ME". A playout thread plays the audio in real time (48 kHz, 20 ms blocks) and
// shows video frames by the audio clock, exactly as the Unity components do.
// Usage: mono LiveTest.exe CONTROL_ENDPOINT
using System;
using System.Collections.Generic;
using System.Diagnostics;
using System.Threading;
using Xstreamer.Avatar.Core;

namespace Xstreamer.Avatar.Tests
{
    internal static class LiveTest
    {
        private sealed class Rec { public string Type, Session; public long Utt, Pts, Seq; public int Samples; public long AfterInterrupt; }

        private static readonly object Lock = new object();
        private static readonly List<Rec> Media = new List<Rec>();
        private static readonly List<AvatarEvent> Events = new List<AvatarEvent>();
        private static readonly List<string> Shown = new List<string>();   // "pts<=clock" checks
        private static long _interruptedUtt = -1;
        private static volatile bool _stop;

        private static void Log(string tag, string json) { Console.WriteLine(tag + " " + json); Console.Out.Flush(); }

        private static int Main(string[] args)
        {
            var opt = new AvatarStreamOptions
            {
                ControlEndpoint = args[0], ClientName = "xstreamer-unity-livetest", JitterTargetMs = 80,
                Persona = new Persona { Name = "Npc", Model = "tiny" }, HelloTimeoutMs = 2000, LivenessTimeoutMs = 3000,
                OpenTimeoutMs = 120000,
            };
            var core = new AvatarStreamCore(opt);
            core.MediaObserver = (p, payload) =>
            {
                var a = p as AudioPacket;
                lock (Lock) Media.Add(new Rec { Type = p.Type, Session = p.Session, Utt = p.Utt, Pts = p.Pts, Seq = p.Seq, Samples = a != null ? a.Samples : 0,
                                                AfterInterrupt = Interlocked.Read(ref _interruptedUtt) });
            };
            var playout = new Thread(() => Playout(core)) { IsBackground = true };
            core.Start();
            playout.Start();
            int rc = 1;
            try { rc = Scenario(core); }
            catch (Exception e) { Log("FAIL", "{\"error\": " + JsonOut.Str(e.ToString()) + "}"); }
            _stop = true;
            var sw = Stopwatch.StartNew();
            core.Dispose();
            Log("DISPOSED", "{\"state\": " + JsonOut.Str(core.State.ToString()) + ", \"ms\": " + sw.ElapsedMilliseconds + "}");
            return rc;
        }

        private static void Playout(AvatarStreamCore core)
        {
            var buf = new float[960 * 2];
            var sw = Stopwatch.StartNew();
            long blocks = 0;
            while (!_stop)
            {
                core.Audio.Read(buf, 0, 960, 2);
                blocks++;
                long clock = core.Audio.Clock.Pts;
                VideoFrame f = clock < 0 ? null : core.Video.TakeDue(clock);
                if (f != null) lock (Lock) Shown.Add(f.Utt + ":" + f.Pts + ":" + clock);
                long wait = blocks * 20 - sw.ElapsedMilliseconds;
                if (wait > 0) Thread.Sleep((int)wait);
            }
        }

        private static AvatarEvent WaitEvent(AvatarStreamCore core, Func<AvatarEvent, bool> pred, int timeoutMs)
        {
            var sw = Stopwatch.StartNew();
            while (sw.ElapsedMilliseconds < timeoutMs)
            {
                AvatarEvent e;
                while (core.TryDequeueEvent(out e))
                {
                    lock (Lock) Events.Add(e);
                    if (Environment.GetEnvironmentVariable("XS_DEBUG") != null && e.Kind != AvatarEventKind.Text)
                        Log("DEBUG", "{\"event\": " + JsonOut.Str(e.ToString() + " " + e.State) + "}");
                    if (e.Kind == AvatarEventKind.Error) Log("EVENT_ERROR", "{\"code\": " + JsonOut.Str(e.Code) + ", \"text\": " + JsonOut.Str(e.Text) + "}");
                    if (pred(e)) return e;
                }
                Thread.Sleep(5);
            }
            throw new TimeoutException("no matching event within " + timeoutMs + " ms");
        }

        private static string Summary(long utt, string session)
        {
            var parts = new List<string>();
            lock (Lock)
            {
                var audio = new List<string>(); var video = new List<string>(); var shown = new List<string>();
                foreach (Rec r in Media)
                {
                    if (r.Utt != utt || r.Session != session) continue;
                    if (r.Type == "audio") audio.Add("[" + r.Pts + ", " + r.Samples + ", " + r.Seq + "]");
                    if (r.Type == "video") video.Add("[" + r.Pts + ", " + r.Seq + "]");
                }
                foreach (string s in Shown) if (s.StartsWith(utt + ":")) shown.Add("[" + s.Substring(s.IndexOf(':') + 1).Replace(":", ", ") + "]");
                var kinds = new List<string>();
                foreach (AvatarEvent e in Events) if (e.Utt == utt) kinds.Add(JsonOut.Str(e.Kind.ToString()));
                parts.Add("\"utt\": " + utt);
                parts.Add("\"session\": " + JsonOut.Str(session));
                parts.Add("\"audio\": [" + string.Join(", ", audio.ToArray()) + "]");
                parts.Add("\"video\": [" + string.Join(", ", video.ToArray()) + "]");
                parts.Add("\"shown\": [" + string.Join(", ", shown.ToArray()) + "]");
                parts.Add("\"events\": [" + string.Join(", ", kinds.ToArray()) + "]");
            }
            return "{" + string.Join(", ", parts.ToArray()) + "}";
        }

        private static long SayAndWaitAck(AvatarStreamCore core, string text)
        {
            long req = core.Say(text);
            AvatarEvent ack = WaitEvent(core, e => e.Kind == AvatarEventKind.Ack && e.Req == req, 30000);
            return ack.Utt;
        }

        private static int Scenario(AvatarStreamCore core)
        {
            WaitEvent(core, e => e.Kind == AvatarEventKind.ConnectionChanged && e.State == ConnectionState.Ready, 120000);
            string session1 = core.Session;
            Log("READY", "{\"session\": " + JsonOut.Str(session1) + "}");

            // 1. A sentence: audio + video in step, played by the clock.
            long utt1 = SayAndWaitAck(core, "Hello there, traveller. Welcome to our village.");
            WaitEvent(core, e => e.Kind == AvatarEventKind.UtteranceEnd && e.Utt == utt1, 120000);
            WaitPlayed(core, utt1, session1);
            Log("SAY", Summary(utt1, session1));
            var sw = Stopwatch.StartNew();

            // 2. Interrupt a long reply shortly after its first audio.
            long utt2 = SayAndWaitAck(core, "Let me tell you a very long story about the old mill by the river, the miller, his three sons, " +
                                           "the great flood of the northern valley and the bridge that was built after it, stone by stone.");
            WaitEvent(core, e => e.Kind == AvatarEventKind.UtteranceStart && e.Utt == utt2, 60000);
            sw.Restart();
            while (sw.ElapsedMilliseconds < 30000 && CountAudio(utt2) < 3) Thread.Sleep(5);
            core.Interrupt();
            WaitEvent(core, e => e.Kind == AvatarEventKind.Interrupted && e.Utt == utt2, 30000);
            Interlocked.Exchange(ref _interruptedUtt, utt2);
            Thread.Sleep(1500);
            int after = 0;
            lock (Lock) foreach (Rec r in Media) if (r.Utt == utt2 && r.Session == session1 && r.AfterInterrupt == utt2 && r.Type == "audio") after++;
            Log("INTERRUPT", "{\"utt\": " + utt2 + ", \"audio_after_interrupted\": " + after + ", \"playing_utt\": " + core.Audio.PlayingUtt + ", \"discarded\": " + core.PacketsDiscarded +
                ", \"summary\": " + Summary(utt2, session1) + "}");

            // 3. Daemon restart: the wrapper kills and restarts it; we must reconnect and speak again.
            lock (Lock) Shown.Clear();
            Log("RESTART_ME", "{}");
            WaitEvent(core, e => e.Kind == AvatarEventKind.ConnectionChanged && e.State != ConnectionState.Ready, 60000);
            WaitEvent(core, e => e.Kind == AvatarEventKind.ConnectionChanged && e.State == ConnectionState.Ready, 180000);
            string session2 = core.Session;
            long utt3 = SayAndWaitAck(core, "I am back.");
            WaitEvent(core, e => e.Kind == AvatarEventKind.UtteranceEnd && e.Utt == utt3, 120000);
            WaitPlayed(core, utt3, session2);
            Log("RESTARTED", "{\"session\": " + JsonOut.Str(session2) + ", \"reconnects\": " + core.Reconnects + ", \"summary\": " + Summary(utt3, session2) + "}");
            return 0;
        }

        /// <summary>Wait (max 20 s) until the playout clock has passed the utterance's last audio packet.</summary>
        private static void WaitPlayed(AvatarStreamCore core, long utt, string session)
        {
            long end = -1;
            lock (Lock) foreach (Rec r in Media) if (r.Utt == utt && r.Session == session && r.Type == "audio") end = Math.Max(end, r.Pts + r.Samples);
            var sw = Stopwatch.StartNew();
            while (sw.ElapsedMilliseconds < 20000 && core.Audio.Clock.Pts < end) Thread.Sleep(10);
            Thread.Sleep(100);
        }

        private static int CountAudio(long utt)
        {
            int n = 0;
            lock (Lock) foreach (Rec r in Media) if (r.Utt == utt && r.Type == "audio") n++;
            return n;
        }
    }
}
