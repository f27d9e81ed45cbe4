// Drives the Unity components (Runtime/Unity) with mono against the behavioural UnityEngine stand-in
// (Tests~/UnityStub, built with STUB_HARNESS): components are added to GameObjects with their serialised
// fields set first, and the harness sends the messages Unity would (Update, LateUpdate, OnAudioFilterRead)
// and pulls the streamed clip the way Unity's stream reader does. No network: the client's core runs on a
// transport that never connects, and the test writes audio/video into the core's buffers directly.
// Prints "PASS name" per check ("ALL n" at the end, exit 1 on the first failure) and "SETTINGS {json}".
// Usage: mono UnityComponents.exe STREAMING_ASSETS REL_SETTINGS MISSING_SETTINGS MALFORMED_SETTINGS
using System;
using System.Collections.Generic;
using System.Diagnostics;
using System.Security.Cryptography;
using UnityEngine;
using UnityEngine.UI;
using Xstreamer.Avatar;
using Xstreamer.Avatar.Core;

namespace Xstreamer.Avatar.Tests
{
    /// <summary>A transport that never reaches a daemon (the core stays Connecting).</summary>
    internal sealed class NullTransport : ITransport
    {
        public void ConnectControl(string endpoint) { }
        public void ConnectMedia(string endpoint) { }
        public void CloseSockets() { }
        public void Subscribe(byte[] topic) { }
        public bool SendControl(IList<byte[]> frames) { return true; }
        public TransportReady Poll(int timeoutMs) { System.Threading.Thread.Sleep(Math.Max(0, Math.Min(timeoutMs, 20))); return TransportReady.None; }
        public bool TryReceiveControl(out List<byte[]> frames) { frames = null; return false; }
        public bool TryReceiveMedia(out List<byte[]> frames) { frames = null; return false; }
        public void Dispose() { }
    }

    /// <summary>A daemon stand-in inside the transport: answers hello, open (with motion channels), ping and
    /// the rest through the real codec, so the core opens a session as it would on the wire.</summary>
    internal sealed class ScriptedDaemon : ITransport
    {
        private readonly string[] _channels;
        private readonly Queue<List<byte[]>> _replies = new Queue<List<byte[]>>();
        private long _utt;
        private int _opens;
        private string _session = "";
        /// <summary>The last open request as the daemon decoded it (its normalized header), and its blob count.</summary>
        public volatile Message LastOpen;
        public volatile int LastOpenBlobs = -1;
        /// <summary>Set: the daemon "restarted": it no longer knows the connection (ping: not_welcomed) nor the
        /// session (resume: unknown_session), and numbers utterances from the open's first_utt.</summary>
        public volatile bool Restarted;
        public int Resumes, Hellos;
        public ScriptedDaemon(string[] motionChannels) { _channels = motionChannels; }
        public void ConnectControl(string endpoint) { }
        public void ConnectMedia(string endpoint) { }
        public void CloseSockets() { }
        public void Subscribe(byte[] topic) { }

        private static MsgPackWriter Reply(string type, long req, int fields)
        {
            var w = new MsgPackWriter();
            w.WriteMapHeader(fields + 3);
            w.Write("v"); w.Write((long)ProtocolV1.Version); w.Write("type"); w.Write(type); w.Write("req"); w.Write(req);
            return w;
        }

        private static MsgPackWriter Error(long req, string code)
        {
            MsgPackWriter w = Reply("error", req, 2);
            w.Write("code"); w.Write(code); w.Write("message"); w.Write("scripted " + code);
            return w;
        }

        private MsgPackWriter Opened(long req)
        {
            MsgPackWriter w = Reply("opened", req, 4);
            w.Write("session"); w.Write(_session); w.Write("topic"); w.Write("xs2/k" + _opens); w.Write("secret"); w.Write("secret" + _opens);
            w.Write("motion_channels"); w.WriteArrayHeader(_channels.Length); foreach (string c in _channels) w.Write(c);
            return w;
        }

        public bool SendControl(IList<byte[]> frames)
        {
            Message m = ProtocolCodec.DecodeClient(frames);
            MsgPackWriter w;
            switch (m.Type)
            {
                case "hello":
                    Hellos++;
                    w = Reply("welcome", m.Req, 3);
                    w.Write("version"); w.Write((long)ProtocolV1.Version); w.Write("server"); w.Write("scripted"); w.Write("media_endpoint"); w.Write("tcp://127.0.0.1:9");
                    break;
                case "open":
                    LastOpenBlobs = frames.Count - 1;
                    LastOpen = m;
                    _opens++;
                    _session = "s" + _opens;
                    _utt = (long)m.Fields["first_utt"] - 1;
                    Restarted = false;
                    w = Opened(m.Req);
                    break;
                case "resume":
                    if (Restarted || (string)m.Fields["session"] != _session) { w = Error(m.Req, "unknown_session"); break; }
                    if ((string)m.Fields["secret"] != "secret" + _opens) { w = Error(m.Req, "not_owner"); break; }
                    Resumes++;
                    w = Opened(m.Req);
                    break;
                case "ping":
                    if (Restarted) { w = Error(m.Req, "not_welcomed"); break; }
                    w = Reply("pong", m.Req, 0);
                    break;
                case "chat": case "speak":
                    w = Reply("ack", m.Req, 2);
                    w.Write("session"); w.Write(_session); w.Write("utt"); w.Write(++_utt);
                    break;
                default:
                    w = Reply("ack", m.Req, 1);
                    w.Write("session"); w.Write(_session);
                    break;
            }
            lock (_replies) _replies.Enqueue(new List<byte[]> { w.ToArray() });
            return true;
        }
        public TransportReady Poll(int timeoutMs)
        {
            lock (_replies) if (_replies.Count > 0) return TransportReady.Control;
            System.Threading.Thread.Sleep(Math.Max(0, Math.Min(timeoutMs, 5)));
            return TransportReady.None;
        }
        public bool TryReceiveControl(out List<byte[]> frames)
        {
            lock (_replies) { frames = _replies.Count > 0 ? _replies.Dequeue() : null; return frames != null; }
        }
        public bool TryReceiveMedia(out List<byte[]> frames) { frames = null; return false; }
        public void Dispose() { }
    }

