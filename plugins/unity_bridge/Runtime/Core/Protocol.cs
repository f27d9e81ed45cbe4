// Protocol v2 constants, error codes and typed messages (mirror of sdk/protocol/messages.py, the source
// of truth). Every decoded message keeps its normalized header (defaults filled, pydantic field order)
// in Fields; typed properties read from it. No reflection anywhere (IL2CPP / AOT safe).
using System;
using System.Collections.Generic;

namespace Xstreamer.Avatar.Core
{
    /// <summary>Constants of the protocol (v2; the class keeps its v1 name for source compatibility).</summary>
    public static class ProtocolV1
    {
        public const int Version = 2;
        /// <summary>Media topics are this prefix + the session's media key (from opened.topic; never derived).</summary>
        public const string TopicPrefix = "xs2/";
        public const int SampleRate = 22050;
        public const int Fps = 25;
        public const int SamplesPerFrame = SampleRate / Fps; // 882 samples = 40 ms
        public const int FrameSize = 256;
        /// <summary>Video frame sides a session may ask for (open.video_size).</summary>
        public static readonly int[] VideoSizes = { 256, 512 };
        /// <summary>Bounds of a video packet's width/height and a motion packet's channel count.</summary>
        public const int MaxFrameSide = 4096, MaxMotionChannels = 256;
        /// <summary>sdk.protocol.MOTION_CHANNELS: the channels the embedded models publish, in payload order (a
        /// session's own list is opened.motion_channels).</summary>
        public static readonly string[] MotionChannels =
        {
            "jawOpen", "mouthClose", "mouthFunnel", "mouthPucker", "mouthSmileLeft", "mouthSmileRight",
            "mouthStretchLeft", "mouthStretchRight", "mouthPressLeft", "mouthPressRight", "mouthRollUpper",
            "mouthRollLower", "eyeBlinkLeft", "eyeBlinkRight", "eyeSquintLeft", "eyeSquintRight", "browInnerUp",
            "browDownLeft", "browDownRight", "browOuterUpLeft", "browOuterUpRight",
            "headYaw", "headPitch", "headRoll", "headX", "headY",
        };
        /// <summary>The default channel count of a motion packet (len(MOTION_CHANNELS)).</summary>
        public const int MotionChannelsDefault = 26;
        /// <summary>A chat/speak text (longer: text_too_long).</summary>
        public const int MaxTextChars = 2000;
        /// <summary>A persona's system prompt and greeting.</summary>
        public const int MaxPromptChars = 4000;
        /// <summary>The largest Persona.max_reply_sentences (sdk.protocol.MAX_REPLY_SENTENCES).</summary>
        public const int MaxReplySentences = 20;
        public const int MaxPortraitBytes = 16 * 1024 * 1024;
        /// <summary>open.face_points holds exactly this many points (eye centres, nose tip, mouth corners).</summary>
        public const int FacePointCount = 5;
        public const int MaxHeaderBytes = 64 * 1024;
    }

    /// <summary>Typed error codes (wire strings in <see cref="ErrorCodes"/>).</summary>
    public enum ErrorCode
    {
        UnsupportedVersion, Malformed, UnknownType, UnknownSession, NotWelcomed, InvalidPortrait,
        InvalidPersona, EmptyText, TextTooLong, InvalidAudio, TooManySessions, Internal,
        NotOwner, RateLimited, Unavailable, Busy,
    }

    /// <summary>Conversion between <see cref="ErrorCode"/> and its wire string.</summary>
    public static class ErrorCodes
    {
        private static readonly string[] Wire =
        {
            "unsupported_version", "malformed", "unknown_type", "unknown_session", "not_welcomed",
            "invalid_portrait", "invalid_persona", "empty_text", "text_too_long", "invalid_audio",
            "too_many_sessions", "internal", "not_owner", "rate_limited", "unavailable", "busy",
        };

        public static string ToWire(ErrorCode c) { return Wire[(int)c]; }

        public static bool TryParse(string s, out ErrorCode code)
        {
            for (int i = 0; i < Wire.Length; i++)
                if (Wire[i] == s) { code = (ErrorCode)i; return true; }
            code = ErrorCode.Internal;
            return false;
        }

        /// <summary>All wire strings, in enum order.</summary>
        public static IList<string> All { get { return Wire; } }
    }

    /// <summary>A message broke protocol v1, or the daemon answered with an error.</summary>
    public class ProtocolException : Exception
    {
        public readonly ErrorCode Code;
        public readonly string Detail;
        public readonly string Session;

        public ProtocolException(ErrorCode code, string detail, string session = null)
            : base("[" + ErrorCodes.ToWire(code) + "] " + detail)
        {
            Code = code;
            Detail = detail;
            Session = session;
        }
    }

