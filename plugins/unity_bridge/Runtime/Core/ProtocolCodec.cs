// Encoding and decoding of protocol v2 multipart messages (mirror of sdk/protocol/codec.py).
// Decoding never throws anything but ProtocolException, whatever the bytes.
using System;
using System.Collections.Generic;

namespace Xstreamer.Avatar.Core
{
    /// <summary>Encoders for client requests and decoders for every v1 message family.</summary>
    public static class ProtocolCodec
    {
        /// <summary>Parse a header frame into a map; checks size, map-ness and the version.</summary>
        public static MsgMap UnpackHeader(byte[] raw)
        {
            if (raw == null || raw.Length > ProtocolV1.MaxHeaderBytes)
                throw new ProtocolException(ErrorCode.Malformed, "header frame missing or larger than 64 KiB");
            object obj;
            try { obj = MsgPackReader.Unpack(raw); }
            catch (MsgPackException e) { throw new ProtocolException(ErrorCode.Malformed, "header is not msgpack: " + e.Message); }
            var map = obj as MsgMap;
            if (map == null) throw new ProtocolException(ErrorCode.Malformed, "header is not a msgpack map");
            object v;
            if (!map.TryGetValue("v", out v) || !(v is long || v is ulong))
                throw new ProtocolException(ErrorCode.Malformed, "header lacks an integer 'v' (protocol version)");
            if (!(v is long) || (long)v != ProtocolV1.Version)
                throw new ProtocolException(ErrorCode.UnsupportedVersion,
                    "protocol version " + v + " is not supported (supported: [" + ProtocolV1.Version + "])");
            return map;
        }

        /// <summary>Decode a daemon -> client control message ([header, *blobs]).</summary>
        public static Message DecodeServer(IList<byte[]> frames)
        {
            if (frames == null || frames.Count == 0) throw new ProtocolException(ErrorCode.Malformed, "empty message");
            string type;
            MsgMap f = ProtocolSchema.Validate(ProtocolSchema.Family.Server, UnpackHeader(frames[0]), out type);
            switch (type)
            {
                case "welcome": return new WelcomeMessage(f);
                case "opened": return new OpenedMessage(f);
                case "ack": return new AckMessage(f);
                case "pong": return new PongMessage(f);
                case "load_report": return new LoadReportMessage(f);
                default: return new ErrorMessage(f);
            }
        }

        /// <summary>Decode a client -> daemon message (as the daemon would; used by tests and tools).</summary>
        public static Message DecodeClient(IList<byte[]> frames)
        {
            if (frames == null || frames.Count == 0) throw new ProtocolException(ErrorCode.Malformed, "empty message");
            string type;
            MsgMap f = ProtocolSchema.Validate(ProtocolSchema.Family.Client, UnpackHeader(frames[0]), out type);
            int blobs = frames.Count - 1;
            string session = f.ContainsKey("session") ? (string)f["session"] : null;
            if (type == "chat" || type == "speak")
            {
                string text = (string)f["text"];
                if (text.Trim().Length == 0)
                    throw new ProtocolException(ErrorCode.EmptyText, type + " text is empty", session);
                int n = 0;
                foreach (char c in text) if (!char.IsLowSurrogate(c)) n++;
                if (n > ProtocolV1.MaxTextChars)
                    throw new ProtocolException(ErrorCode.TextTooLong, type + " text has " + n + " characters", session);
            }
            else if (type == "open")
            {
                if (blobs != ((bool)f["has_portrait"] ? 1 : 0) || (blobs == 1 && frames[1].Length == 0))
                    throw new ProtocolException(ErrorCode.Malformed, "open takes one non-empty blob with has_portrait, none without");
                if (blobs > 0 && frames[1].Length > ProtocolV1.MaxPortraitBytes)
                    throw new ProtocolException(ErrorCode.InvalidPortrait, "portrait is larger than 16 MiB");
            }
            else if (type == "audio")
            {
                if (blobs != 1 || frames[1].Length % 2 != 0)
                    throw new ProtocolException(ErrorCode.InvalidAudio, "audio needs one blob of PCM16 (an even byte count)", session);
                if (frames[1].Length / 2 > (long)f["sample_rate"] * 10)
                    throw new ProtocolException(ErrorCode.InvalidAudio, "audio message longer than 10 s at its sample_rate", session);
            }
            if (type != "open" && type != "audio" && blobs > 0)
                throw new ProtocolException(ErrorCode.Malformed, type + " takes no binary frames");
            return new Message(type, f);
        }

        /// <summary>The topic frame of a media key: "xs2/" + key (ASCII). A session's topic is opened.topic.</summary>
        public static byte[] TopicFor(string session)
        {
            var b = new byte[ProtocolV1.TopicPrefix.Length + session.Length];
            for (int i = 0; i < ProtocolV1.TopicPrefix.Length; i++) b[i] = (byte)ProtocolV1.TopicPrefix[i];
            for (int i = 0; i < session.Length; i++)
            {
                if (session[i] > 127) throw new ProtocolException(ErrorCode.Malformed, "session id is not ASCII");
                b[ProtocolV1.TopicPrefix.Length + i] = (byte)session[i];
            }
            return b;
        }