    internal static class UnityComponents
    {
        private const int W = 4, H = 3;
        private const double SrcPerOut = 22050.0 / 48000.0;
        private static int _passed;

        private static void Check(bool ok, string what) { if (!ok) throw new Exception("FAILED: " + what); }

        private static void Run(string name, Action a)
        {
            a();
            _passed++;
            Console.WriteLine("PASS " + name);
            Console.Out.Flush();
        }

        private static int Main(string[] args)
        {
            var clients = new List<AvatarStreamClient>();
            try
            {
                StubHarness.OutputSampleRate = 48000;
                StubHarness.SetDspBuffer(256, 2);
                Run("filterread_zeros_resample_clock", () => FilterRead(clients));
                Run("streamingclip_filter_passes_through", PassThrough);
                Run("video_flip_drop_late_hold_when_starved", () => Video(clients));
                Run("streamingclip_clock_counts_played_samples", () => Streaming(clients));
                Run("client_shutdown_bounded_and_reconnect", () => Shutdown(clients));
                Run("blendshapes_by_arkit_name_at_the_audio_clock", () => Blendshapes(clients));
                Run("material_property_per_pipeline_and_rgba", () => Materials(clients));
                Run("inspector_reply_cap_and_face_points", () => InspectorOpen(clients));
                Run("restart_loses_running_replies_ids_continue", () => LostReplies(clients));
                if (args.Length >= 4) Run("settings_file_errors_are_typed_events", () => Settings(args));
            }
            catch (Exception e)
            {
                Console.WriteLine(e.ToString());
                return 1;
            }
            finally
            {
                AvatarStreamClient.ShutdownAll();
            }
            Console.WriteLine("ALL " + _passed);
            return 0;
        }

        // ---------------------------------------------------------------------------------------------
        private static AvatarStreamClient NewClient(GameObject go, List<AvatarStreamClient> all, bool connect = true)
        {
            var c = StubHarness.Add<AvatarStreamClient>(go, x =>
            {
                StubHarness.Set(x, "latency", LatencyPreset.Low);   // 80 ms = 1764 samples before playback
                StubHarness.Set(x, "connectOnEnable", connect);
                x.TransportFactory = () => new NullTransport();
            });
            all.Add(c);
            return c;
        }

        private static byte[] Pcm(int samples, short value)
        {
            var b = new byte[samples * 2];
            for (int i = 0; i < samples; i++) { b[2 * i] = (byte)value; b[2 * i + 1] = (byte)(value >> 8); }
            return b;
        }

        private static void WriteAudio(AvatarStreamCore core, long pts0, int packets)
        {
            for (int i = 0; i < packets; i++) Check(core.Audio.Write(pts0 + i * 882L, 1, Pcm(882, 8192), 0, 882), "audio packet fits");
        }

        private static float[] Filled(int n, float v) { var d = new float[n]; for (int i = 0; i < n; i++) d[i] = v; return d; }

        private static bool AllZero(float[] d, int from = 0) { for (int i = from; i < d.Length; i++) if (d[i] != 0f) return false; return true; }

        private static float[] Filter(AvatarAudioOutput a, int frames, int channels = 2)
        {
            float[] d = Filled(frames * channels, 0.7f);   // garbage: the filter must overwrite all of it
            StubHarness.Send(a, "OnAudioFilterRead", d, channels);
            return d;
        }

        // ---------------------------------------------------------------------------------------------
        private static void FilterRead(List<AvatarStreamClient> all)
        {
            var go = new GameObject("npc");
            AvatarStreamClient client = NewClient(go, all);
            Check(client.Core != null, "connectOnEnable started a core");
            var audio = StubHarness.Add<AvatarAudioOutput>(go, null);
            var src = go.GetComponent<AudioSource>();
            Check(src != null, "[RequireComponent(AudioSource)] honoured");
            Check(src.isPlaying && src.loop && src.clip != null && !StubHarness.IsStream(src.clip) && src.clip.frequency == 48000,
                  "FilterRead plays a silent looping clip at the output rate");
            Check(Math.Abs(audio.OutputLatencyMs - 1000f * 512 / 48000) < 0.01f, "output latency = DSP buffers (" + audio.OutputLatencyMs + ")");

            Check(AllZero(Filter(audio, 1024)), "zeros before the buffer is handed over");
            StubHarness.Send(audio, "Update");
            Check(AllZero(Filter(audio, 1024)) && audio.ClockPts == -1, "zeros and no clock while nothing is buffered");

            AvatarStreamCore core = client.Core;
            WriteAudio(core, 0, 4);   // 3528 samples, 160 ms
            float[] d = Filter(audio, 1024);
            for (int i = 0; i < d.Length; i += 2)
                Check(Math.Abs(d[i] - 0.25f) < 1e-4f && d[i] == d[i + 1], "voice on both channels at " + i + ": " + d[i]);
            long clock = audio.ClockPts;
            Check(clock == core.Audio.Clock.Pts && Math.Abs(clock - 1024 * SrcPerOut) <= 3, "clock = samples played, resampled (" + clock + ")");
            for (int k = 1; k < 7; k++) Filter(audio, 1024);
            d = Filter(audio, 1024);   // output frames 7168..8191; the 3528 samples last ~7680 frames
            int firstZero = -1;
            for (int i = 0; i < d.Length; i += 2) if (d[i] == 0f) { firstZero = i / 2; break; }
            Check(firstZero > 400 && firstZero < 620 && AllZero(d, firstZero * 2), "underrun mid-buffer: the rest is zeros (from " + firstZero + ")");
            long end = audio.ClockPts;
            Check(end >= 3525 && end <= 3528 && core.Audio.Underruns >= 1, "clock stops at the last sample played (" + end + ")");
            Check(AllZero(Filter(audio, 1024)) && audio.ClockPts == end, "zeros on underrun do not advance the clock");

            client.enabled = false;   // OnDisable: the core is disposed
            Check(client.Core == null && client.State == ConnectionState.Closed, "disabling the client disposes its core");
            StubHarness.Send(audio, "Update");
            Check(AllZero(Filter(audio, 512)) && audio.ClockPts == -1, "no core: zeros");
        }