    /// <summary>Who the avatar is (mirror of messages.Persona).</summary>
    [Serializable]
    public sealed class Persona
    {
        public string Name = "Avatar";
        public string SystemPrompt = "You are a friendly, concise assistant.";
        public string Greeting = "";
        public string Voice = "joe";
        public string Model = "default";
        /// <summary>A built-in gallery character id, or null/empty for none.</summary>
        public string Character;
        /// <summary>The reply stops after this many sentences (0: no cap but the model's own).</summary>
        public int MaxReplySentences;

        /// <summary>Writes the persona as a msgpack map in pydantic field order.</summary>
        public void WriteTo(MsgPackWriter w)
        {
            w.WriteMapHeader(7);
            w.Write("name"); w.Write(Name);
            w.Write("system_prompt"); w.Write(SystemPrompt);
            w.Write("greeting"); w.Write(Greeting ?? "");
            w.Write("voice"); w.Write(Voice);
            w.Write("model"); w.Write(Model);
            w.Write("character");
            if (string.IsNullOrEmpty(Character)) w.WriteNil(); else w.Write(Character);
            w.Write("max_reply_sentences"); w.Write((long)MaxReplySentences);
        }

        /// <summary>Builds a persona from a validated, normalized map.</summary>
        public static Persona FromMap(MsgMap m)
        {
            return new Persona
            {
                Name = (string)m["name"], SystemPrompt = (string)m["system_prompt"],
                Greeting = (string)m["greeting"], Voice = (string)m["voice"], Model = (string)m["model"],
                Character = (string)m["character"], MaxReplySentences = (int)(long)m["max_reply_sentences"],
            };
        }
    }

    /// <summary>
    /// A point in the portrait's pixels (x to the right, y down from the top-left corner). Five of them (left eye
    /// centre, right eye centre, nose tip, left mouth corner, right mouth corner; "left" as the picture shows it)
    /// place the face where the daemon cannot find one (open.face_points).
    /// </summary>
    [Serializable]
    public struct FacePoint
    {
        public double X, Y;
        public FacePoint(double x, double y) { X = x; Y = y; }
        public override string ToString() { return "[" + X.ToString(System.Globalization.CultureInfo.InvariantCulture) + ", " +
                                                   Y.ToString(System.Globalization.CultureInfo.InvariantCulture) + "]"; }
    }

    /// <summary>Checks of open.face_points (mirror of messages.Open.face_points: none, or five [x, y] points).</summary>
    public static class FacePoints
    {
        /// <summary>Why <paramref name="points"/> cannot be sent (null: they can; null points mean "none").</summary>
        public static string Problem(FacePoint[] points)
        {
            if (points == null) return null;
            if (points.Length != ProtocolV1.FacePointCount)
                return "face points need exactly " + ProtocolV1.FacePointCount + " points (eye centres, nose tip, mouth corners), not " + points.Length;
            for (int i = 0; i < points.Length; i++)
                if (double.IsNaN(points[i].X) || double.IsInfinity(points[i].X) || double.IsNaN(points[i].Y) || double.IsInfinity(points[i].Y))
                    return "face point " + i + " is not a finite number";
            return null;
        }

        /// <summary>Throws ArgumentException when <paramref name="points"/> cannot be sent.</summary>
        public static void Check(FacePoint[] points)
        {
            string problem = Problem(points);
            if (problem != null) throw new ArgumentException(problem);
        }
    }

    /// <summary>Any decoded header: its type and normalized fields (defaults filled, field order kept).</summary>
    public class Message
    {
        public readonly string Type;
        public readonly MsgMap Fields;
        public Message(string type, MsgMap fields) { Type = type; Fields = fields; }

        protected long L(string k) { return (long)Fields[k]; }
        protected string S(string k) { return (string)Fields[k]; }
        protected bool B(string k) { return (bool)Fields[k]; }
        protected double D(string k) { return (double)Fields[k]; }
        public long Req { get { return Fields.ContainsKey("req") ? L("req") : 0; } }
    }

    /// <summary>Base of the five media packet kinds.</summary>
    public class MediaPacket : Message
    {
        public MediaPacket(string type, MsgMap f) : base(type, f) { }
        public string Session { get { return S("session"); } }
        public long Utt { get { return L("utt"); } }
        public long Seq { get { return L("seq"); } }
        public long Pts { get { return L("pts"); } }
    }

    public sealed class AudioPacket : MediaPacket
    {
        public AudioPacket(MsgMap f) : base("audio", f) { }
        public int SampleRate { get { return (int)L("sample_rate"); } }
        public int Samples { get { return (int)L("samples"); } }
    }

