// Table-driven validation of protocol v2 headers, mirroring the pydantic models of
// sdk/protocol/messages.py in their strict mode: ints take msgpack integers only, bools true/false only;
// strings accept UTF-8 bytes; extra keys are refused. The result is a
// normalized map: every field present (defaults filled), in pydantic's field order.
using System;
using System.Collections.Generic;
using System.Globalization;
using System.Text;

namespace Xstreamer.Avatar.Core
{
    internal enum FieldKind { Int, Float, Bool, Str, OptStr, Literal, IntList, StrList, Persona, Code, OptPoints }

    internal sealed class FieldSpec
    {
        public string Name; public FieldKind Kind; public object Default; public bool Required;
        public long Min = long.MinValue; public long Max = long.MaxValue;   // int bounds or str length
        public string[] Choices;                                           // literal values

        public static FieldSpec F(string name, FieldKind kind, object def, bool required = false)
        {
            return new FieldSpec { Name = name, Kind = kind, Default = def, Required = required };
        }
        public FieldSpec Range(long min, long max) { Min = min; Max = max; return this; }
        public FieldSpec Of(params string[] choices) { Choices = choices; return this; }
    }

    /// <summary>The field tables of every v1 message and the validator that applies them.</summary>
    internal static class ProtocolSchema
    {
        private static FieldSpec F(string n, FieldKind k, object d = null, bool req = false)
        { return FieldSpec.F(n, k, d, req); }
        private static FieldSpec Req(string n, FieldKind k) { return FieldSpec.F(n, k, null, true); }

        private static readonly FieldSpec V = F("v", FieldKind.Int, 2L).Range(2, 2);
        private static readonly FieldSpec ReqId = F("req", FieldKind.Int, 0L);
        private static FieldSpec TypeF(string t) { return F("type", FieldKind.Literal, t).Of(t); }

        public static readonly FieldSpec[] Persona =
        {
            F("name", FieldKind.Str, "Avatar").Range(1, 80),
            F("system_prompt", FieldKind.Str, "You are a friendly, concise assistant.").Range(1, ProtocolV1.MaxPromptChars),
            F("greeting", FieldKind.Str, "").Range(0, ProtocolV1.MaxPromptChars),
            F("voice", FieldKind.Str, "joe").Range(0, 80),
            F("model", FieldKind.Str, "default").Range(0, 80),
            F("character", FieldKind.OptStr, null).Range(0, 80),
            F("max_reply_sentences", FieldKind.Int, 0L).Range(0, ProtocolV1.MaxReplySentences),
        };

        private static readonly Dictionary<string, FieldSpec[]> Client = new Dictionary<string, FieldSpec[]>
        {
            { "hello", new[] { V, TypeF("hello"), ReqId, Req("versions", FieldKind.IntList).Range(1, 16),
                               F("client", FieldKind.Str, "").Range(0, 120) } },
            { "open", new[] { V, TypeF("open"), ReqId, F("persona", FieldKind.Persona),
                              F("has_portrait", FieldKind.Bool, false),
                              F("video_size", FieldKind.Int, (long)ProtocolV1.FrameSize).Range(256, 512),
                              F("face_points", FieldKind.OptPoints, null),
                              F("first_utt", FieldKind.Int, 1L).Range(1, 1L << 31) } },
            { "resume", new[] { V, TypeF("resume"), ReqId, Req("session", FieldKind.Str),
                                Req("secret", FieldKind.Str).Range(0, 128) } },
            { "chat", new[] { V, TypeF("chat"), ReqId, Req("session", FieldKind.Str), Req("text", FieldKind.Str) } },
            { "speak", new[] { V, TypeF("speak"), ReqId, Req("session", FieldKind.Str), Req("text", FieldKind.Str) } },
            { "audio", new[] { V, TypeF("audio"), ReqId, Req("session", FieldKind.Str),
                               F("sample_rate", FieldKind.Int, 16000L).Range(8000, 48000),
                               F("final", FieldKind.Bool, false) } },
            { "interrupt", new[] { V, TypeF("interrupt"), ReqId, Req("session", FieldKind.Str) } },
            { "set_persona", new[] { V, TypeF("set_persona"), ReqId, Req("session", FieldKind.Str),
                                     Req("persona", FieldKind.Persona) } },
            { "close", new[] { V, TypeF("close"), ReqId, Req("session", FieldKind.Str) } },
            { "ping", new[] { V, TypeF("ping"), ReqId, F("session", FieldKind.OptStr, null) } },
            { "load", new[] { V, TypeF("load"), ReqId } },
        };