        private static void PassThrough()
        {
            var go = new GameObject("npc3d");
            var audio = StubHarness.Add<AvatarAudioOutput>(go, a => StubHarness.Set(a, "mode", AvatarAudioOutput.Mode.StreamingClip));
            float[] d = Filter(audio, 256);
            bool untouched = true;
            foreach (float x in d) if (x != 0.7f) untouched = false;
            Check(untouched, "in StreamingClip mode OnAudioFilterRead leaves the clip's (spatialised) signal alone");
        }

        // ---------------------------------------------------------------------------------------------
        private static VideoFrame Frame(long pts, int k, int w = W, int h = H)
        {
            var rgb = new byte[w * h * 3];
            for (int y = 0; y < h; y++)
                for (int x = 0; x < w * 3; x++) rgb[y * w * 3 + x] = (byte)(k * 64 + y * 16 + x);
            return new VideoFrame { Pts = pts, Utt = 1, Width = w, Height = h, Rgb = rgb };
        }

        /// <summary>Texture rows are bottom-up: texture row r must be the frame's row h-1-r.</summary>
        private static bool Flipped(Texture2D t, VideoFrame f)
        {
            byte[] raw = t.GetRawTextureData();
            int row = f.Width * 3;
            if (raw.Length != f.Rgb.Length) return false;
            for (int r = 0; r < f.Height; r++)
                for (int x = 0; x < row; x++)
                    if (raw[r * row + x] != f.Rgb[(f.Height - 1 - r) * row + x]) return false;
            return true;
        }

        private static void Video(List<AvatarStreamClient> all)
        {
            var go = new GameObject("npc-video");
            AvatarStreamClient client = NewClient(go, all);
            var audio = StubHarness.Add<AvatarAudioOutput>(go, null);
            var raw = new GameObject("view").AddComponent<RawImage>();
            var rend = new GameObject("quad").AddComponent<Renderer>();
            rend.material = new Material();
            var video = StubHarness.Add<AvatarVideoOutput>(go, v => { StubHarness.Set(v, "rawImage", raw); StubHarness.Set(v, "targetRenderer", rend); });
            AvatarStreamCore core = client.Core;
            StubHarness.Send(audio, "Update");
            long delay = (long)(audio.OutputLatencyMs * ProtocolV1.SampleRate / 1000f);
            Check(delay == 235, "DSP latency in pts: " + delay);

            VideoFrame[] frames = { Frame(0, 0), Frame(882, 1), Frame(1764, 2), Frame(2646, 3) };
            foreach (VideoFrame f in frames) core.Video.Push(f);
            WriteAudio(core, 0, 4);
            StubHarness.Send(video, "LateUpdate");
            Check(video.Texture == null && video.FramesShown == 0 && video.ShownPts == -1, "nothing shown before audio plays");

            for (int k = 0; k < 3; k++) Filter(audio, 1024);   // clock ~1411, due ~1176
            StubHarness.Send(video, "LateUpdate");
            Texture2D tex = video.Texture;
            Check(tex != null && tex.width == W && tex.height == H, "texture created at the frame size");
            Check(video.ShownPts == 882 && video.FramesShown == 1 && core.Video.DroppedLate == 1,
                  "newest frame with pts <= clock - latency shown (" + video.ShownPts + "), the older one dropped as late");
            Check(Flipped(tex, frames[1]), "rows flipped (Unity textures are bottom-up)");
            Check(ReferenceEquals(raw.texture, tex) && ReferenceEquals(rend.material.GetTexture("_MainTex"), tex), "RawImage and material get the texture");
            Check(StubHarness.AppliedCount(tex) == 1, "uploaded once");

            StubHarness.Send(video, "LateUpdate");
            Check(video.FramesShown == 1 && StubHarness.AppliedCount(tex) == 1 && Flipped(tex, frames[1]), "no frame due: the frame is held, not re-uploaded");

            for (int k = 0; k < 6; k++) Filter(audio, 1024);   // all audio played, then underrun zeros: clock ~3527
            StubHarness.Send(video, "LateUpdate");
            Check(video.ShownPts == 2646 && video.FramesShown == 2 && core.Video.DroppedLate == 2 && Flipped(tex, frames[3]),
                  "catching up: the newest due frame, the skipped one dropped (" + video.ShownPts + ")");
            for (int k = 0; k < 3; k++) { Filter(audio, 1024); StubHarness.Send(video, "LateUpdate"); }
            Check(video.ShownPts == 2646 && video.FramesShown == 2 && StubHarness.AppliedCount(tex) == 2 && ReferenceEquals(video.Texture, tex),
                  "starved (audio underrun, no frames): the last frame stays on screen");

            VideoFrame big = Frame(3000, 5, 8, 2);
            core.Video.Push(big);
            StubHarness.Send(video, "LateUpdate");
            Check(video.Texture != null && video.Texture.width == 8 && video.Texture.height == 2 && StubHarness.IsDestroyed(tex) &&
                  ReferenceEquals(raw.texture, video.Texture) && Flipped(video.Texture, big), "a new frame size makes a new texture, the old one is destroyed");
        }

