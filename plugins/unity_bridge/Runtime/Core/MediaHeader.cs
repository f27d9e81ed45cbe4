// An allocation-free reader for the media headers that arrive once per frame (audio, video). It accepts
// only the canonical form the daemon writes (a msgpack map of known keys, integers as integers, the
// expected session) and otherwise declines, so that ProtocolCodec.DecodeMedia (the full validator, which
// allocates) decides: the fast path can never accept what the validator would refuse.
// tests/test_unity_vectors.py runs both on every golden media vector and checks that they agree.
using System;

namespace Xstreamer.Avatar.Core
{
    /// <summary>The fields of one per-frame media header.</summary>
    public struct MediaHeader
    {
        public const int Audio = 1, Video = 2, Motion = 3;
        /// <summary>Audio, Video or Motion.</summary>
        public int Kind;
        public long Utt, Seq, Pts;
        public long SampleRate, Samples;       // audio
        public long Width, Height;             // video
        /// <summary>Video bytes per pixel: 3 (rgb24) or 4 (rgba32).</summary>
        public int BytesPerPixel;
        /// <summary>Motion: the number of float32 channels.</summary>
        public long Channels;

        /// <summary>The payload size this header announces.</summary>
        public long ExpectedPayload
        {
            get { return Kind == Audio ? Samples * 2 : Kind == Video ? Width * Height * BytesPerPixel : Channels * 4; }
        }
    }

    /// <summary>Fast, allocation-free parse of canonical audio/video/motion media headers (declines anything else).</summary>
    public static class FastMediaHeader
    {
        private const int KV = 1, KSession = 2, KUtt = 4, KSeq = 8, KPts = 16, KType = 32, KSampleRate = 64, KSamples = 128,
                          KWidth = 256, KHeight = 512, KFormat = 1024, KChannels = 2048;

        private static readonly byte[][] Keys =
        {
            B("v"), B("session"), B("utt"), B("seq"), B("pts"), B("type"), B("sample_rate"), B("samples"), B("width"),
            B("height"), B("format"), B("channels"),
        };
        private static readonly byte[] TAudio = B("audio"), TVideo = B("video"), TMotion = B("motion"),
                                       FRgb24 = B("rgb24"), FRgba32 = B("rgba32");

        private static byte[] B(string s) { return System.Text.Encoding.ASCII.GetBytes(s); }

        private static bool Eq(byte[] b, int off, int len, byte[] what)
        {
            if (len != what.Length) return false;
            for (int i = 0; i < len; i++) if (b[off + i] != what[i]) return false;
            return true;
        }

        /// <summary>Unsigned msgpack integer at pos (positive fixint, uint8..uint64 up to long.MaxValue).</summary>
        private static bool UInt(byte[] b, ref int pos, int end, out long v)
        {
            v = 0;
            if (pos >= end) return false;
            byte t = b[pos++];
            if (t <= 0x7f) { v = t; return true; }
            int n = t == 0xcc ? 1 : t == 0xcd ? 2 : t == 0xce ? 4 : t == 0xcf ? 8 : 0;
            if (n == 0 || pos + n > end) return false;
            ulong u = 0;
            for (int i = 0; i < n; i++) u = (u << 8) | b[pos + i];
            pos += n;
            if (u > long.MaxValue) return false;
            v = (long)u;
            return true;
        }

        /// <summary>A msgpack str (fixstr / str8 / str16) at pos: its bytes' span.</summary>
        private static bool Str(byte[] b, ref int pos, int end, out int off, out int len)
        {
            off = len = 0;
            if (pos >= end) return false;
            byte t = b[pos++];
            if ((t & 0xe0) == 0xa0) len = t & 0x1f;
            else if (t == 0xd9 && pos < end) len = b[pos++];
            else if (t == 0xda && pos + 1 < end) { len = (b[pos] << 8) | b[pos + 1]; pos += 2; }
            else return false;
            if (pos + len > end) return false;
            off = pos;
            pos += len;
            return true;
        }

