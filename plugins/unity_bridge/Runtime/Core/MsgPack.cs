// Hand-written msgpack reader/writer for protocol v2 headers. No reflection, no dynamic code:
// safe under IL2CPP / AOT. Values decode to a small closed set of CLR types:
//   null, bool, long, ulong (only above long.MaxValue), double, string, byte[],
//   List<object>, Dictionary<string, object> (ordered keys kept in MsgMap.Keys), MsgExt.
using System;
using System.Collections.Generic;
using System.Text;

namespace Xstreamer.Avatar.Core
{
    /// <summary>A msgpack map that remembers key order (needed for byte-exact re-encoding).</summary>
    public sealed class MsgMap : Dictionary<string, object>
    {
        /// <summary>Keys in wire order.</summary>
        public readonly List<string> Keys_ = new List<string>();

        /// <summary>Adds a key, refusing duplicates (a duplicate key is a malformed header).</summary>
        public void AddOrdered(string key, object value)
        {
            if (ContainsKey(key)) throw new MsgPackException("duplicate map key '" + key + "'");
            Add(key, value);
            Keys_.Add(key);
        }
    }

    /// <summary>An extension value (never valid in protocol v2 headers, kept only to reject it).</summary>
    public sealed class MsgExt
    {
        public readonly sbyte Type;
        public readonly byte[] Data;
        public MsgExt(sbyte type, byte[] data) { Type = type; Data = data; }
    }

    /// <summary>Raised for bytes that are not one complete, well-formed msgpack value.</summary>
    public sealed class MsgPackException : Exception
    {
        public MsgPackException(string message) : base(message) { }
    }

    /// <summary>Decodes one msgpack value from a byte array (the whole array must be consumed).</summary>
    public static class MsgPackReader
    {
        private const int MaxDepth = 64;
        private static readonly UTF8Encoding StrictUtf8 = new UTF8Encoding(false, true);

        /// <summary>Decode exactly one value spanning all of <paramref name="data"/>.</summary>
        public static object Unpack(byte[] data)
        {
            if (data == null) throw new MsgPackException("no data");
            int pos = 0;
            object value = Read(data, ref pos, 0);
            if (pos != data.Length) throw new MsgPackException("extra bytes after the msgpack value");
            return value;
        }

        private static void Need(byte[] d, int pos, long n)
        {
            if (n < 0 || pos + n > d.Length) throw new MsgPackException("truncated msgpack data");
        }

        private static ulong BigEndian(byte[] d, ref int pos, int n)
        {
            Need(d, pos, n);
            ulong v = 0;
            for (int i = 0; i < n; i++) v = (v << 8) | d[pos + i];
            pos += n;
            return v;
        }

