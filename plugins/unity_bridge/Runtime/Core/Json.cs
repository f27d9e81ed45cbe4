// Strict, reflection-free JSON reader (RFC 8259) for the studio's persona / settings files. Values decode
// to the closed set MsgPackReader uses, so ProtocolSchema can validate them:
//   null, bool, long (integers that fit), double (other numbers), string, List<object>, MsgMap (key order kept).
// Safe under IL2CPP / AOT: no reflection, no dynamic code, no JsonUtility.
using System;
using System.Collections.Generic;
using System.Globalization;
using System.Text;

namespace Xstreamer.Avatar.Core
{
    /// <summary>Text that is not one well-formed JSON value; Line and Column (1-based) say where.</summary>
    public sealed class JsonException : Exception
    {
        public readonly int Line, Column;

        public JsonException(string message, int line, int column)
            : base(message + " at line " + line + ", column " + column)
        {
            Line = line;
            Column = column;
        }
    }

    /// <summary>Parses one JSON document.</summary>
    public static class JsonReader
    {
        private const int MaxDepth = 64;

        /// <summary>Decode exactly one JSON value spanning all of <paramref name="text"/> (a leading BOM is skipped).</summary>
        public static object Parse(string text)
        {
            if (text == null) throw new JsonException("no text", 1, 1);
            var p = new Parser(text);
            if (p.Pos < text.Length && text[p.Pos] == '\uFEFF') p.Pos++;
            p.SkipWs();
            object v = p.Value(0);
            p.SkipWs();
            if (p.Pos != text.Length) throw p.Error("extra text after the JSON value");
            return v;
        }

        /// <summary>Decode UTF-8 bytes (strict: invalid UTF-8 is a JsonException) and parse them.</summary>
        public static object Parse(byte[] utf8)
        {
            if (utf8 == null) throw new JsonException("no data", 1, 1);
            string text;
            try { text = new UTF8Encoding(false, true).GetString(utf8); }
            catch (ArgumentException) { throw new JsonException("the file is not valid UTF-8 text", 1, 1); }
            return Parse(text);
        }

        private sealed class Parser
        {
            private readonly string _s;
            public int Pos;

            public Parser(string s) { _s = s; }

            public JsonException Error(string message)
            {
                int line = 1, col = 1;
                for (int i = 0; i < Pos && i < _s.Length; i++)
                {
                    if (_s[i] == '\n') { line++; col = 1; } else col++;
                }
                return new JsonException(message, line, col);
            }

            public void SkipWs()
            {
                while (Pos < _s.Length)
                {
                    char c = _s[Pos];
                    if (c != ' ' && c != '\t' && c != '\n' && c != '\r') return;
                    Pos++;
                }
            }

            private char Peek()
            {
                if (Pos >= _s.Length) throw Error("unexpected end of text");
                return _s[Pos];
            }

            private void Expect(string word)
            {
                if (string.CompareOrdinal(_s, Pos, word, 0, word.Length) != 0) throw Error("invalid literal");
                Pos += word.Length;
            }

            public object Value(int depth)
            {
                if (depth > MaxDepth) throw Error("nesting too deep");
                char c = Peek();
                switch (c)
                {
                    case '{': return Object(depth);
                    case '[': return Array(depth);
                    case '"': return String();
                    case 't': Expect("true"); return true;
                    case 'f': Expect("false"); return false;
                    case 'n': Expect("null"); return null;
                    default:
                        if (c == '-' || (c >= '0' && c <= '9')) return Number();
                        throw Error("unexpected character '" + c + "'");
                }
            }