        private static readonly Dictionary<string, FieldSpec[]> Server = new Dictionary<string, FieldSpec[]>
        {
            { "welcome", new[] { V, TypeF("welcome"), ReqId, Req("version", FieldKind.Int), Req("server", FieldKind.Str),
                                 Req("media_endpoint", FieldKind.Str), F("heartbeat_ms", FieldKind.Int, 1000L),
                                 F("session_timeout_s", FieldKind.Float, 30.0) } },
            { "opened", new[] { V, TypeF("opened"), ReqId, Req("session", FieldKind.Str), Req("topic", FieldKind.Str),
                                Req("secret", FieldKind.Str),
                                F("sample_rate", FieldKind.Int, (long)ProtocolV1.SampleRate),
                                F("fps", FieldKind.Int, (long)ProtocolV1.Fps),
                                F("width", FieldKind.Int, (long)ProtocolV1.FrameSize),
                                F("height", FieldKind.Int, (long)ProtocolV1.FrameSize),
                                F("video_format", FieldKind.Literal, "rgb24").Of("rgb24", "rgba32"),
                                F("motion_channels", FieldKind.StrList, null),
                                F("model", FieldKind.Str, ""), F("warnings", FieldKind.StrList, null) } },
            { "ack", new[] { V, TypeF("ack"), ReqId, F("session", FieldKind.OptStr, null), F("utt", FieldKind.Int, 0L) } },
            { "pong", new[] { V, TypeF("pong"), ReqId, F("sessions", FieldKind.Int, 0L), F("state", FieldKind.Str, "ok") } },
            { "load_report", new[] { V, TypeF("load_report"), ReqId, F("model", FieldKind.Str, ""),
                                     F("sessions", FieldKind.Int, 0L), F("capacity", FieldKind.Int, 0L),
                                     F("capacity_source", FieldKind.Literal, "unmeasured")
                                         .Of("bench", "calibrated", "configured", "unmeasured"),
                                     F("accepting", FieldKind.Bool, true), F("reason", FieldKind.Str, ""),
                                     F("utilization", FieldKind.Float, 0.0), F("fps_min", FieldKind.Float, 0.0),
                                     F("rss_mb", FieldKind.Float, 0.0), F("gpu_mb", FieldKind.Float, 0.0),
                                     F("replicas", FieldKind.Int, 1L) } },
            { "error", new[] { V, TypeF("error"), ReqId, Req("code", FieldKind.Code), F("message", FieldKind.Str, ""),
                               F("session", FieldKind.OptStr, null), F("supported_versions", FieldKind.IntList, null) } },
        };

        private static FieldSpec[] MediaBase(string type, params FieldSpec[] rest)
        {
            var all = new List<FieldSpec>
            {
                V, Req("session", FieldKind.Str), Req("utt", FieldKind.Int).Range(0, long.MaxValue),
                Req("seq", FieldKind.Int).Range(0, long.MaxValue), Req("pts", FieldKind.Int).Range(0, long.MaxValue),
                TypeF(type),
            };
            all.AddRange(rest);
            return all.ToArray();
        }

        private static readonly Dictionary<string, FieldSpec[]> Media = new Dictionary<string, FieldSpec[]>
        {
            { "audio", MediaBase("audio", F("sample_rate", FieldKind.Int, (long)ProtocolV1.SampleRate),
                                 F("samples", FieldKind.Int, (long)ProtocolV1.SamplesPerFrame)) },
            { "video", MediaBase("video", F("width", FieldKind.Int, (long)ProtocolV1.FrameSize).Range(1, ProtocolV1.MaxFrameSide),
                                 F("height", FieldKind.Int, (long)ProtocolV1.FrameSize).Range(1, ProtocolV1.MaxFrameSide),
                                 F("format", FieldKind.Literal, "rgb24").Of("rgb24", "rgba32")) },
            { "motion", MediaBase("motion", F("channels", FieldKind.Int, (long)ProtocolV1.MotionChannelsDefault)
                                 .Range(1, ProtocolV1.MaxMotionChannels)) },
            { "text", MediaBase("text", F("role", FieldKind.Literal, "assistant").Of("assistant", "user"),
                                Req("text", FieldKind.Str), F("final", FieldKind.Bool, false)) },
            { "event", MediaBase("event", Req("event", FieldKind.Literal).Of("utterance_start", "utterance_end",
                                 "interrupted", "session_closed", "lost", "moved"), F("reason", FieldKind.Str, "")) },
            { "state", MediaBase("state", Req("state", FieldKind.Literal).Of("idle", "thinking", "speaking", "closed"),
                                 F("fps", FieldKind.Float, 0.0), F("lead_ms", FieldKind.Float, 0.0),
                                 F("model", FieldKind.Str, "")) },
        };

