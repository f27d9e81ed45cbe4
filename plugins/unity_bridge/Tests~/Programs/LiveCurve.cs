// The C# core against a live daemon that serves with CURVE (`xstreamer serve --keys DIR`, ironhouse): with the
// daemon's public key and an authorized client's secret certificate (the bundle `xstreamer keys client` writes)
// it opens a session and hears a reply; with a key the daemon does not list, or with no keys, it gets a typed
// transport error and never a welcome. Prints "TAG {json}" lines for tests/test_unity_live.py.
// Usage: mono LiveCurve.exe CONTROL_ENDPOINT SERVER_KEY CLIENT_SECRET REVOKED_CLIENT_SECRET
using System;
using System.Collections.Generic;
using System.Diagnostics;
using System.Threading;
using Xstreamer.Avatar.Core;

namespace Xstreamer.Avatar.Tests
{
    internal static class LiveCurve
    {
        private static void Log(string tag, string json) { Console.WriteLine(tag + " " + json); Console.Out.Flush(); }

        private sealed class Run
        {
            public readonly List<string> Errors = new List<string>();
            public bool Welcomed, Ready, Ended;
            public long Utt = -1;
        }

        /// <summary>Run a core for at most `ms` (until its reply ended when `speak`); collect what happened.</summary>
        private static Run Try(string endpoint, CurveKeys keys, bool speak, int ms)
        {
            var r = new Run();
            var core = new AvatarStreamCore(new AvatarStreamOptions
            {
                ControlEndpoint = endpoint, Curve = keys, Persona = new Persona { Name = "Npc", Model = "tiny" },
                HelloTimeoutMs = 2000, OpenTimeoutMs = 120000,
            });
            core.Start();
            long req = -1;
            var sw = Stopwatch.StartNew();
            try
            {
                while (sw.ElapsedMilliseconds < ms && !r.Ended)
                {
                    AvatarEvent e;
                    while (core.TryDequeueEvent(out e))
                    {
                        if (e.Kind == AvatarEventKind.Error) r.Errors.Add(e.Code + ": " + e.Text);
                        if (e.Kind == AvatarEventKind.ConnectionChanged && e.State == ConnectionState.Connected) r.Welcomed = true;
                        if (e.Kind == AvatarEventKind.ConnectionChanged && e.State == ConnectionState.Ready)
                        {
                            r.Ready = true;
                            if (speak) req = core.Say("A secret hello.");
                        }
                        if (e.Kind == AvatarEventKind.Ack && e.Req == req) r.Utt = e.Utt;
                        if (e.Kind == AvatarEventKind.UtteranceEnd && e.Utt == r.Utt) r.Ended = true;
                    }
                    Thread.Sleep(10);
                }
                Log(speak ? "GOOD" : (keys == null ? "NO_KEYS" : "REVOKED"),
                    "{\"welcomed\": " + B(r.Welcomed) + ", \"ready\": " + B(r.Ready) + ", \"ended\": " + B(r.Ended) +
                    ", \"audio\": " + core.AudioPackets + ", \"video\": " + core.VideoFrames +
                    ", \"errors\": [" + string.Join(", ", r.Errors.ConvertAll(JsonOut.Str).ToArray()) + "]}");
            }
            finally { core.Dispose(); }
            return r;
        }

        private static string B(bool b) { return b ? "true" : "false"; }

        private static int Main(string[] args)
        {
            try
            {
                Try(args[0], CurveKeys.FromCertificates(args[1], args[2]), true, 180000);
                Try(args[0], CurveKeys.FromCertificates(args[1], args[3]), false, 6000);
                Try(args[0], null, false, 6000);
                return 0;
            }
            catch (Exception e)
            {
                Log("FAIL", "{\"error\": " + JsonOut.Str(e.ToString()) + "}");
                return 1;
            }
        }
    }
}