            private MsgMap Object(int depth)
            {
                Pos++;   // {
                var map = new MsgMap();
                SkipWs();
                if (Peek() == '}') { Pos++; return map; }
                while (true)
                {
                    SkipWs();
                    if (Peek() != '"') throw Error("expected a string key");
                    int keyPos = Pos;
                    string key = String();
                    SkipWs();
                    if (Peek() != ':') throw Error("expected ':'");
                    Pos++;
                    SkipWs();
                    object v = Value(depth + 1);
                    if (map.ContainsKey(key)) { Pos = keyPos; throw Error("duplicate key \"" + key + "\""); }
                    map.AddOrdered(key, v);
                    SkipWs();
                    char c = Peek();
                    Pos++;
                    if (c == '}') return map;
                    if (c != ',') { Pos--; throw Error("expected ',' or '}'"); }
                }
            }

            private List<object> Array(int depth)
            {
                Pos++;   // [
                var list = new List<object>();
                SkipWs();
                if (Peek() == ']') { Pos++; return list; }
                while (true)
                {
                    SkipWs();
                    list.Add(Value(depth + 1));
                    SkipWs();
                    char c = Peek();
                    Pos++;
                    if (c == ']') return list;
                    if (c != ',') { Pos--; throw Error("expected ',' or ']'"); }
                }
            }

            private string String()
            {
                Pos++;   // opening quote
                var b = new StringBuilder();
                while (true)
                {
                    if (Pos >= _s.Length) throw Error("unterminated string");
                    char c = _s[Pos++];
                    if (c == '"') return b.ToString();
                    if (c < 0x20) { Pos--; throw Error("control character in a string"); }
                    if (c != '\\') { b.Append(c); continue; }
                    if (Pos >= _s.Length) throw Error("unterminated string");
                    char e = _s[Pos++];
                    switch (e)
                    {
                        case '"': b.Append('"'); break;
                        case '\\': b.Append('\\'); break;
                        case '/': b.Append('/'); break;
                        case 'b': b.Append('\b'); break;
                        case 'f': b.Append('\f'); break;
                        case 'n': b.Append('\n'); break;
                        case 'r': b.Append('\r'); break;
                        case 't': b.Append('\t'); break;
                        case 'u':
                        {
                            if (Pos + 4 > _s.Length) throw Error("truncated \\u escape");
                            int code;
                            if (!int.TryParse(_s.Substring(Pos, 4), NumberStyles.AllowHexSpecifier, CultureInfo.InvariantCulture, out code))
                                throw Error("invalid \\u escape");
                            Pos += 4;
                            b.Append((char)code);   // surrogate pairs arrive as two escapes, as Python writes them
                            break;
                        }
                        default: Pos--; throw Error("invalid escape '\\" + e + "'");
                    }
                }
            }

            private object Number()
            {
                int start = Pos;
                if (_s[Pos] == '-') Pos++;
                if (Pos >= _s.Length) throw Error("truncated number");
                if (_s[Pos] == '0') Pos++;
                else if (_s[Pos] >= '1' && _s[Pos] <= '9') Digits();
                else throw Error("invalid number");
                bool integral = true;
                if (Pos < _s.Length && _s[Pos] == '.')
                {
                    integral = false;
                    Pos++;
                    if (Pos >= _s.Length || _s[Pos] < '0' || _s[Pos] > '9') throw Error("digits expected after '.'");
                    Digits();
                }
                if (Pos < _s.Length && (_s[Pos] == 'e' || _s[Pos] == 'E'))
                {
                    integral = false;
                    Pos++;
                    if (Pos < _s.Length && (_s[Pos] == '+' || _s[Pos] == '-')) Pos++;
                    if (Pos >= _s.Length || _s[Pos] < '0' || _s[Pos] > '9') throw Error("digits expected in the exponent");
                    Digits();
                }
                string lit = _s.Substring(start, Pos - start);
                long l;
                if (integral && long.TryParse(lit, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out l)) return l;
                double d;
                if (!double.TryParse(lit, NumberStyles.Float, CultureInfo.InvariantCulture, out d) || double.IsInfinity(d))
                    throw Error("number out of range");
                return d;
            }

            private void Digits() { while (Pos < _s.Length && _s[Pos] >= '0' && _s[Pos] <= '9') Pos++; }
        }
    }
}