        private static object Read(byte[] d, ref int pos, int depth)
        {
            if (depth > MaxDepth) throw new MsgPackException("msgpack nesting too deep");
            Need(d, pos, 1);
            byte b = d[pos++];
            if (b <= 0x7f) return (long)b;
            if (b >= 0xe0) return (long)(sbyte)b;
            if ((b & 0xf0) == 0x80) return ReadMap(d, ref pos, b & 0x0f, depth);
            if ((b & 0xf0) == 0x90) return ReadArray(d, ref pos, b & 0x0f, depth);
            if ((b & 0xe0) == 0xa0) return ReadStr(d, ref pos, b & 0x1f);
            switch (b)
            {
                case 0xc0: return null;
                case 0xc2: return false;
                case 0xc3: return true;
                case 0xc4: return ReadBin(d, ref pos, (long)BigEndian(d, ref pos, 1));
                case 0xc5: return ReadBin(d, ref pos, (long)BigEndian(d, ref pos, 2));
                case 0xc6: return ReadBin(d, ref pos, (long)BigEndian(d, ref pos, 4));
                case 0xc7: return ReadExt(d, ref pos, (long)BigEndian(d, ref pos, 1));
                case 0xc8: return ReadExt(d, ref pos, (long)BigEndian(d, ref pos, 2));
                case 0xc9: return ReadExt(d, ref pos, (long)BigEndian(d, ref pos, 4));
                case 0xca:
                {
                    uint bits = (uint)BigEndian(d, ref pos, 4);
                    return (double)BitConverter.ToSingle(BitConverter.GetBytes(bits), 0);
                }
                case 0xcb:
                    return BitConverter.Int64BitsToDouble((long)BigEndian(d, ref pos, 8));
                case 0xcc: return (long)BigEndian(d, ref pos, 1);
                case 0xcd: return (long)BigEndian(d, ref pos, 2);
                case 0xce: return (long)BigEndian(d, ref pos, 4);
                case 0xcf:
                {
                    ulong u = BigEndian(d, ref pos, 8);
                    if (u <= long.MaxValue) return (long)u;
                    return u;
                }
                case 0xd0: return (long)(sbyte)BigEndian(d, ref pos, 1);
                case 0xd1: return (long)(short)BigEndian(d, ref pos, 2);
                case 0xd2: return (long)(int)BigEndian(d, ref pos, 4);
                case 0xd3: return (long)BigEndian(d, ref pos, 8);
                case 0xd4: return ReadExt(d, ref pos, 1);
                case 0xd5: return ReadExt(d, ref pos, 2);
                case 0xd6: return ReadExt(d, ref pos, 4);
                case 0xd7: return ReadExt(d, ref pos, 8);
                case 0xd8: return ReadExt(d, ref pos, 16);
                case 0xd9: return ReadStr(d, ref pos, (long)BigEndian(d, ref pos, 1));
                case 0xda: return ReadStr(d, ref pos, (long)BigEndian(d, ref pos, 2));
                case 0xdb: return ReadStr(d, ref pos, (long)BigEndian(d, ref pos, 4));
                case 0xdc: return ReadArray(d, ref pos, (long)BigEndian(d, ref pos, 2), depth);
                case 0xdd: return ReadArray(d, ref pos, (long)BigEndian(d, ref pos, 4), depth);
                case 0xde: return ReadMap(d, ref pos, (long)BigEndian(d, ref pos, 2), depth);
                case 0xdf: return ReadMap(d, ref pos, (long)BigEndian(d, ref pos, 4), depth);
                default: throw new MsgPackException("invalid msgpack type byte 0x" + b.ToString("x2"));
            }
        }

        private static string ReadStr(byte[] d, ref int pos, long n)
        {
            Need(d, pos, n);
            string s;
            try { s = StrictUtf8.GetString(d, pos, (int)n); }
            catch (ArgumentException) { throw new MsgPackException("string is not valid UTF-8"); }
            pos += (int)n;
            return s;
        }

        private static byte[] ReadBin(byte[] d, ref int pos, long n)
        {
            Need(d, pos, n);
            var r = new byte[n];
            Buffer.BlockCopy(d, pos, r, 0, (int)n);
            pos += (int)n;
            return r;
        }

        private static MsgExt ReadExt(byte[] d, ref int pos, long n)
        {
            Need(d, pos, 1);
            sbyte t = (sbyte)d[pos++];
            return new MsgExt(t, ReadBin(d, ref pos, n));
        }

        private static List<object> ReadArray(byte[] d, ref int pos, long n, int depth)
        {
            Need(d, pos, n); // each element needs at least one byte
            var list = new List<object>((int)n);
            for (long i = 0; i < n; i++) list.Add(Read(d, ref pos, depth + 1));
            return list;
        }

        private static MsgMap ReadMap(byte[] d, ref int pos, long n, int depth)
        {
            Need(d, pos, n * 2);
            var map = new MsgMap();
            for (long i = 0; i < n; i++)
            {
                object key = Read(d, ref pos, depth + 1);
                string skey = key as string;
                if (skey == null)
                {
                    var bkey = key as byte[];
                    if (bkey == null) throw new MsgPackException("map key is not a string");
                    skey = "\u0000bin:" + Convert.ToBase64String(bkey); // never a valid field name
                }
                map.AddOrdered(skey, Read(d, ref pos, depth + 1));
            }
            return map;
        }
    }

    /// <summary>Encodes values the way Python's msgpack.packb(use_bin_type=True) does (smallest forms).</summary>
    public sealed class MsgPackWriter
    {
        private readonly List<byte> _buf = new List<byte>(256);

