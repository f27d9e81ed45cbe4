// A 3D NPC against a live daemon, on the UnityEngine stand-in: the Unity components (AvatarStreamClient,
// AvatarAudioOutput in FilterRead mode, AvatarBlendshapeOutput on a SkinnedMeshRenderer whose blendshapes carry
// ARKit names in a rig's spellings) run a frame loop the way Unity does (the mixer pulls 512-frame DSP buffers
// at 48 kHz in real time, then Update, then LateUpdate at ~60 fps) while a tap on the transport records every
// media packet as the full validator decodes it. It also opens a portrait whose face cannot be found: refused
// without its five points, opened with the inspector's points and with a studio export that carries them.
// Prints "TAG {json}" lines; tests/test_unity_live.py checks them against the tapped packets.
// Usage: mono LiveMotion.exe CONTROL_ENDPOINT MODEL NOFACE_PORTRAIT POINTS SETTINGS_FILE
//        POINTS: "x,y;x,y;x,y;x,y;x,y" (the portrait's pixels); SETTINGS_FILE: a studio Unity export of that
//        portrait with its points (or "-" to skip the face-point phases and open the gallery default).
using System;
using System.Collections.Generic;
using System.Diagnostics;
using System.Globalization;
using System.Text;
using System.Threading;
using UnityEngine;
using Xstreamer.Avatar;
using Xstreamer.Avatar.Core;

namespace Xstreamer.Avatar.Tests
{
    /// <summary>The real transport, with every media message it hands the core also decoded and recorded (the
    /// core still takes its allocation-free path: it sees a plain ITransport and copies into its own message).</summary>
    internal sealed class TapTransport : ITransport
    {
        public sealed class Packet { public string Type; public long Utt, Seq, Pts; public float[] Values; }

        private readonly ZmtpTransport _inner = new ZmtpTransport(new ZmtpOptions());
        public readonly List<Packet> Packets = new List<Packet>();
        public int Undecodable;

        public void ConnectControl(string endpoint) { _inner.ConnectControl(endpoint); }
        public void ConnectMedia(string endpoint) { _inner.ConnectMedia(endpoint); }
        public void CloseSockets() { _inner.CloseSockets(); }
        public void Subscribe(byte[] topic) { _inner.Subscribe(topic); }
        public bool SendControl(IList<byte[]> frames) { return _inner.SendControl(frames); }
        public TransportReady Poll(int timeoutMs) { return _inner.Poll(timeoutMs); }
        public bool TryReceiveControl(out List<byte[]> frames) { return _inner.TryReceiveControl(out frames); }
        public void Dispose() { _inner.Dispose(); }

        public bool TryReceiveMedia(out List<byte[]> frames)
        {
            if (!_inner.TryReceiveMedia(out frames)) return false;
            try
            {
                byte[] payload;
                MediaPacket p = ProtocolCodec.DecodeMedia(frames, out payload);
                var rec = new Packet { Type = p.Type, Utt = p.Utt, Seq = p.Seq, Pts = p.Pts };
                if (p is MotionPacket)
                {
                    rec.Values = new float[payload.Length / 4];
                    for (int i = 0; i < rec.Values.Length; i++) rec.Values[i] = BitConverter.ToSingle(payload, 4 * i);
                }
                lock (Packets) Packets.Add(rec);
            }
            catch (ProtocolException) { Interlocked.Increment(ref Undecodable); }
            return true;
        }
    }

    internal static class LiveMotion
    {
        // The face mesh: ARKit names as rigs spell them, each with the channel it must follow (null: none).
        private static readonly string[][] Shapes =
        {
            new[] { "blendShape1.jawOpen", "jawOpen" }, new[] { "mouthClose", "mouthClose" },
            new[] { "Face/mouthFunnel", "mouthFunnel" }, new[] { "MouthPucker", "mouthPucker" },
            new[] { "mouthSmile_L", "mouthSmileLeft" }, new[] { "mouthSmile.R", "mouthSmileRight" },
            new[] { "mouthStretchLeft", "mouthStretchLeft" }, new[] { "mouthStretchRight", "mouthStretchRight" },
            new[] { "mouthPressLeft", "mouthPressLeft" }, new[] { "mouthPressRight", "mouthPressRight" },
            new[] { "mouthRollUpper", "mouthRollUpper" }, new[] { "mouthRollLower", "mouthRollLower" },
            new[] { "EyeBlink_L", "eyeBlinkLeft" }, new[] { "EyeBlink_R", "eyeBlinkRight" },
            new[] { "eyeSquintLeft", "eyeSquintLeft" }, new[] { "eyeSquintRight", "eyeSquintRight" },
            new[] { "Brow_Raise", "browInnerUp" },            // through an override
            new[] { "browDownLeft", "browDownLeft" }, new[] { "browDownRight", "browDownRight" },
            new[] { "browOuterUpLeft", "browOuterUpLeft" }, new[] { "browOuterUpRight", "browOuterUpRight" },
            new[] { "tongueOut", null }, new[] { "headYaw", null },   // not driven (head channels drive no blendshape)
        };