    public sealed class VideoPacket : MediaPacket
    {
        public VideoPacket(MsgMap f) : base("video", f) { }
        public int Width { get { return (int)L("width"); } }
        public int Height { get { return (int)L("height"); } }
        public string Format { get { return S("format"); } }
        /// <summary>3 for rgb24, 4 for rgba32 (straight alpha).</summary>
        public int BytesPerPixel { get { return Format == "rgba32" ? 4 : 3; } }
    }

    /// <summary>The facial-animation channels of one frame (payload: Channels float32 LE values, in the order of
    /// the session's Opened motion_channels).</summary>
    public sealed class MotionPacket : MediaPacket
    {
        public MotionPacket(MsgMap f) : base("motion", f) { }
        public int Channels { get { return (int)L("channels"); } }
    }

    public sealed class TextPacket : MediaPacket
    {
        public TextPacket(MsgMap f) : base("text", f) { }
        public string Role { get { return S("role"); } }
        public string Text { get { return S("text"); } }
        public bool Final { get { return B("final"); } }
    }

    public sealed class EventPacket : MediaPacket
    {
        public EventPacket(MsgMap f) : base("event", f) { }
        public string Event { get { return S("event"); } }
        public string Reason { get { return S("reason"); } }
    }

    public sealed class StatePacket : MediaPacket
    {
        public StatePacket(MsgMap f) : base("state", f) { }
        public string State { get { return S("state"); } }
        public double FpsValue { get { return D("fps"); } }
        public double LeadMs { get { return D("lead_ms"); } }
        public string Model { get { return S("model"); } }
    }

    public sealed class WelcomeMessage : Message
    {
        public WelcomeMessage(MsgMap f) : base("welcome", f) { }
        public int Version { get { return (int)L("version"); } }
        public string Server { get { return S("server"); } }
        public string MediaEndpoint { get { return S("media_endpoint"); } }
        public int HeartbeatMs { get { return (int)L("heartbeat_ms"); } }
        public double SessionTimeoutS { get { return D("session_timeout_s"); } }
    }

    public sealed class OpenedMessage : Message
    {
        public OpenedMessage(MsgMap f) : base("opened", f) { }
        public string Session { get { return S("session"); } }
        public string Topic { get { return S("topic"); } }
        /// <summary>Lets a new connection `resume` the session (keep it private).</summary>
        public string Secret { get { return S("secret"); } }
        public int SampleRate { get { return (int)L("sample_rate"); } }
        public int Fps { get { return (int)L("fps"); } }
        public int Width { get { return (int)L("width"); } }
        public int Height { get { return (int)L("height"); } }
        public string Model { get { return S("model"); } }
        /// <summary>"rgb24" or "rgba32" (a portrait with alpha).</summary>
        public string VideoFormat { get { return S("video_format"); } }
        /// <summary>The names of a motion packet's values, in payload order (empty: no motion packets).</summary>
        public string[] MotionChannels
        {
            get
            {
                var list = (List<object>)Fields["motion_channels"];
                var names = new string[list.Count];
                for (int i = 0; i < names.Length; i++) names[i] = (string)list[i];
                return names;
            }
        }
    }

    public sealed class AckMessage : Message
    {
        public AckMessage(MsgMap f) : base("ack", f) { }
        public string Session { get { return S("session"); } }
        public long Utt { get { return L("utt"); } }
    }

    public sealed class PongMessage : Message
    {
        public PongMessage(MsgMap f) : base("pong", f) { }
        public int Sessions { get { return (int)L("sessions"); } }
        public string State { get { return S("state"); } }
    }

    /// <summary>Answer to load: the daemon's sessions, capacity and load (docs/protocol.md).</summary>
    public sealed class LoadReportMessage : Message
    {
        public LoadReportMessage(MsgMap f) : base("load_report", f) { }
        public int Sessions { get { return (int)L("sessions"); } }
        public int Capacity { get { return (int)L("capacity"); } }
        public string CapacitySource { get { return S("capacity_source"); } }
        public bool Accepting { get { return B("accepting"); } }
        public double Utilization { get { return D("utilization"); } }
        public string Reason { get { return S("reason"); } }
        public string Model { get { return S("model"); } }
        public double FpsMin { get { return D("fps_min"); } }
        public double RssMb { get { return D("rss_mb"); } }
        public double GpuMb { get { return D("gpu_mb"); } }
        public int Replicas { get { return (int)L("replicas"); } }
    }

    public sealed class ErrorMessage : Message
    {
        public ErrorMessage(MsgMap f) : base("error", f) { }
        public ErrorCode Code { get { ErrorCode c; ErrorCodes.TryParse(S("code"), out c); return c; } }
        public string CodeWire { get { return S("code"); } }
        public string Text { get { return S("message"); } }
        public string Session { get { return S("session"); } }
    }
}