        // ---------------------------------------------------------------------------------------------
        private static byte[] Floats(params float[] v)
        {
            var b = new byte[v.Length * 4];
            for (int i = 0; i < v.Length; i++) Buffer.BlockCopy(BitConverter.GetBytes(v[i]), 0, b, 4 * i, 4);
            return b;
        }

        private static bool Near(float a, float b) { return Math.Abs(a - b) < 1e-3f; }

        private static void Blendshapes(List<AvatarStreamClient> all)
        {
            Check(AvatarBlendshapeOutput.NormalizeName("blendShape1.jawOpen") == "jawopen" &&
                  AvatarBlendshapeOutput.NormalizeName("EyeBlink_L") == "eyeblinkleft" &&
                  AvatarBlendshapeOutput.NormalizeName("eyeBlink.R") == "eyeblinkright" &&
                  AvatarBlendshapeOutput.NormalizeName("Face/mouthSmileLeft") == "mouthsmileleft", "name normalisation");
            string[] channels = { "jawOpen", "eyeBlinkLeft", "mouthSmileRight", "browInnerUp", "headYaw", "headPitch", "headRoll", "headX", "headY" };
            var go = new GameObject("npc-3d");
            var client = StubHarness.Add<AvatarStreamClient>(go, x =>
            {
                StubHarness.Set(x, "latency", LatencyPreset.Low);
                x.TransportFactory = () => new ScriptedDaemon(channels);
            });
            all.Add(client);
            var audio = StubHarness.Add<AvatarAudioOutput>(go, null);
            var face = new GameObject("face").AddComponent<SkinnedMeshRenderer>();
            face.sharedMesh = StubHarness.MakeMesh("blendShape1.jawOpen", "EyeBlink_L", "mouthSmile_R", "Brow_Raise", "unrelated", "JAWOPEN");
            Transform head = new GameObject("head").transform;
            var output = StubHarness.Add<AvatarBlendshapeOutput>(go, o =>
            {
                StubHarness.Set(o, "target", face);
                StubHarness.Set(o, "head", head);
                StubHarness.Set(o, "headTranslationMeters", 0.2f);
                StubHarness.Set(o, "overrides", new[] { new AvatarBlendshapeOutput.NameOverride { channel = "browInnerUp", blendShape = "Brow_Raise" } });
            });
            AvatarStreamCore core = client.Core;
            var sw = Stopwatch.StartNew();
            while (core.MotionChannels.Length == 0 && sw.ElapsedMilliseconds < 10000) System.Threading.Thread.Sleep(5);
            Check(core.MotionChannels.Length == channels.Length, "opened.motion_channels reached the core");
            StubHarness.Send(audio, "Update");

            core.Motion.PushFloat32(0, 1, 0, Floats(0.1f, 0.1f, 0.1f, 0.1f, 1f, 2f, 3f, 0.1f, 0.1f), 0, 9);
            core.Motion.PushFloat32(882, 1, 1, Floats(0.5f, 1f, 0.2f, 0.4f, 10f, -4f, 6f, 0.1f, -0.5f), 0, 9);
            core.Motion.PushFloat32(1764, 1, 2, Floats(0.8f, 1f, 0.5f, 0.4f, 20f, -4f, 6f, 0.4f, -0.5f), 0, 9);
            StubHarness.Send(output, "LateUpdate");
            Check(output.AppliedPts == -1 && face.GetBlendShapeWeight(0) == 0f, "nothing applied before audio plays");

            WriteAudio(core, 0, 4);
            for (int k = 0; k < 3; k++) Filter(audio, 1024);   // clock ~1411, due ~1176: frame 882, 1/3 of the way to 1764
            StubHarness.Send(output, "LateUpdate");
            Check(output.MappedBlendShapes == 5, "jawOpen twice (two spellings), eyeBlinkLeft, mouthSmileRight, browInnerUp (override) mapped, not 'unrelated' (" + output.MappedBlendShapes + ")");
            Check(output.AppliedPts == 882, "the newest frame due by the audio clock minus the DSP latency (" + output.AppliedPts + ")");
            float t = (1176f - 882f) / 882f;
            long due = audio.ClockPts - (long)(audio.OutputLatencyMs * ProtocolV1.SampleRate / 1000f);
            t = (due - 882f) / 882f;
            Check(Near(face.GetBlendShapeWeight(0), 100f * (0.5f + 0.3f * t)) && Near(face.GetBlendShapeWeight(5), face.GetBlendShapeWeight(0)),
                  "jawOpen x100, interpolated towards the next frame (" + face.GetBlendShapeWeight(0) + ")");
            Check(Near(face.GetBlendShapeWeight(1), 100f) && Near(face.GetBlendShapeWeight(2), 100f * (0.2f + 0.3f * t)) &&
                  Near(face.GetBlendShapeWeight(3), 40f) && face.GetBlendShapeWeight(4) == 0f, "each blendshape gets its own channel, weights x100");
            Quaternion want = Quaternion.Euler(-4f, 10f + 10f * t, 6f);
            Quaternion got = head.localRotation;
            Check(Near(got.x, want.x) && Near(got.y, want.y) && Near(got.z, want.z) && Near(got.w, want.w),
                  "head pose: pitch about X, yaw about Y, roll about Z");
            Vector3 pos = head.localPosition;
            Check(Near(pos.x, -0.2f * (0.1f + 0.3f * t)) && Near(pos.y, 0.1f) && pos.z == 0f, "headX/headY move the head (right/down as seen)");

            core.Motion.PushFloat32(2646, 1, 3, Floats(2f, -1f, 0f, 0f, 0f, 0f, 0f, 0f, 0f), 0, 9);
            for (int k = 0; k < 6; k++) Filter(audio, 1024);
            StubHarness.Send(output, "LateUpdate");
            Check(output.AppliedPts == 2646 && Near(face.GetBlendShapeWeight(0), 100f) && face.GetBlendShapeWeight(1) == 0f, "weights clamped to 0..100");
            int applied = output.FramesApplied;
            for (int k = 0; k < 3; k++) { Filter(audio, 1024); StubHarness.Send(output, "LateUpdate"); }
            Check(output.AppliedPts == 2646 && Near(face.GetBlendShapeWeight(0), 100f), "starved: the pose is held (" + (output.FramesApplied - applied) + ")");
            output.enabled = false;
            got = head.localRotation;
            Check(got.w == 1f && head.localPosition.x == 0f, "disabling restores the head's own pose");
        }