        private const float HeadMeters = 0.1f;

        private static void Log(string tag, string json) { Console.WriteLine(tag + " " + json); Console.Out.Flush(); }

        private static string F(double v) { return v.ToString("R", CultureInfo.InvariantCulture); }

        private static Vector2[] ParsePoints(string s)
        {
            var list = new List<Vector2>();
            foreach (string pair in s.Split(';'))
            {
                string[] xy = pair.Split(',');
                list.Add(new Vector2(float.Parse(xy[0], CultureInfo.InvariantCulture), float.Parse(xy[1], CultureInfo.InvariantCulture)));
            }
            return list.ToArray();
        }

        /// <summary>One NPC and its frame loop.</summary>
        private sealed class Npc
        {
            public GameObject Go;
            public AvatarStreamClient Client;
            public AvatarAudioOutput Audio;
            public AvatarBlendshapeOutput Output;
            public SkinnedMeshRenderer Face;
            public Transform Head;
            public TapTransport Tap;
            public readonly List<string> Errors = new List<string>(), States = new List<string>();
            public readonly Dictionary<long, long> Acks = new Dictionary<long, long>();
            public readonly List<long> Ended = new List<long>();
            private readonly Stopwatch _clock = Stopwatch.StartNew();
            private long _framesOut;
            private readonly float[] _dsp = new float[512 * 2];

            /// <summary>Build the scene; `serialise` sets the client's inspector fields (before its OnEnable connects).</summary>
            public Npc(string name, Action<AvatarStreamClient> serialise, bool face)
            {
                Go = new GameObject(name);
                Client = StubHarness.Add<AvatarStreamClient>(Go, c =>
                {
                    StubHarness.Set(c, "latency", LatencyPreset.Low);
                    serialise(c);
                    c.TransportFactory = () => Tap = new TapTransport();
                    c.onError.AddListener(e => Errors.Add(e));
                    c.onConnectionState.AddListener(s => States.Add(s));
                    c.onUtteranceEnd.AddListener(u => Ended.Add(u));
                });
                if (Client.Core != null) Client.Core.Acked += (req, utt) => Acks[req] = utt;
                if (!face) return;
                Audio = StubHarness.Add<AvatarAudioOutput>(Go, null);
                Face = new GameObject("face").AddComponent<SkinnedMeshRenderer>();
                var names = new string[Shapes.Length];
                for (int i = 0; i < names.Length; i++) names[i] = Shapes[i][0];
                Face.sharedMesh = StubHarness.MakeMesh(names);
                Head = new GameObject("head").transform;
                Output = StubHarness.Add<AvatarBlendshapeOutput>(Go, o =>
                {
                    StubHarness.Set(o, "target", Face);
                    StubHarness.Set(o, "head", Head);
                    StubHarness.Set(o, "headTranslationMeters", HeadMeters);
                    StubHarness.Set(o, "overrides", new[] { new AvatarBlendshapeOutput.NameOverride { channel = "browInnerUp", blendShape = "Brow_Raise" } });
                });
            }

            /// <summary>One Unity frame: the mixer's DSP buffers due by now, then Update, then LateUpdate.</summary>
            public void Frame()
            {
                if (Audio != null)
                {
                    long want = _clock.ElapsedMilliseconds * 48;   // 48 kHz output
                    while (_framesOut + 512 <= want)
                    {
                        StubHarness.Send(Audio, "OnAudioFilterRead", _dsp, 2);
                        _framesOut += 512;
                    }
                    StubHarness.Send(Audio, "Update");
                }
                StubHarness.Send(Client, "Update");
                if (Output != null) StubHarness.Send(Output, "LateUpdate");
            }