        public enum Family { Client, Server, Media }

        /// <summary>Validate a header map of one family; returns (type, normalized map).</summary>
        public static MsgMap Validate(Family family, MsgMap raw, out string type)
        {
            var table = family == Family.Client ? Client : family == Family.Server ? Server : Media;
            object tag;
            if (!raw.TryGetValue("type", out tag))
                throw new ProtocolException(ErrorCode.UnknownType, "Unable to extract tag using discriminator 'type'");
            type = tag as string;
            FieldSpec[] specs;
            if (type == null || !table.TryGetValue(type, out specs))
                throw new ProtocolException(ErrorCode.UnknownType, "type '" + Convert.ToString(tag, CultureInfo.InvariantCulture) +
                                            "' is not a known " + family.ToString().ToLowerInvariant() + " message");
            return ValidateFields(type, specs, raw);
        }

        public static MsgMap ValidateFields(string where, FieldSpec[] specs, MsgMap raw)
        {
            var output = new MsgMap();
            foreach (FieldSpec s in specs)
            {
                object value;
                if (!raw.TryGetValue(s.Name, out value))
                {
                    if (s.Required) throw Bad(where, s.Name, "Field required");
                    output.AddOrdered(s.Name, DefaultOf(s));
                    continue;
                }
                output.AddOrdered(s.Name, Coerce(where, s, value));
            }
            foreach (string k in raw.Keys_)
            {
                bool known = false;
                foreach (FieldSpec s in specs) if (s.Name == k) { known = true; break; }
                if (!known) throw Bad(where, k, "Extra inputs are not permitted");
            }
            return output;
        }

        private static object DefaultOf(FieldSpec s)
        {
            switch (s.Kind)
            {
                case FieldKind.IntList: return new List<object> { (long)ProtocolV1.Version };
                case FieldKind.StrList: return new List<object>();
                case FieldKind.Persona: return ValidateFields("persona", Persona, new MsgMap());
                default: return s.Default;
            }
        }

        private static ProtocolException Bad(string where, string field, string msg)
        {
            return new ProtocolException(ErrorCode.Malformed, where + "." + field + ": " + msg);
        }

        private static readonly UTF8Encoding StrictUtf8 = new UTF8Encoding(false, true);

        private static int CodePoints(string s)
        {
            int n = 0;
            for (int i = 0; i < s.Length; i++) if (!char.IsLowSurrogate(s[i])) n++;
            return n;
        }

