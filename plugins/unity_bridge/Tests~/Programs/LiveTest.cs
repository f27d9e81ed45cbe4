// Live end-to-end check against a real daemon: connect, open with a portrait, set the persona, say, lose the
// connection mid-reply (the session is resumed with its secret on a new one and the reply goes on), interrupt,
// survive a restart mid-reply (the session is opened again, the running reply ends with UtteranceLost, ids
// continue), dispose within a bound, then a second core in the same process (a second Play in the editor)
// connects, speaks and receives media.
// It prints facts as "TAG {json}" lines; tests/test_unity_live.py asserts on them and restarts the daemon
// when it reads "RESTART_ME". A playout thread plays the audio in real time (48 kHz, 20 ms blocks) and
// shows video frames by the audio clock, exactly as the Unity components do.
// Usage: mono LiveTest.exe CONTROL_ENDPOINT PORTRAIT_FILE
using System;
using System.Collections.Generic;
using System.Diagnostics;
using System.Threading;
using Xstreamer.Avatar.Core;

namespace Xstreamer.Avatar.Tests
{
    /// <summary>The real transport, whose connection the test can drop (as a network fault would): the next Poll throws.</summary>
    internal sealed class DroppableTransport : ITransport
    {
        private readonly ZmtpTransport _inner = new ZmtpTransport(new ZmtpOptions());
        public volatile bool DropNow;
        public void ConnectControl(string endpoint) { _inner.ConnectControl(endpoint); }
        public void ConnectMedia(string endpoint) { _inner.ConnectMedia(endpoint); }
        public void CloseSockets() { _inner.CloseSockets(); }
        public void Subscribe(byte[] topic) { _inner.Subscribe(topic); }
        public bool SendControl(IList<byte[]> frames) { return _inner.SendControl(frames); }
        public TransportReady Poll(int timeoutMs)
        {
            if (DropNow) { DropNow = false; throw new TransportException("test: the connection dropped"); }
            return _inner.Poll(timeoutMs);
        }
        public bool TryReceiveControl(out List<byte[]> frames) { return _inner.TryReceiveControl(out frames); }
        public bool TryReceiveMedia(out List<byte[]> frames) { return _inner.TryReceiveMedia(out frames); }
        public void Dispose() { _inner.Dispose(); }
    }

    internal static class LiveTest
    {
        private static DroppableTransport _transport;
        private sealed class Rec { public string Type, Session; public long Utt, Pts, Seq; public int Samples; public long AfterInterrupt; }

        private static readonly object Lock = new object();
        private static readonly List<Rec> Media = new List<Rec>();
        private static readonly List<AvatarEvent> Events = new List<AvatarEvent>();
        private static readonly List<string> Shown = new List<string>();   // "pts<=clock" checks
        private static long _interruptedUtt = -1;

        private static void Log(string tag, string json) { Console.WriteLine(tag + " " + json); Console.Out.Flush(); }

        private sealed class Player
        {
            public volatile bool Stop;
            public Thread Thread;
        }

        private static AvatarStreamCore NewCore(string endpoint, byte[] portrait, out Player player)
        {
            var opt = new AvatarStreamOptions
            {
                ControlEndpoint = endpoint, ClientName = "xstreamer-unity-livetest", JitterTargetMs = 80,
                Persona = new Persona { Name = "Npc", Model = "tiny" }, Portrait = portrait, HelloTimeoutMs = 2000,
                LivenessTimeoutMs = 3000, OpenTimeoutMs = 120000,
                TransportFactory = () => _transport = new DroppableTransport(),
            };
            var core = new AvatarStreamCore(opt);
            core.MediaObserver = (p, payload) =>
            {
                var a = p as AudioPacket;
                lock (Lock) Media.Add(new Rec { Type = p.Type, Session = p.Session, Utt = p.Utt, Pts = p.Pts, Seq = p.Seq, Samples = a != null ? a.Samples : 0,
                                                AfterInterrupt = Interlocked.Read(ref _interruptedUtt) });
            };
            var pl = new Player();
            pl.Thread = new Thread(() => Playout(core, pl)) { IsBackground = true };
            core.Start();
            pl.Thread.Start();
            player = pl;
            return core;
        }