            public bool Run(Func<bool> until, int timeoutMs)
            {
                var sw = Stopwatch.StartNew();
                while (sw.ElapsedMilliseconds < timeoutMs)
                {
                    Frame();
                    if (until()) return true;
                    Thread.Sleep(16);
                }
                return false;
            }

            public void Dispose()
            {
                Client.Shutdown();
                UnityEngine.Object.Destroy(Go);
            }
        }

        private static string Strs(IEnumerable<string> items)
        {
            var parts = new List<string>();
            foreach (string s in items) parts.Add(JsonOut.Str(s));
            return "[" + string.Join(", ", parts.ToArray()) + "]";
        }

        private static int Main(string[] args)
        {
            string endpoint = args[0], model = args[1], noFace = args[2], settings = args[4];
            Vector2[] points = ParsePoints(args[3]);
            StubHarness.OutputSampleRate = 48000;
            StubHarness.SetDspBuffer(512, 2);
            try
            {
                if (settings != "-") FacePointPhases(endpoint, model, noFace, points);
                return MotionPhase(endpoint, model, settings);
            }
            catch (Exception e)
            {
                Log("FAIL", "{\"error\": " + JsonOut.Str(e.ToString()) + "}");
                return 1;
            }
            finally { AvatarStreamClient.ShutdownAll(); }
        }

        private static void FacePointPhases(string endpoint, string model, string noFace, Vector2[] points)
        {
            // 1. The picture alone: the daemon finds no face and refuses it (typed error, never Ready).
            var refused = new Npc("npc-no-points", c =>
            {
                StubHarness.Set(c, "controlEndpoint", endpoint);
                StubHarness.Set(c, "model", model);
                StubHarness.Set(c, "portraitPath", noFace);
            }, false);
            refused.Run(() => refused.Errors.Count > 0 || refused.Client.State == ConnectionState.Ready, 120000);
            Log("NO_POINTS", "{\"errors\": " + Strs(refused.Errors) + ", \"ready\": " + (refused.States.Contains("Ready") ? "true" : "false") + "}");
            refused.Dispose();

            // 2. The same picture with the inspector's five Face Points: it opens.
            var opened = new Npc("npc-inspector-points", c =>
            {
                StubHarness.Set(c, "controlEndpoint", endpoint);
                StubHarness.Set(c, "model", model);
                StubHarness.Set(c, "portraitPath", noFace);
                StubHarness.Set(c, "facePoints", points);
            }, false);
            bool ready = opened.Run(() => opened.Client.State == ConnectionState.Ready || opened.Errors.Count > 0, 120000);
            Log("INSPECTOR_POINTS", "{\"ready\": " + (ready && opened.Client.State == ConnectionState.Ready ? "true" : "false") +
                ", \"session\": " + JsonOut.Value(opened.Client.Core == null ? null : opened.Client.Core.Session) + ", \"errors\": " + Strs(opened.Errors) + "}");
            opened.Dispose();
        }