        /// <summary>The inspector's reply cap and face points reach the open request (as the daemon decodes it).</summary>
        private static void InspectorOpen(List<AvatarStreamClient> all)
        {
            string png = System.IO.Path.GetTempFileName();
            System.IO.File.WriteAllBytes(png, new byte[] { 0x89, 0x50, 0x4e, 0x47, 1, 2, 3 });
            try
            {
                var points = new[] { new Vector2(118f, 130.5f), new Vector2(182.25f, 130f), new Vector2(150f, 170f), new Vector2(128f, 205f), new Vector2(172f, 205.75f) };
                Func<Vector2[], string, int, Message> open = (pts, portrait, cap) =>
                {
                    var daemon = new ScriptedDaemon(new string[0]);
                    var errors = new List<string>();
                    var c = StubHarness.Add<AvatarStreamClient>(new GameObject("npc-open"), x =>
                    {
                        StubHarness.Set(x, "portraitPath", portrait);
                        StubHarness.Set(x, "facePoints", pts);
                        StubHarness.Set(x, "maxReplySentences", cap);
                        x.TransportFactory = () => daemon;
                        x.onError.AddListener(e => errors.Add(e));
                    });
                    all.Add(c);
                    var sw = Stopwatch.StartNew();
                    while (c.Core != null && daemon.LastOpen == null && sw.ElapsedMilliseconds < 10000) System.Threading.Thread.Sleep(5);
                    c.Shutdown();
                    if (daemon.LastOpen == null) throw new Exception("FAILED: no open reached the daemon: " + string.Join(" | ", errors.ToArray()));
                    Check(daemon.LastOpenBlobs == (portrait == "" ? 0 : 1), "the portrait travels as the open's blob");
                    return daemon.LastOpen;
                };
                Message m = open(points, png, 3);
                Check((long)((MsgMap)m.Fields["persona"])["max_reply_sentences"] == 3, "Max Reply Sentences reaches persona.max_reply_sentences");
                var sent = (List<object>)m.Fields["face_points"];
                bool same = sent != null && sent.Count == 5;
                for (int i = 0; same && i < 5; i++)
                {
                    var xy = (List<object>)sent[i];
                    same = (double)xy[0] == points[i].x && (double)xy[1] == points[i].y;
                }
                Check(same && (bool)m.Fields["has_portrait"], "the inspector's five Face Points go with its portrait in open.face_points");
                m = open(new Vector2[0], png, 0);
                Check(m.Fields["face_points"] == null && (long)((MsgMap)m.Fields["persona"])["max_reply_sentences"] == 0, "no Face Points: face_points null; cap 0");
                m = open(points, "", 0);
                Check(m.Fields["face_points"] == null && !(bool)m.Fields["has_portrait"], "points without a portrait are not sent");

                var errs = new List<string>();
                var bad = StubHarness.Add<AvatarStreamClient>(new GameObject("npc-four"), x =>
                {
                    StubHarness.Set(x, "portraitPath", png);
                    StubHarness.Set(x, "facePoints", new[] { points[0], points[1], points[2], points[3] });
                    x.TransportFactory = () => new NullTransport();
                    x.onError.AddListener(e => errs.Add(e));
                });
                all.Add(bad);
                Check(errs.Count == 1 && errs[0].StartsWith("face_points: ") && errs[0].Contains("exactly 5"), "four Face Points: onError face_points: " + string.Join(" | ", errs.ToArray()));
                Check(bad.Core == null, "four Face Points do not connect");
                bool typed = false;
                try { bad.BuildOptions(); } catch (AvatarStreamClient.FacePointsException) { typed = true; }
                Check(typed, "BuildOptions throws FacePointsException");
                bool refused = false;
                try { new AvatarStreamCore(new AvatarStreamOptions { FacePoints = new[] { new FacePoint(double.NaN, 1) } }); }
                catch (ArgumentException) { refused = true; }
                Check(refused, "the core refuses points that are not five finite pairs");
            }
            finally { System.IO.File.Delete(png); }
        }