        /// <summary>Stop the playout, dispose the core; returns the Dispose time in ms.</summary>
        private static long StopCore(AvatarStreamCore core, Player player)
        {
            player.Stop = true;
            player.Thread.Join(1000);
            var sw = Stopwatch.StartNew();
            core.Dispose();
            return sw.ElapsedMilliseconds;
        }

        /// <summary>Whether a libzmq is loaded: /proc/self/maps on Linux, the process's modules on Windows.</summary>
        private static bool ZmqLoaded()
        {
            try { if (System.IO.File.Exists("/proc/self/maps")) return System.IO.File.ReadAllText("/proc/self/maps").Contains("libzmq"); }
            catch (Exception) { }
            try
            {
                foreach (ProcessModule m in Process.GetCurrentProcess().Modules)
                    if (m.ModuleName.IndexOf("zmq", StringComparison.OrdinalIgnoreCase) >= 0) return true;
            }
            catch (Exception) { }
            return false;
        }

        private static string Errors()
        {
            var list = new List<string>();
            lock (Lock) foreach (AvatarEvent e in Events) if (e.Kind == AvatarEventKind.Error || e.Kind == AvatarEventKind.SessionClosed || e.Kind == AvatarEventKind.UtteranceLost) list.Add(JsonOut.Str(e.ToString()));
            return "[" + string.Join(", ", list.ToArray()) + "]";
        }

        private static int Main(string[] args)
        {
            byte[] portrait = System.IO.File.ReadAllBytes(args[1]);
            Player player;

            // No daemon at all (nothing listens on port 1): one `unavailable` error for the outage, not one per retry.
            var none = new AvatarStreamCore(new AvatarStreamOptions { ControlEndpoint = "tcp://127.0.0.1:1", HelloTimeoutMs = 300, ReconnectDelayMs = 50 });
            none.Start();
            Thread.Sleep(2500);
            var noneErrors = new List<string>();
            bool connected = false;
            AvatarEvent ne;
            while (none.TryDequeueEvent(out ne))
            {
                if (ne.Kind == AvatarEventKind.Error) noneErrors.Add(JsonOut.Str(ne.Code + ": " + ne.Text));
                if (ne.Kind == AvatarEventKind.ConnectionChanged && ne.State == ConnectionState.Connected) connected = true;
            }
            none.Dispose();
            Log("NO_DAEMON", "{\"errors\": [" + string.Join(", ", noneErrors.ToArray()) + "], \"connected\": " + (connected ? "true" : "false") + "}");

            // The portrait travels with open: a broken one is refused by the daemon (typed error, no session).
            AvatarStreamCore bad = NewCore(args[0], System.Text.Encoding.ASCII.GetBytes("this is not an image"), out player);
            try
            {
                AvatarEvent err = WaitEvent(bad, e => e.Kind == AvatarEventKind.Error || (e.Kind == AvatarEventKind.ConnectionChanged && e.State == ConnectionState.Ready), 120000);
                Log("BAD_PORTRAIT", "{\"kind\": " + JsonOut.Str(err.Kind.ToString()) + ", \"code\": " + JsonOut.Value(err.Code) + "}");
            }
            catch (Exception e) { Log("FAIL", "{\"error\": " + JsonOut.Str("bad portrait: " + e) + "}"); return 1; }
            StopCore(bad, player);
            lock (Lock) Events.Clear();

            AvatarStreamCore core = NewCore(args[0], portrait, out player);
            Log("PORTRAIT", "{\"bytes\": " + portrait.Length + "}");
            int rc = 1;
            try { rc = Scenario(core); }
            catch (Exception e) { Log("FAIL", "{\"error\": " + JsonOut.Str(e.ToString()) + "}"); }
            string lastSession = core.Session;
            long ms = StopCore(core, player);
            Log("DISPOSED", "{\"state\": " + JsonOut.Str(core.State.ToString()) + ", \"ms\": " + ms +
                ", \"closed_cleanly\": " + (core.ClosedCleanly ? "true" : "false") + "}");
            if (rc != 0) return rc;

            // A second Play in the same process: a fresh core must connect, open, speak and get media.
            rc = 1;
            AvatarStreamCore second = NewCore(args[0], portrait, out player);
            try { rc = SecondPlay(second, lastSession); }
            catch (Exception e) { Log("FAIL", "{\"error\": " + JsonOut.Str("second core: " + e) + "}"); }
            ms = StopCore(second, player);
            Log("NATIVE", "{\"libzmq_mapped\": " + (ZmqLoaded() ? "true" : "false") + ", \"os\": " +
                JsonOut.Str(Environment.OSVersion.Platform.ToString()) + ", \"runtime\": " +
                JsonOut.Str(Type.GetType("Mono.Runtime") != null ? "mono" : "dotnet " + Environment.Version) + "}");
            Log("SECOND_DISPOSED", "{\"state\": " + JsonOut.Str(second.State.ToString()) + ", \"ms\": " + ms +
                ", \"closed_cleanly\": " + (second.ClosedCleanly ? "true" : "false") + "}");
            return rc;
        }

