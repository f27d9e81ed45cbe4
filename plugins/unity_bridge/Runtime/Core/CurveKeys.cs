// CURVE keys as ZeroMQ writes them: Z85 text (ZeroMQ RFC 32: 32 bytes <-> 40 characters) and the
// certificate files of pyzmq's zmq.auth.create_certificates / `xstreamer keys` (ZPL text with
// `public-key = "..."` and, in the secret file, `secret-key = "..."`).
using System;
using System.IO;
using System.Text;

namespace Xstreamer.Avatar.Core
{
    /// <summary>Z85 encoding (ZeroMQ RFC 32), the text form of CURVE keys.</summary>
    public static class Z85
    {
        private const string Alphabet =
            "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ.-:+=^!/*?&<>()[]{}@%$#";

        /// <summary>Encode bytes (length a multiple of 4).</summary>
        public static string Encode(byte[] data)
        {
            if (data == null || data.Length % 4 != 0) throw new ArgumentException("Z85 encodes a multiple of 4 bytes");
            var sb = new StringBuilder(data.Length * 5 / 4);
            var chunk = new char[5];
            for (int i = 0; i < data.Length; i += 4)
            {
                uint v = (uint)(data[i] << 24 | data[i + 1] << 16 | data[i + 2] << 8 | data[i + 3]);
                for (int j = 4; j >= 0; j--) { chunk[j] = Alphabet[(int)(v % 85)]; v /= 85; }
                sb.Append(chunk);
            }
            return sb.ToString();
        }

        /// <summary>Decode text (length a multiple of 5); FormatException for anything else.</summary>
        public static byte[] Decode(string text)
        {
            if (text == null || text.Length % 5 != 0) throw new FormatException("Z85 text length must be a multiple of 5");
            var output = new byte[text.Length / 5 * 4];
            for (int i = 0, o = 0; i < text.Length; i += 5, o += 4)
            {
                ulong v = 0;
                for (int j = 0; j < 5; j++)
                {
                    int d = Alphabet.IndexOf(text[i + j]);
                    if (d < 0) throw new FormatException("'" + text[i + j] + "' is not a Z85 character");
                    v = v * 85 + (ulong)d;
                }
                if (v > uint.MaxValue) throw new FormatException("Z85 group out of range");
                output[o] = (byte)(v >> 24); output[o + 1] = (byte)(v >> 16); output[o + 2] = (byte)(v >> 8); output[o + 3] = (byte)v;
            }
            return output;
        }
    }

    /// <summary>
    /// What a CURVE client needs: the daemon's public key and this client's key pair (the daemon lists the
    /// client's public key among those it accepts: "ironhouse").
    /// </summary>
    public sealed class CurveKeys
    {
        public readonly byte[] ServerPublicKey, ClientPublicKey, ClientSecretKey;

        /// <summary>From raw 32-byte keys. The client public key is derived from its secret key when null.</summary>
        public CurveKeys(byte[] serverPublicKey, byte[] clientPublicKey, byte[] clientSecretKey)
        {
            Check(serverPublicKey, "server public key");
            Check(clientSecretKey, "client secret key");
            if (clientPublicKey == null)
            {
                clientPublicKey = new byte[32];
                Curve25519.ScalarMultBase(clientPublicKey, clientSecretKey);
            }
            Check(clientPublicKey, "client public key");
            var derived = new byte[32];
            Curve25519.ScalarMultBase(derived, clientSecretKey);
            for (int i = 0; i < 32; i++)
                if (derived[i] != clientPublicKey[i])
                    throw new ArgumentException("the client public key does not belong to the client secret key");
            ServerPublicKey = (byte[])serverPublicKey.Clone();
            ClientPublicKey = (byte[])clientPublicKey.Clone();
            ClientSecretKey = (byte[])clientSecretKey.Clone();
        }

        private static void Check(byte[] k, string what)
        {
            if (k == null || k.Length != 32) throw new ArgumentException(what + " must be 32 bytes (40 Z85 characters)");
        }

        /// <summary>From Z85 text (40 characters each); clientPublic may be null (derived).</summary>
        public static CurveKeys FromZ85(string serverPublic, string clientPublic, string clientSecret)
        {
            return new CurveKeys(Key(serverPublic, "server public key"), clientPublic == null ? null : Key(clientPublic, "client public key"),
                                 Key(clientSecret, "client secret key"));
        }

        private static byte[] Key(string z85, string what)
        {
            if (z85 == null || z85.Trim().Length != 40) throw new ArgumentException(what + " must be 40 Z85 characters");
            try { return Z85.Decode(z85.Trim()); }
            catch (FormatException e) { throw new ArgumentException(what + ": " + e.Message); }
        }

        /// <summary>
        /// From certificate files: the daemon's public certificate (e.g. server.key) and this client's secret
        /// certificate (e.g. client.key_secret), as written by zmq.auth.create_certificates / `xstreamer keys`.
        /// </summary>
        public static CurveKeys FromCertificates(string serverPublicCertPath, string clientSecretCertPath)
        {
            string server = ReadCertField(serverPublicCertPath, "public-key");
            string secret = ReadCertField(clientSecretCertPath, "secret-key");
            string pub = ReadCertField(clientSecretCertPath, "public-key", optional: true);
            return FromZ85(server, pub, secret);
        }

        /// <summary>A quoted key field of a ZPL certificate file (null when optional and absent).</summary>
        public static string ReadCertField(string path, string field, bool optional = false)
        {
            string[] lines;
            try { lines = File.ReadAllLines(path); }
            catch (Exception e) { throw new ArgumentException("cannot read certificate " + path + ": " + e.Message); }
            foreach (string raw in lines)
            {
                string line = raw.Trim();
                if (line.StartsWith("#", StringComparison.Ordinal)) continue;
                int eq = line.IndexOf('=');
                if (eq < 0 || line.Substring(0, eq).Trim() != field) continue;
                string v = line.Substring(eq + 1).Trim();
                if (v.Length >= 2 && v[0] == '"' && v[v.Length - 1] == '"') v = v.Substring(1, v.Length - 2);
                return v;
            }
            if (optional) return null;
            throw new ArgumentException("certificate " + path + " has no " + field);
        }

        /// <summary>A new random key pair (public, secret), e.g. for tests.</summary>
        public static void NewKeyPair(out byte[] publicKey, out byte[] secretKey)
        {
            secretKey = new byte[32];
            using (var rng = System.Security.Cryptography.RandomNumberGenerator.Create()) rng.GetBytes(secretKey);
            publicKey = new byte[32];
            Curve25519.ScalarMultBase(publicKey, secretKey);
        }
    }
}