        private static int MotionPhase(string endpoint, string model, string settings)
        {
            // 3. A 3D NPC: persona, portrait and face points from the studio's export (or the gallery default).
            var npc = new Npc("npc-3d", c =>
            {
                StubHarness.Set(c, "controlEndpoint", endpoint);
                StubHarness.Set(c, "model", model);
                if (settings != "-") StubHarness.Set(c, "settingsFile", settings);
            }, true);
            bool ready = npc.Run(() => npc.Client.State == ConnectionState.Ready || npc.Errors.Count > 0, 120000);
            AvatarStreamCore core = npc.Client.Core;
            PersonaFile file = npc.Client.LoadedSettings;
            Log("READY", "{\"ready\": " + (ready && npc.Client.State == ConnectionState.Ready ? "true" : "false") +
                ", \"errors\": " + Strs(npc.Errors) + ", \"session\": " + JsonOut.Value(core == null ? null : core.Session) +
                ", \"channels\": " + Strs(core == null ? new string[0] : core.MotionChannels) +
                ", \"file_face_points\": " + (file == null || file.FacePoints == null ? 0 : file.FacePoints.Length) +
                ", \"max_reply_sentences\": " + (file == null ? -1 : file.Persona.MaxReplySentences) + "}");
            if (npc.Client.State != ConnectionState.Ready) return 1;
            string session = core.Session;

            // Say a line and play it to its end (plus a few frames), sampling the face after each frame's
            // LateUpdate whenever the clock or the applied frame moved.
            long req = npc.Client.Say("Hello there, traveller. Welcome to our village by the river.");
            long utt = -1, end = -1;
            var samples = new StringBuilder();
            int sampleCount = 0;
            long lastDue = long.MinValue, lastApplied = long.MinValue;
            var sw = Stopwatch.StartNew();
            while (true)
            {
                if (sw.ElapsedMilliseconds > 180000) throw new TimeoutException("the reply did not play to its end within 180 s");
                npc.Frame();
                long clock = npc.Audio.ClockPts;
                long due = clock - (long)(npc.Audio.OutputLatencyMs * ProtocolV1.SampleRate / 1000f);
                long applied = npc.Output.AppliedPts;
                if (clock >= 0 && applied >= 0 && (due != lastDue || applied != lastApplied))
                {
                    lastDue = due;
                    lastApplied = applied;
                    if (sampleCount++ > 0) samples.Append(", ");
                    samples.Append("[").Append(due).Append(", ").Append(applied);
                    for (int i = 0; i < Shapes.Length; i++) samples.Append(", ").Append(F(npc.Face.GetBlendShapeWeight(i)));
                    Quaternion q = npc.Head.localRotation;
                    Vector3 pos = npc.Head.localPosition;
                    samples.Append(", ").Append(F(q.x)).Append(", ").Append(F(q.y)).Append(", ").Append(F(q.z)).Append(", ").Append(F(q.w));
                    samples.Append(", ").Append(F(pos.x)).Append(", ").Append(F(pos.y)).Append("]");
                }
                if (utt < 0 && npc.Acks.ContainsKey(req)) utt = npc.Acks[req];
                if (utt > 0 && npc.Ended.Contains(utt))
                {
                    if (end < 0)
                        lock (npc.Tap.Packets) foreach (TapTransport.Packet p in npc.Tap.Packets) if (p.Type == "audio" && p.Utt == utt) end = Math.Max(end, p.Pts + 882);
                    if (due > end + 5 * 882) break;
                }
                Thread.Sleep(16);
            }

            var motion = new StringBuilder();
            var video = new List<string>();
            var uttMotion = new List<string>();
            int n = 0;
            lock (npc.Tap.Packets)
                foreach (TapTransport.Packet p in npc.Tap.Packets)
                {
                    if (p.Type == "video" && p.Utt == utt) video.Add(p.Pts.ToString());
                    if (p.Type != "motion") continue;
                    if (p.Utt == utt) uttMotion.Add(p.Pts.ToString());
                    if (n++ > 0) motion.Append(", ");
                    motion.Append("[").Append(p.Pts).Append(", ").Append(p.Seq);
                    foreach (float v in p.Values) motion.Append(", ").Append(F(v));
                    motion.Append("]");
                }
            var shapes = new List<string>();
            foreach (string[] s in Shapes) shapes.Add("[" + JsonOut.Str(s[0]) + ", " + JsonOut.Value(s[1]) + "]");
            Log("MOTION", "{\"session\": " + JsonOut.Str(session) + ", \"utt\": " + utt + ", \"end\": " + end +
                ", \"channels\": " + Strs(core.MotionChannels) + ", \"shapes\": [" + string.Join(", ", shapes.ToArray()) + "]" +
                ", \"mapped\": " + npc.Output.MappedBlendShapes + ", \"head_meters\": " + F(HeadMeters) +
                ", \"frames_applied\": " + npc.Output.FramesApplied + ", \"core_motion_frames\": " + core.MotionFrames +
                ", \"undecodable\": " + npc.Tap.Undecodable + ", \"lost\": " + core.PacketsLost + ", \"errors\": " + Strs(npc.Errors) +
                ", \"video\": [" + string.Join(", ", video.ToArray()) + "], \"utt_motion\": [" + string.Join(", ", uttMotion.ToArray()) + "]" +
                ", \"motion\": [" + motion + "], \"samples\": [" + samples + "]}");
            npc.Dispose();
            return 0;
        }
    }
}