        private static int SecondPlay(AvatarStreamCore core, string firstSession)
        {
            lock (Lock) { Events.Clear(); Shown.Clear(); }
            var sw = Stopwatch.StartNew();
            WaitEvent(core, e => e.Kind == AvatarEventKind.ConnectionChanged && e.State == ConnectionState.Ready, 120000);
            long readyMs = sw.ElapsedMilliseconds;
            string session = core.Session;
            long utt = SayAndWaitAck(core, "Hello again, traveller.");
            WaitEvent(core, e => e.Kind == AvatarEventKind.UtteranceEnd && e.Utt == utt, 120000);
            WaitPlayed(core, utt, session);
            Log("SECOND", "{\"session\": " + JsonOut.Str(session) + ", \"first_session\": " + JsonOut.Str(firstSession) +
                ", \"ready_ms\": " + readyMs + ", \"errors\": " + Errors() + ", \"summary\": " + Summary(utt, session) + "}");
            return 0;
        }

        private static void Playout(AvatarStreamCore core, Player player)
        {
            var buf = new float[960 * 2];
            var sw = Stopwatch.StartNew();
            long blocks = 0;
            while (!player.Stop)
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
                var motion = new List<string>();
                foreach (Rec r in Media)
                {
                    if (r.Utt != utt || r.Session != session) continue;
                    if (r.Type == "audio") audio.Add("[" + r.Pts + ", " + r.Samples + ", " + r.Seq + "]");
                    if (r.Type == "video") video.Add("[" + r.Pts + ", " + r.Seq + "]");
                    if (r.Type == "motion") motion.Add(r.Pts.ToString());
                }
                foreach (string s in Shown) if (s.StartsWith(utt + ":")) shown.Add("[" + s.Substring(s.IndexOf(':') + 1).Replace(":", ", ") + "]");
                var kinds = new List<string>();
                foreach (AvatarEvent e in Events) if (e.Utt == utt) kinds.Add(JsonOut.Str(e.Kind.ToString()));
                parts.Add("\"utt\": " + utt);
                parts.Add("\"session\": " + JsonOut.Str(session));
                parts.Add("\"audio\": [" + string.Join(", ", audio.ToArray()) + "]");
                parts.Add("\"video\": [" + string.Join(", ", video.ToArray()) + "]");
                parts.Add("\"shown\": [" + string.Join(", ", shown.ToArray()) + "]");
                parts.Add("\"motion\": [" + string.Join(", ", motion.ToArray()) + "]");
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
            Log("READY", "{\"session\": " + JsonOut.Str(session1) + ", \"motion_channels\": " + core.MotionChannels.Length + "}");

            // 0. Replace the persona of the open session: acked, no error.
            long preq = core.SetPersona(new Persona
            {
                Name = "Ada", SystemPrompt = "You are Ada, the village guide. Answer in one short sentence.",
                Greeting = "Welcome!", Voice = "joe", Model = "tiny",
            });
            AvatarEvent pack = WaitEvent(core, e => (e.Kind == AvatarEventKind.Ack && e.Req == preq) || e.Kind == AvatarEventKind.Error, 30000);
            Log("PERSONA", "{\"req\": " + preq + ", \"acked\": " + (pack.Kind == AvatarEventKind.Ack ? "true" : "false") +
                ", \"session\": " + JsonOut.Str(core.Session) + ", \"errors\": " + Errors() + "}");

            // 1. A sentence: audio + video in step, played by the clock.
            long utt1 = SayAndWaitAck(core, "Hello there, traveller. Welcome to our village.");
            WaitEvent(core, e => e.Kind == AvatarEventKind.UtteranceEnd && e.Utt == utt1, 120000);
            WaitPlayed(core, utt1, session1);
            Log("SAY", Summary(utt1, session1));
            var sw = Stopwatch.StartNew();

            // 1b. The connection drops mid-reply (the daemon keeps running): a new connection resumes the
            // session with the secret of its opened; the reply goes on and ends on the same session.
            long uttR = SayAndWaitAck(core, "This reply goes on while the connection is dropped and taken up again.");
            WaitEvent(core, e => e.Kind == AvatarEventKind.UtteranceStart && e.Utt == uttR, 60000);
            sw.Restart();
            while (sw.ElapsedMilliseconds < 30000 && CountAudio(uttR) < 3) Thread.Sleep(5);
            int lostBefore = core.PacketsLost;
            _transport.DropNow = true;
            AvatarEvent reopened = WaitEvent(core, e => e.Kind == AvatarEventKind.SessionOpened, 60000);
            AvatarEvent endR = WaitEvent(core, e => (e.Kind == AvatarEventKind.UtteranceEnd || e.Kind == AvatarEventKind.UtteranceLost) && e.Utt == uttR, 120000);
            WaitPlayed(core, uttR, session1);
            Log("RESUMED", "{\"utt\": " + uttR + ", \"session\": " + JsonOut.Str(reopened.Session) + ", \"resumed\": " + (reopened.Resumed ? "true" : "false") +
                ", \"end\": " + JsonOut.Str(endR.Kind.ToString()) + ", \"resumes\": " + core.Resumes + ", \"reopens\": " + core.Reopens +
                ", \"lost_packets\": " + (core.PacketsLost - lostBefore) + ", \"errors\": " + Errors() + "}");
            lock (Lock) Events.Clear();   // the dropped connection's transport error is expected

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
            Log("INTERRUPT", "{\"utt\": " + utt2 + ", \"errors\": " + Errors() + ", \"audio_after_interrupted\": " + after + ", \"playing_utt\": " + core.Audio.PlayingUtt + ", \"discarded\": " + core.PacketsDiscarded +
                ", \"summary\": " + Summary(utt2, session1) + "}");

            // 3. Daemon restart mid-reply: the wrapper kills and restarts it; we must reconnect, open the session
            // again (the reply that was running ends with UtteranceLost, ids continue after it) and speak again.
            lock (Lock) Shown.Clear();
            long uttL = SayAndWaitAck(core, "This long reply is cut off by a daemon restart, so it never ends on its own, " +
                                            "and the client must end it itself when the session comes back.");
            WaitEvent(core, e => e.Kind == AvatarEventKind.UtteranceStart && e.Utt == uttL, 60000);
            sw.Restart();
            while (sw.ElapsedMilliseconds < 30000 && CountAudio(uttL) < 3) Thread.Sleep(5);
            Log("RESTART_ME", "{}");
            WaitEvent(core, e => e.Kind == AvatarEventKind.ConnectionChanged && e.State != ConnectionState.Ready, 60000);
            WaitEvent(core, e => e.Kind == AvatarEventKind.ConnectionChanged && e.State == ConnectionState.Ready, 180000);
            string session2 = core.Session;
            var lost = new List<string>();
            lock (Lock) foreach (AvatarEvent e in Events) if (e.Kind == AvatarEventKind.UtteranceLost) lost.Add("[" + e.Utt + ", " + JsonOut.Str(e.Text) + "]");
            long utt3 = SayAndWaitAck(core, "I am back.");
            WaitEvent(core, e => e.Kind == AvatarEventKind.UtteranceEnd && e.Utt == utt3, 120000);
            WaitPlayed(core, utt3, session2);
            Log("RESTARTED", "{\"session\": " + JsonOut.Str(session2) + ", \"reconnects\": " + core.Reconnects + ", \"reopens\": " + core.Reopens +
                ", \"running_utt\": " + uttL + ", \"lost\": [" + string.Join(", ", lost.ToArray()) + "]" +
                ", \"utt\": " + utt3 + ", \"errors\": " + Errors() + ", \"summary\": " + Summary(utt3, session2) + "}");
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