        /// <summary>Protocol v2 after a daemon restart: the replies acknowledged and not ended get onUtteranceLost (the
        /// ones an interrupt's ack ended do not), the session is opened again with first_utt after every id seen.</summary>
        private static void LostReplies(List<AvatarStreamClient> all)
        {
            var daemon = new ScriptedDaemon(new string[0]);
            var lost = new List<int>();
            var acks = new Dictionary<long, long>();
            var opened = new List<string>();
            var errors = new List<string>();
            var c = StubHarness.Add<AvatarStreamClient>(new GameObject("npc-restart"), x =>
            {
                x.TransportFactory = () => daemon;
                x.onUtteranceLost.AddListener(u => lost.Add(u));
                x.onSessionOpened.AddListener(sid => opened.Add(sid));
                x.onError.AddListener(e => errors.Add(e));
            });
            all.Add(c);
            c.Core.Acked += (req, utt) => acks[req] = utt;
            Func<Func<bool>, bool> until = cond =>
            {
                var sw = Stopwatch.StartNew();
                while (sw.ElapsedMilliseconds < 10000) { StubHarness.Send(c, "Update"); if (cond()) return true; System.Threading.Thread.Sleep(5); }
                return false;
            };
            Check(until(() => c.State == ConnectionState.Ready), "the scripted session opens");
            long a = c.Say("one"), b = c.Say("two");
            Check(until(() => acks.ContainsKey(a) && acks.ContainsKey(b)), "two turns acknowledged");
            c.Interrupt();
            long d = c.Say("three");
            Check(until(() => acks.ContainsKey(d)), "a turn after the interrupt acknowledged (utt " + (acks.ContainsKey(d) ? acks[d] : -1) + ")");
            daemon.Restarted = true;
            Check(until(() => opened.Count == 2 && c.State == ConnectionState.Ready), "the session opened again after the restart: " + string.Join(",", opened.ToArray()));
            Check(lost.Count == 1 && lost[0] == acks[d], "only the running reply is lost (the interrupt's ack ended the others): [" +
                  string.Join(",", lost.ConvertAll(x => x.ToString()).ToArray()) + "] of " + acks[a] + "," + acks[b] + "," + acks[d]);
            Check((long)daemon.LastOpen.Fields["first_utt"] == acks[d] + 1, "open.first_utt continues after every id seen: " + daemon.LastOpen.Fields["first_utt"]);
            Check(c.Core.Reopens == 1 && c.Core.Resumes == 0 && errors.Count == 0, "reopened once, no error event: " + string.Join(" | ", errors.ToArray()));
            long f = c.Say("four");
            Check(until(() => acks.ContainsKey(f)) && acks[f] == acks[d] + 1, "the next reply's id follows the lost one's");
            c.Shutdown();
        }

        private static void Materials(List<AvatarStreamClient> all)
        {
            Check(AvatarVideoOutput.PickTextureProperty(StubHarness.MakeMaterial("_BaseMap", "_MainTex"), "") == "_BaseMap", "URP Lit: _BaseMap");
            Check(AvatarVideoOutput.PickTextureProperty(StubHarness.MakeMaterial("_BaseColorMap"), "") == "_BaseColorMap", "HDRP Lit: _BaseColorMap");
            Check(AvatarVideoOutput.PickTextureProperty(StubHarness.MakeMaterial("_MainTex"), "") == "_MainTex", "built-in: _MainTex");
            Check(AvatarVideoOutput.PickTextureProperty(StubHarness.MakeMaterial("_BaseMap", "_Face"), "_Face") == "_Face", "an explicit property the material has");
            Check(AvatarVideoOutput.PickTextureProperty(StubHarness.MakeMaterial("_Albedo"), "_Missing") == null, "none: the material's main texture");

            var go = new GameObject("npc-urp");
            AvatarStreamClient client = NewClient(go, all);
            var audio = StubHarness.Add<AvatarAudioOutput>(go, null);
            var rend = new GameObject("quad").AddComponent<Renderer>();
            rend.material = StubHarness.MakeMaterial("_BaseMap", "_MainTex");
            var video = StubHarness.Add<AvatarVideoOutput>(go, v => StubHarness.Set(v, "targetRenderer", rend));
            AvatarStreamCore core = client.Core;
            StubHarness.Send(audio, "Update");
            var rgba = new byte[W * H * 4];
            for (int i = 0; i < rgba.Length; i++) rgba[i] = (byte)(i * 5 + 1);
            core.Video.PushCopy(0, 1, 0, W, H, 4, rgba, 0, rgba.Length);
            WriteAudio(core, 0, 4);
            for (int k = 0; k < 3; k++) Filter(audio, 1024);
            StubHarness.Send(video, "LateUpdate");
            Texture2D tex = video.Texture;
            Check(tex != null && tex.format == TextureFormat.RGBA32 && video.BoundProperty == "_BaseMap" &&
                  ReferenceEquals(rend.material.GetTexture("_BaseMap"), tex), "rgba32 frames: an RGBA32 texture on URP's _BaseMap");
            byte[] raw = tex.GetRawTextureData();
            int row = W * 4;
            bool flipped = raw.Length == rgba.Length;
            for (int r = 0; r < H && flipped; r++)
                for (int x = 0; x < row; x++) if (raw[r * row + x] != rgba[(H - 1 - r) * row + x]) { flipped = false; break; }
            Check(flipped, "alpha kept, rows flipped");
        }