        /// <summary>Decode [topic, header, payload?]; checks the payload size against the header.</summary>
        public static MediaPacket DecodeMedia(IList<byte[]> frames, out byte[] payload)
        {
            payload = null;
            if (frames == null || (frames.Count != 2 && frames.Count != 3))
                throw new ProtocolException(ErrorCode.Malformed, "media message has " + (frames == null ? 0 : frames.Count) +
                                            " frames (2 or 3 expected)");
            string type;
            MsgMap f = ProtocolSchema.Validate(ProtocolSchema.Family.Media, UnpackHeader(frames[1]), out type);
            MediaPacket pkt;
            switch (type)
            {
                case "audio": pkt = new AudioPacket(f); break;
                case "video": pkt = new VideoPacket(f); break;
                case "motion": pkt = new MotionPacket(f); break;
                case "text": pkt = new TextPacket(f); break;
                case "event": pkt = new EventPacket(f); break;
                default: pkt = new StatePacket(f); break;
            }
            if (!StartsWith(frames[0], ProtocolV1.TopicPrefix))
                throw new ProtocolException(ErrorCode.Malformed, "not a v2 media topic");
            byte[] data = frames.Count == 3 ? frames[2] : null;
            long expected = -1;
            var audio = pkt as AudioPacket;
            var video = pkt as VideoPacket;
            var motion = pkt as MotionPacket;
            if (audio != null) expected = (long)audio.Samples * 2;
            else if (video != null) expected = (long)video.Width * video.Height * video.BytesPerPixel;
            else if (motion != null) expected = (long)motion.Channels * 4;
            if (expected >= 0 && (data == null || data.Length != expected))
                throw new ProtocolException(ErrorCode.Malformed, type + " payload has " + (data == null ? "None" : data.Length.ToString()) +
                                            " bytes, header says " + expected);
            if (expected < 0 && data != null)
                throw new ProtocolException(ErrorCode.Malformed, type + " packets carry no payload");
            payload = data;
            return pkt;
        }

        private static bool StartsWith(byte[] a, string prefix)
        {
            if (a == null || a.Length < prefix.Length) return false;
            for (int i = 0; i < prefix.Length; i++) if (a[i] != (byte)prefix[i]) return false;
            return true;
        }


        // ---------------------------------------------------------------------------------------------
        // Client requests, byte-compatible with pydantic's model_dump order + msgpack.packb.

        private static MsgPackWriter Start(string type, long req, int fieldCount)
        {
            var w = new MsgPackWriter();
            w.WriteMapHeader(fieldCount);
            w.Write("v"); w.Write((long)ProtocolV1.Version);
            w.Write("type"); w.Write(type);
            w.Write("req"); w.Write(req);
            return w;
        }

        public static byte[] EncodeHello(long req, string client)
        {
            var w = Start("hello", req, 5);
            w.Write("versions"); w.WriteArrayHeader(1); w.Write((long)ProtocolV1.Version);
            w.Write("client"); w.Write(client ?? "");
            return w.ToArray();
        }

        /// <summary>
        /// open: the persona, whether a portrait blob follows, the video side (256 or 512), for a portrait whose
        /// face cannot be found its five <paramref name="facePoints"/> (null: none), and the session's first
        /// utterance id (after a daemon restart: the last id + 1). Throws ArgumentException for points that are
        /// not five finite pairs.
        /// </summary>
        public static byte[] EncodeOpen(long req, Persona persona, bool hasPortrait, int videoSize = ProtocolV1.FrameSize,
                                        FacePoint[] facePoints = null, long firstUtt = 1)
        {
            FacePoints.Check(facePoints);
            var w = Start("open", req, 8);
            w.Write("persona"); (persona ?? new Persona()).WriteTo(w);
            w.Write("has_portrait"); w.Write(hasPortrait);
            w.Write("video_size"); w.Write((long)videoSize);
            w.Write("face_points");
            if (facePoints == null) w.WriteNil();
            else
            {
                // pydantic dumps list[tuple[float, float]] as arrays of two float64
                w.WriteArrayHeader(facePoints.Length);
                foreach (FacePoint p in facePoints) { w.WriteArrayHeader(2); w.Write(p.X); w.Write(p.Y); }
            }
            w.Write("first_utt"); w.Write(firstUtt);
            return w.ToArray();
        }

        /// <summary>resume: hold a session another connection opened, with the secret of its opened.</summary>
        public static byte[] EncodeResume(long req, string session, string secret)
        {
            var w = Start("resume", req, 5);
            w.Write("session"); w.Write(session);
            w.Write("secret"); w.Write(secret);
            return w.ToArray();
        }

        /// <summary>chat or speak: the persona answers / the avatar says the text verbatim.</summary>
        public static byte[] EncodeText(string type, long req, string session, string text)
        {
            if (type != "chat" && type != "speak") throw new ArgumentException("type must be chat or speak");
            var w = Start(type, req, 5);
            w.Write("session"); w.Write(session);
            w.Write("text"); w.Write(text);
            return w.ToArray();
        }

        /// <summary>interrupt or close (a session-only request).</summary>
        public static byte[] EncodeSessionOnly(string type, long req, string session)
        {
            if (type != "interrupt" && type != "close") throw new ArgumentException("type must be interrupt or close");
            var w = Start(type, req, 4);
            w.Write("session"); w.Write(session);
            return w.ToArray();
        }

        public static byte[] EncodeSetPersona(long req, string session, Persona persona)
        {
            var w = Start("set_persona", req, 5);
            w.Write("session"); w.Write(session);
            w.Write("persona"); (persona ?? new Persona()).WriteTo(w);
            return w.ToArray();
        }

        public static byte[] EncodePing(long req, string session)
        {
            var w = Start("ping", req, 4);
            w.Write("session"); if (session == null) w.WriteNil(); else w.Write(session);
            return w.ToArray();
        }

        /// <summary>Ask the daemon for its load; answered by a <see cref="LoadReportMessage"/>.</summary>
        public static byte[] EncodeLoad(long req)
        {
            return Start("load", req, 3).ToArray();
        }

        /// <summary>Re-encode a normalized header (for round-trip checks against golden vectors).</summary>
        public static byte[] Reencode(Message m)
        {
            var w = new MsgPackWriter();
            w.WriteValue(m.Fields);
            return w.ToArray();
        }
    }
}