        /// <summary>The encoded bytes so far.</summary>
        public byte[] ToArray() { return _buf.ToArray(); }

        private void Be(ulong v, int n) { for (int i = n - 1; i >= 0; i--) _buf.Add((byte)(v >> (8 * i))); }

        public void WriteNil() { _buf.Add(0xc0); }
        public void Write(bool v) { _buf.Add(v ? (byte)0xc3 : (byte)0xc2); }

        public void Write(long v)
        {
            if (v >= 0)
            {
                if (v <= 0x7f) _buf.Add((byte)v);
                else if (v <= 0xff) { _buf.Add(0xcc); Be((ulong)v, 1); }
                else if (v <= 0xffff) { _buf.Add(0xcd); Be((ulong)v, 2); }
                else if (v <= 0xffffffffL) { _buf.Add(0xce); Be((ulong)v, 4); }
                else { _buf.Add(0xcf); Be((ulong)v, 8); }
            }
            else
            {
                if (v >= -32) _buf.Add((byte)(sbyte)v);
                else if (v >= sbyte.MinValue) { _buf.Add(0xd0); Be((ulong)v, 1); }
                else if (v >= short.MinValue) { _buf.Add(0xd1); Be((ulong)v, 2); }
                else if (v >= int.MinValue) { _buf.Add(0xd2); Be((ulong)v, 4); }
                else { _buf.Add(0xd3); Be((ulong)v, 8); }
            }
        }

        public void Write(double v) { _buf.Add(0xcb); Be((ulong)BitConverter.DoubleToInt64Bits(v), 8); }

        public void Write(string s)
        {
            if (s == null) { WriteNil(); return; }
            byte[] b = Encoding.UTF8.GetBytes(s);
            int n = b.Length;
            if (n <= 31) _buf.Add((byte)(0xa0 | n));
            else if (n <= 0xff) { _buf.Add(0xd9); Be((ulong)n, 1); }
            else if (n <= 0xffff) { _buf.Add(0xda); Be((ulong)n, 2); }
            else { _buf.Add(0xdb); Be((ulong)n, 4); }
            _buf.AddRange(b);
        }

        public void Write(byte[] b)
        {
            if (b == null) { WriteNil(); return; }
            int n = b.Length;
            if (n <= 0xff) { _buf.Add(0xc4); Be((ulong)n, 1); }
            else if (n <= 0xffff) { _buf.Add(0xc5); Be((ulong)n, 2); }
            else { _buf.Add(0xc6); Be((ulong)n, 4); }
            _buf.AddRange(b);
        }

        public void WriteMapHeader(int n)
        {
            if (n <= 15) _buf.Add((byte)(0x80 | n));
            else if (n <= 0xffff) { _buf.Add(0xde); Be((ulong)n, 2); }
            else { _buf.Add(0xdf); Be((ulong)n, 4); }
        }

        public void WriteArrayHeader(int n)
        {
            if (n <= 15) _buf.Add((byte)(0x90 | n));
            else if (n <= 0xffff) { _buf.Add(0xdc); Be((ulong)n, 2); }
            else { _buf.Add(0xdd); Be((ulong)n, 4); }
        }

        /// <summary>Writes any value of the closed set that <see cref="MsgPackReader"/> produces.</summary>
        public void WriteValue(object v)
        {
            if (v == null) { WriteNil(); return; }
            if (v is bool) { Write((bool)v); return; }
            if (v is long) { Write((long)v); return; }
            if (v is int) { Write((long)(int)v); return; }
            if (v is double) { Write((double)v); return; }
            if (v is string) { Write((string)v); return; }
            if (v is byte[]) { Write((byte[])v); return; }
            var map = v as MsgMap;
            if (map != null)
            {
                WriteMapHeader(map.Count);
                foreach (string k in map.Keys_) { Write(k); WriteValue(map[k]); }
                return;
            }
            var list = v as List<object>;
            if (list != null)
            {
                WriteArrayHeader(list.Count);
                foreach (object o in list) WriteValue(o);
                return;
            }
            throw new MsgPackException("cannot encode a value of type " + v.GetType().Name);
        }
    }
}
