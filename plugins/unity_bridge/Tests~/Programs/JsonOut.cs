// Minimal JSON writer for the test programs (decoded msgpack values -> JSON; floats keep a ".0").
using System;
using System.Collections.Generic;
using System.Globalization;
using System.Text;
using Xstreamer.Avatar.Core;

namespace Xstreamer.Avatar.Tests
{
    internal static class JsonOut
    {
        public static string Str(string s)
        {
            if (s == null) return "null";
            var b = new StringBuilder("\"");
            foreach (char c in s)
            {
                if (c == '"') b.Append("\\\"");
                else if (c == '\\') b.Append("\\\\");
                else if (c < 0x20 || c > 0x7e) b.Append("\\u").Append(((int)c).ToString("x4"));
                else b.Append(c);
            }
            return b.Append('"').ToString();
        }

        public static string Value(object v)
        {
            if (v == null) return "null";
            if (v is bool) return (bool)v ? "true" : "false";
            if (v is long) return ((long)v).ToString(CultureInfo.InvariantCulture);
            if (v is ulong) return ((ulong)v).ToString(CultureInfo.InvariantCulture);
            if (v is int) return ((int)v).ToString(CultureInfo.InvariantCulture);
            if (v is double)
            {
                double d = (double)v;
                string s = d.ToString("R", CultureInfo.InvariantCulture);
                if (s.IndexOfAny(new[] { '.', 'E', 'e', 'N', 'I' }) < 0) s += ".0";
                return s;
            }
            if (v is string) return Str((string)v);
            var bin = v as byte[];
            if (bin != null) return "{\"$hex\": " + Str(Hex(bin)) + "}";
            var map = v as MsgMap;
            if (map != null)
            {
                var parts = new List<string>();
                foreach (string k in map.Keys_) parts.Add(Str(k) + ": " + Value(map[k]));
                return "{" + string.Join(", ", parts.ToArray()) + "}";
            }
            var list = v as List<object>;
            if (list != null)
            {
                var parts = new List<string>();
                foreach (object o in list) parts.Add(Value(o));
                return "[" + string.Join(", ", parts.ToArray()) + "]";
            }
            return Str("<" + v.GetType().Name + ">");
        }

        public static string Hex(byte[] b)
        {
            var sb = new StringBuilder(b.Length * 2);
            foreach (byte x in b) sb.Append(x.ToString("x2"));
            return sb.ToString();
        }

        public static byte[] FromHex(string h)
        {
            var b = new byte[h.Length / 2];
            for (int i = 0; i < b.Length; i++) b[i] = Convert.ToByte(h.Substring(2 * i, 2), 16);
            return b;
        }
    }
}