        /// <summary>
        /// Parse header b[off..off+len) of a packet of <paramref name="session"/> (its UTF-8 bytes). True only
        /// for a canonical audio or video header that the full validator accepts with the same values.
        /// </summary>
        public static bool TryParse(byte[] b, int off, int len, byte[] session, out MediaHeader h)
        {
            h = default(MediaHeader);
            int pos = off, end = off + len;
            if (len < 1 || len > ProtocolV1.MaxHeaderBytes) return false;
            int count;
            byte t = b[pos++];
            if ((t & 0xf0) == 0x80) count = t & 0x0f;
            else if (t == 0xde && pos + 1 < end) { count = (b[pos] << 8) | b[pos + 1]; pos += 2; }
            else return false;
            int seen = 0;
            long v = -1, sampleRate = ProtocolV1.SampleRate, samples = ProtocolV1.SamplesPerFrame;
            long width = ProtocolV1.FrameSize, height = ProtocolV1.FrameSize, channels = ProtocolV1.MotionChannelsDefault;
            int bpp = 3;
            for (int i = 0; i < count; i++)
            {
                int ko, kl;
                if (!Str(b, ref pos, end, out ko, out kl)) return false;
                int key = -1;
                for (int k = 0; k < Keys.Length; k++) if (Eq(b, ko, kl, Keys[k])) { key = k; break; }
                if (key < 0) return false;                      // unknown key: the validator refuses it
                int bit = 1 << key;
                if ((seen & bit) != 0) return false;            // duplicate key
                seen |= bit;
                int so, sl;
                switch (bit)
                {
                    case KV: if (!UInt(b, ref pos, end, out v)) return false; break;
                    case KSession: if (!Str(b, ref pos, end, out so, out sl) || !Eq(b, so, sl, session)) return false; break;
                    case KUtt: if (!UInt(b, ref pos, end, out h.Utt)) return false; break;
                    case KSeq: if (!UInt(b, ref pos, end, out h.Seq)) return false; break;
                    case KPts: if (!UInt(b, ref pos, end, out h.Pts)) return false; break;
                    case KType:
                        if (!Str(b, ref pos, end, out so, out sl)) return false;
                        if (Eq(b, so, sl, TAudio)) h.Kind = MediaHeader.Audio;
                        else if (Eq(b, so, sl, TVideo)) h.Kind = MediaHeader.Video;
                        else if (Eq(b, so, sl, TMotion)) h.Kind = MediaHeader.Motion;
                        else return false;
                        break;
                    case KSampleRate: if (!UInt(b, ref pos, end, out sampleRate)) return false; break;
                    case KSamples: if (!UInt(b, ref pos, end, out samples)) return false; break;
                    case KWidth: if (!UInt(b, ref pos, end, out width)) return false; break;
                    case KHeight: if (!UInt(b, ref pos, end, out height)) return false; break;
                    case KFormat:
                        if (!Str(b, ref pos, end, out so, out sl)) return false;
                        if (Eq(b, so, sl, FRgb24)) bpp = 3;
                        else if (Eq(b, so, sl, FRgba32)) bpp = 4;
                        else return false;
                        break;
                    case KChannels: if (!UInt(b, ref pos, end, out channels)) return false; break;
                }
            }
            if (pos != end || v != ProtocolV1.Version) return false;
            const int Base = KV | KSession | KUtt | KSeq | KPts | KType;
            if ((seen & Base) != Base) return false;
            int extra = seen & ~Base;
            if (h.Kind == MediaHeader.Audio)
            {
                if ((extra & ~(KSampleRate | KSamples)) != 0) return false;
                h.SampleRate = sampleRate;
                h.Samples = samples;
            }
            else if (h.Kind == MediaHeader.Video)
            {
                if ((extra & ~(KWidth | KHeight | KFormat)) != 0) return false;
                if (width < 1 || width > ProtocolV1.MaxFrameSide || height < 1 || height > ProtocolV1.MaxFrameSide) return false;
                h.Width = width;
                h.Height = height;
                h.BytesPerPixel = bpp;
            }
            else
            {
                if ((extra & ~KChannels) != 0) return false;
                if (channels < 1 || channels > ProtocolV1.MaxMotionChannels) return false;
                h.Channels = channels;
            }
            return true;
        }
    }
}
