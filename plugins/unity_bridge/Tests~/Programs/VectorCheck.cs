// Decodes every protocol v2 golden vector with the C# core and prints one JSON line per vector; the
// pytest wrapper (tests/test_unity_vectors.py) compares them with tests/vectors/NAME.json.
// Usage: mono VectorCheck.exe VECTOR_DIR MANIFEST   (manifest lines: name<TAB>direction<TAB>frames<TAB>payload_len<TAB>topic)
using System;
using System.Collections.Generic;
using System.IO;
using System.Security.Cryptography;
using Xstreamer.Avatar.Core;

namespace Xstreamer.Avatar.Tests
{
    internal static class VectorCheck
    {
        private static int Main(string[] args)
        {
            string dir = args[0];
            foreach (string line in File.ReadAllLines(args[1]))
            {
                if (line.Trim().Length == 0) continue;
                string[] f = line.Split('\t');
                Console.WriteLine(Check(dir, f[0], f[1], int.Parse(f[2]), int.Parse(f[3]), f.Length > 4 ? f[4] : ""));
            }
            return 0;
        }

        private static string Check(string dir, string name, string direction, int nframes, int payloadLen, string topic)
        {
            byte[] header = File.ReadAllBytes(Path.Combine(dir, name + ".msgpack"));
            var payload = new byte[payloadLen];
            for (int i = 0; i < payloadLen; i++) payload[i] = (byte)(i % 251);
            var frames = new List<byte[]>();
            if (direction == "media") frames.Add(System.Text.Encoding.ASCII.GetBytes(topic));
            frames.Add(header);
            while (frames.Count < nframes) frames.Add(payload);

            string raw;
            try { raw = JsonOut.Value(MsgPackReader.Unpack(header)); }
            catch (MsgPackException) { raw = "null"; }

            var o = new List<string> { "\"name\": " + JsonOut.Str(name), "\"raw_header\": " + raw };
            if (direction == "media") o.Add("\"fast\": " + Fast(frames, topic));
            try
            {
                Message m;
                byte[] data = null;
                if (direction == "media") m = ProtocolCodec.DecodeMedia(frames, out data);
                else if (direction == "server") m = ProtocolCodec.DecodeServer(frames);
                else m = ProtocolCodec.DecodeClient(frames);
                o.Add("\"valid\": true");
                o.Add("\"type\": " + JsonOut.Str(m.Type));
                o.Add("\"header\": " + JsonOut.Value(m.Fields));
                o.Add("\"reencoded_hex\": " + JsonOut.Str(JsonOut.Hex(ProtocolCodec.Reencode(m))));
                string enc = EncodeTyped(m);
                if (enc != null) o.Add("\"typed_encoder_hex\": " + JsonOut.Str(enc));
                int plen = direction == "media" ? (data == null ? 0 : data.Length) : (frames.Count > 1 ? frames[1].Length : 0);
                byte[] pbytes = direction == "media" ? (data ?? new byte[0]) : (frames.Count > 1 ? frames[1] : new byte[0]);
                o.Add("\"payload_len\": " + plen);
                using (var sha = SHA256.Create()) o.Add("\"payload_sha256\": " + JsonOut.Str(JsonOut.Hex(sha.ComputeHash(pbytes))));
            }
            catch (ProtocolException e)
            {
                o.Add("\"valid\": false");
                o.Add("\"error_code\": " + JsonOut.Str(ErrorCodes.ToWire(e.Code)));
                o.Add("\"message\": " + JsonOut.Str(e.Detail));
            }
            return "{" + string.Join(", ", o.ToArray()) + "}";
        }

        /// <summary>What the core's allocation-free media path makes of the packet (null: it declines and
        /// leaves the packet to the full validator), under the same conditions as AvatarStreamCore.</summary>
        private static string Fast(List<byte[]> frames, string topic)
        {
            if (!topic.StartsWith(ProtocolV1.TopicPrefix) || frames.Count != 3) return "null";
            var m = new MultipartMessage();
            m.CopyFrom(frames);
            // v2: the topic is the media key, not the session; the core expects the session of its opened.
            string expected = "";
            try { var raw = MsgPackReader.Unpack(frames[1]) as MsgMap; object s; if (raw != null && raw.TryGetValue("session", out s) && s is string) expected = (string)s; }
            catch (MsgPackException) { }
            byte[] session = System.Text.Encoding.UTF8.GetBytes(expected);
            MediaHeader h;
            if (!m.FrameEquals(0, System.Text.Encoding.UTF8.GetBytes(topic)) ||
                !FastMediaHeader.TryParse(m.Buffer, m.Offset(1), m.Length(1), session, out h) || h.ExpectedPayload != m.Length(2))
                return "null";
            string kind = h.Kind == MediaHeader.Audio ? "audio" : h.Kind == MediaHeader.Video ? "video" : "motion";
            string rest = h.Kind == MediaHeader.Audio ? ", \"sample_rate\": " + h.SampleRate + ", \"samples\": " + h.Samples
                        : h.Kind == MediaHeader.Video ? ", \"width\": " + h.Width + ", \"height\": " + h.Height +
                                                        ", \"format\": " + JsonOut.Str(h.BytesPerPixel == 4 ? "rgba32" : "rgb24")
                        : ", \"channels\": " + h.Channels;
            return "{\"type\": " + JsonOut.Str(kind) + ", \"utt\": " + h.Utt + ", \"seq\": " + h.Seq + ", \"pts\": " + h.Pts + rest + "}";
        }

        /// <summary>A validated open.face_points (null or five [x, y] doubles) as the encoder takes it.</summary>
        private static FacePoint[] Points(object v)
        {
            var list = v as List<object>;
            if (list == null) return null;
            var pts = new FacePoint[list.Count];
            for (int i = 0; i < pts.Length; i++) { var xy = (List<object>)list[i]; pts[i] = new FacePoint((double)xy[0], (double)xy[1]); }
            return pts;
        }

        /// <summary>Re-encode a decoded client request with the typed encoders the client really uses.</summary>
        private static string EncodeTyped(Message m)
        {
            MsgMap f = m.Fields;
            if (!f.ContainsKey("req")) return null;
            long req = (long)f["req"];
            byte[] b;
            switch (m.Type)
            {
                case "hello":
                    var versions = (List<object>)f["versions"];
                    if (versions.Count != 1) return null;   // the client only ever offers [its version]
                    b = ProtocolCodec.EncodeHello(req, (string)f["client"]); break;
                case "open":
                    b = ProtocolCodec.EncodeOpen(req, Persona.FromMap((MsgMap)f["persona"]), (bool)f["has_portrait"],
                                                 (int)(long)f["video_size"], Points(f["face_points"]), (long)f["first_utt"]);
                    break;
                case "resume": b = ProtocolCodec.EncodeResume(req, (string)f["session"], (string)f["secret"]); break;
                case "chat": case "speak": b = ProtocolCodec.EncodeText(m.Type, req, (string)f["session"], (string)f["text"]); break;
                case "interrupt": case "close": b = ProtocolCodec.EncodeSessionOnly(m.Type, req, (string)f["session"]); break;
                case "set_persona": b = ProtocolCodec.EncodeSetPersona(req, (string)f["session"], Persona.FromMap((MsgMap)f["persona"])); break;
                case "ping": b = ProtocolCodec.EncodePing(req, (string)f["session"]); break;
                case "load": b = ProtocolCodec.EncodeLoad(req); break;
                default: return null;
            }
            return JsonOut.Hex(b);
        }
    }
}