        private static object Coerce(string where, FieldSpec s, object v)
        {
            switch (s.Kind)
            {
                case FieldKind.Int:
                {
                    long x;
                    if (!StrictInt(v, out x)) throw Bad(where, s.Name, "Input should be a valid integer");
                    if (x < s.Min || x > s.Max) throw Bad(where, s.Name, "Input is out of range");
                    return x;
                }
                case FieldKind.Float:
                {
                    double d;
                    if (!LaxFloat(v, out d)) throw Bad(where, s.Name, "Input should be a valid number");
                    return d;
                }
                case FieldKind.Bool:
                {
                    if (!(v is bool)) throw Bad(where, s.Name, "Input should be a valid boolean");
                    return (bool)v;
                }
                case FieldKind.OptStr:
                    if (v == null) return null;
                    goto case FieldKind.Str;
                case FieldKind.Str:
                {
                    string str;
                    if (!LaxStr(v, out str)) throw Bad(where, s.Name, "Input should be a valid string");
                    int n = CodePoints(str);
                    if (n < s.Min || n > s.Max) throw Bad(where, s.Name, "String length out of range");
                    return str;
                }
                case FieldKind.Literal:
                case FieldKind.Code:
                {
                    string str = v as string;
                    string[] choices = s.Kind == FieldKind.Code ? ToArray(ErrorCodes.All) : s.Choices;
                    if (str != null) foreach (string c in choices) if (c == str) return str;
                    throw Bad(where, s.Name, "Input should be one of the allowed values");
                }
                case FieldKind.IntList:
                case FieldKind.StrList:
                {
                    var list = v as List<object>;
                    if (list == null) throw Bad(where, s.Name, "Input should be a valid list");
                    if (s.Kind == FieldKind.IntList && s.Max != long.MaxValue && (list.Count < s.Min || list.Count > s.Max))
                        throw Bad(where, s.Name, "List length out of range");
                    var outList = new List<object>(list.Count);
                    foreach (object item in list)
                    {
                        if (s.Kind == FieldKind.IntList)
                        {
                            long x;
                            if (!StrictInt(item, out x)) throw Bad(where, s.Name, "Input should be a valid integer");
                            outList.Add(x);
                        }
                        else
                        {
                            string str;
                            if (!LaxStr(item, out str)) throw Bad(where, s.Name, "Input should be a valid string");
                            outList.Add(str);
                        }
                    }
                    return outList;
                }
                case FieldKind.OptPoints:
                {
                    if (v == null) return null;
                    var pts = v as List<object>;
                    if (pts == null || pts.Count != 5) throw Bad(where, s.Name, "Input should be a list of 5 points");
                    var outPts = new List<object>(5);
                    foreach (object item in pts)
                    {
                        var xy = item as List<object>;
                        double x, y;
                        if (xy == null || xy.Count != 2 || !LaxFloat(xy[0], out x) || !LaxFloat(xy[1], out y))
                            throw Bad(where, s.Name, "Input should be a valid [x, y] pair");
                        outPts.Add(new List<object> { x, y });
                    }
                    return outPts;
                }
                case FieldKind.Persona:
                {
                    var map = v as MsgMap;
                    if (map == null) throw Bad(where, s.Name, "Input should be a valid dictionary");
                    return ValidateFields(where + "." + s.Name, Persona, map);
                }
            }
            throw Bad(where, s.Name, "unsupported field kind");
        }

        private static string[] ToArray(IList<string> l) { var a = new string[l.Count]; l.CopyTo(a, 0); return a; }

        /// <summary>Protocol v2 integers: a msgpack integer only (not a float, a bool or a numeric string).</summary>
        internal static bool StrictInt(object v, out long x)
        {
            x = 0;
            if (v is long) { x = (long)v; return true; }
            if (v is ulong && (ulong)v <= long.MaxValue) { x = (long)(ulong)v; return true; }
            return false;
        }

        internal static bool LaxInt(object v, out long x)
        {
            x = 0;
            if (v is long) { x = (long)v; return true; }
            if (v is bool) { x = (bool)v ? 1 : 0; return true; }
            if (v is double)
            {
                double d = (double)v;
                if (double.IsNaN(d) || double.IsInfinity(d) || Math.Floor(d) != d || Math.Abs(d) > 9.2e18) return false;
                x = (long)d; return true;
            }
            string s;
            if (v is string || v is byte[])
            {
                if (!LaxStr(v, out s)) return false;
                return long.TryParse(s.Trim(), NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out x);
            }
            return false;
        }

        internal static bool LaxFloat(object v, out double d)
        {
            d = 0;
            if (v is double) { d = (double)v; return true; }
            if (v is long) { d = (long)v; return true; }
            if (v is bool) { d = (bool)v ? 1 : 0; return true; }
            if (v is ulong) { d = (ulong)v; return true; }
            string s;
            if ((v is string || v is byte[]) && LaxStr(v, out s))
                return double.TryParse(s.Trim(), NumberStyles.Float, CultureInfo.InvariantCulture, out d);
            return false;
        }

        internal static bool LaxBool(object v, out bool b)
        {
            b = false;
            if (v is bool) { b = (bool)v; return true; }
            if (v is long) { long x = (long)v; if (x == 0 || x == 1) { b = x == 1; return true; } return false; }
            if (v is double) { double x = (double)v; if (x == 0 || x == 1) { b = x == 1; return true; } return false; }
            string s;
            if ((v is string || v is byte[]) && LaxStr(v, out s))
            {
                switch (s.Trim().ToLowerInvariant())
                {
                    case "0": case "off": case "f": case "false": case "n": case "no": b = false; return true;
                    case "1": case "on": case "t": case "true": case "y": case "yes": b = true; return true;
                }
            }
            return false;
        }

        internal static bool LaxStr(object v, out string s)
        {
            s = v as string;
            if (s != null) return true;
            var bytes = v as byte[];
            if (bytes == null) return false;
            try { s = StrictUtf8.GetString(bytes); return true; }
            catch (ArgumentException) { return false; }
        }
    }
}