        // ---------------------------------------------------------------------------------------------
        private static void Streaming(List<AvatarStreamClient> all)
        {
            var go = new GameObject("npc-stream");
            AvatarStreamClient client = NewClient(go, all);
            var audio = StubHarness.Add<AvatarAudioOutput>(go, a => StubHarness.Set(a, "mode", AvatarAudioOutput.Mode.StreamingClip));
            var video = StubHarness.Add<AvatarVideoOutput>(go, null);   // finds the audio output itself
            var src = go.GetComponent<AudioSource>();
            int clipFrames = 48000 * AvatarAudioOutput.StreamClipSeconds;
            Check(StubHarness.IsStream(src.clip) && src.clip.samples == clipFrames && src.clip.channels == 1 && src.isPlaying && src.loop,
                  "StreamingClip plays a looping streamed mono clip");
            AvatarStreamCore core = client.Core;
            int plays = StubHarness.PlayCount(src);
            StubHarness.Send(audio, "Update");
            Check(StubHarness.PlayCount(src) == plays + 1, "handing over a buffer restarts the stream");
            Check(audio.ClockPts == -1, "no clock before audio");

            WriteAudio(core, 10000, 50);   // 2 s of voice at pts 10000..54100
            for (int k = 0; k < 50; k++) core.Video.Push(Frame(10000 + 882L * k, k % 4));
            float[] ahead = StubHarness.PullStream(src, 8192);   // Unity reads ahead of playback
            bool voiced = true;
            foreach (float x in ahead) if (Math.Abs(x - 0.25f) > 1e-4f) voiced = false;
            Check(voiced, "the PCM callback delivers the voice");
            long consumed = core.Audio.Clock.Pts;
            Check(Math.Abs(consumed - (10000 + 8192 * SrcPerOut)) <= 3, "consumed clock runs at the read head (" + consumed + ")");

            StubHarness.SetPlayPosition(src, 0);
            Check(Math.Abs(audio.ClockPts - 10000) <= 2, "play position 0 = the first sample (" + audio.ClockPts + ")");
            StubHarness.SetPlayPosition(src, 2048);
            long played = audio.ClockPts;
            Check(Math.Abs(played - (10000 + 2048 * SrcPerOut)) <= 2, "clock = pts at the play position (" + played + ")");
            Check(consumed - played > 2700, "the read-ahead is not counted as played");
            Check(Math.Abs(audio.StreamLeadMs - (8192 - 2048) / 48f) < 0.1f, "read-ahead reported: " + audio.StreamLeadMs + " ms");
            StubHarness.Send(video, "LateUpdate");
            Check(video.ShownPts == 10000, "video follows the played clock (" + video.ShownPts + "), not the read head (13528)");
            StubHarness.SetPlayPosition(src, 6000);
            StubHarness.Send(video, "LateUpdate");
            Check(video.ShownPts == 11764, "video advances with playback (" + video.ShownPts + ")");

            // Read on past the end of the voice (underrun zeros) and past the clip's loop point.
            var pulled = new List<float>(ahead);
            while (pulled.Count < clipFrames + 8192) pulled.AddRange(StubHarness.PullStream(src, 4096));
            int lastVoiced = -1;
            for (int i = 0; i < pulled.Count; i++) if (pulled[i] != 0f) lastVoiced = i;
            Check(Math.Abs(lastVoiced - 96000) < 10, "2 s of voice = 96000 frames, then zeros (" + lastVoiced + ")");
            StubHarness.SetPlayPosition(src, 95000);
            Check(Math.Abs(audio.ClockPts - (10000 + 95000 * SrcPerOut)) <= 3, "clock late in the voice (" + audio.ClockPts + ")");
            StubHarness.SetPlayPosition(src, 150000);
            long end = audio.ClockPts;
            Check(end >= 54095 && end <= 54100, "in the underrun zeros the clock stands at the end (" + end + ")");
            StubHarness.SetPlayPosition(src, 4000);   // second loop: that part of the clip now holds zeros
            Check(audio.ClockPts == end, "after the loop the newest data at a position wins (" + audio.ClockPts + ")");

            plays = StubHarness.PlayCount(src);
            client.Interrupt();   // flushes the jitter buffer
            StubHarness.Send(audio, "Update");
            Check(StubHarness.PlayCount(src) == plays + 1 && audio.ClockPts == -1, "a flush restarts the stream (read-ahead dropped)");

            StubHarness.OutputSampleRate = 44100;   // the device changed
            StubHarness.RaiseAudioConfigurationChanged(true);
            StubHarness.Send(audio, "Update");
            Check(src.clip.frequency == 44100 && src.clip.samples == 44100 * AvatarAudioOutput.StreamClipSeconds, "clip re-created at the new rate");
            WriteAudio(core, 60000, 30);
            StubHarness.PullStream(src, 44100);   // one second at 44.1 kHz
            StubHarness.SetPlayPosition(src, 44100);
            Check(Math.Abs(audio.ClockPts - (60000 + 22050)) <= 3, "one second played at 44.1 kHz = 22050 source samples (" + audio.ClockPts + ")");
            StubHarness.OutputSampleRate = 48000;
            StubHarness.RaiseAudioConfigurationChanged(true);
        }

        // ---------------------------------------------------------------------------------------------
        private static void Shutdown(List<AvatarStreamClient> all)
        {
            var go = new GameObject("npc-shutdown");
            AvatarStreamClient client = NewClient(go, all);
            var states = new List<string>();
            client.onConnectionState.AddListener(s => states.Add(s));
            var sw = Stopwatch.StartNew();
            while (sw.ElapsedMilliseconds < 2000 && states.Count == 0) { StubHarness.Send(client, "Update"); System.Threading.Thread.Sleep(5); }
            Check(states.Count > 0 && states[0] == "Connecting", "Update raises the connection state on the main thread");
            AvatarStreamCore first = client.Core;
            sw.Restart();
            AvatarStreamClient.ShutdownAll();   // what leaving play mode does
            long ms = sw.ElapsedMilliseconds;
            Check(ms < 1000 && first.State == ConnectionState.Closed, "ShutdownAll disposes the core in " + ms + " ms");
            client.Connect();   // the next Play
            Check(client.Core != null && !ReferenceEquals(client.Core, first), "a new core after shutdown");
            states.Clear();
            sw.Restart();
            while (sw.ElapsedMilliseconds < 2000 && states.Count == 0) { StubHarness.Send(client, "Update"); System.Threading.Thread.Sleep(5); }
            Check(states.Count > 0, "the new core runs");
            sw.Restart();
            client.Shutdown();
            Check(sw.ElapsedMilliseconds < 1000 && client.Core == null, "Shutdown bounded");
        }

        // ---------------------------------------------------------------------------------------------
        private static string Sha256(byte[] b)
        {
            using (var h = SHA256.Create()) return JsonOut.Hex(h.ComputeHash(b));
        }

        private static void Settings(string[] args)
        {
            StubHarness.StreamingAssetsPath = args[0];
            StubHarness.OutputSampleRate = 44100;
            var go = new GameObject("npc-settings");
            var client = StubHarness.Add<AvatarStreamClient>(go, c =>
            {
                StubHarness.Set(c, "connectOnEnable", false);
                StubHarness.Set(c, "settingsFile", args[1]);
                StubHarness.Set(c, "controlEndpoint", "tcp://10.1.2.3:9999");
                StubHarness.Set(c, "personaName", "Inspector name");
            });
            AvatarStreamOptions o = client.BuildOptions();
            PersonaFile f = client.LoadedSettings;
            Check(f != null && f.IsUnityExport, "the export was loaded");
            Console.WriteLine("SETTINGS {\"name\": " + JsonOut.Str(o.Persona.Name) + ", \"system_prompt\": " + JsonOut.Str(o.Persona.SystemPrompt) +
                              ", \"greeting\": " + JsonOut.Str(o.Persona.Greeting) + ", \"voice\": " + JsonOut.Str(o.Persona.Voice) +
                              ", \"model\": " + JsonOut.Str(o.Persona.Model) + ", \"character\": " + JsonOut.Value(o.Persona.Character) +
                              ", \"max_reply_sentences\": " + o.Persona.MaxReplySentences +
                              ", \"control_endpoint\": " + JsonOut.Str(o.ControlEndpoint) + ", \"client_name\": " + JsonOut.Str(o.ClientName) +
                              ", \"jitter_target_ms\": " + o.JitterTargetMs + ", \"output_sample_rate\": " + o.OutputSampleRate +
                              ", \"portrait_len\": " + (o.Portrait == null ? -1 : o.Portrait.Length) +
                              ", \"portrait_sha256\": " + (o.Portrait == null ? "null" : JsonOut.Str(Sha256(o.Portrait))) +
                              ", \"settings_path\": " + JsonOut.Str(client.ResolveSettingsPath()) + "}");
            StubHarness.Set(client, "useFileConnection", false);
            AvatarStreamOptions own = client.BuildOptions();
            Check(own.ControlEndpoint == "tcp://10.1.2.3:9999" && own.Persona.Name == o.Persona.Name && own.Portrait != null,
                  "useFileConnection off: the inspector endpoint, the file's persona and portrait");
            client.TransportFactory = () => new NullTransport();
            client.Connect();
            Check(client.Core != null, "a good settings file connects");
            client.Shutdown();
            StubHarness.OutputSampleRate = 48000;

            foreach (string[] bad in new[] { new[] { args[2], "NotFound" }, new[] { args[3], "Malformed" } })
            {
                var errors = new List<string>();
                var g = new GameObject("npc-bad");
                var c = StubHarness.Add<AvatarStreamClient>(g, x =>
                {
                    StubHarness.Set(x, "settingsFile", bad[0]);
                    x.TransportFactory = () => new NullTransport();
                    x.onError.AddListener(e => errors.Add(e));   // wired in the inspector, before OnEnable
                });
                Check(errors.Count == 1 && errors[0].StartsWith("settings_file: " + bad[1] + ": "), "onError says " + bad[1] + ": " + string.Join(" | ", errors.ToArray()));
                Check(c.Core == null && c.State == ConnectionState.Closed, "a bad settings file does not connect with the inspector persona");
                bool typed = false;
                try { c.BuildOptions(); } catch (PersonaFileException e) { typed = e.Error.ToString() == bad[1]; }
                Check(typed, "BuildOptions throws PersonaFileException." + bad[1]);
                Check(StubHarness.Log.Exists(l => l.StartsWith("error: [xstreamer] settings file:")), "logged as an error");
            }
        }
    }
}
