// Checks of the managed transport, driven by tests/test_unity_transport.py and tests/test_unity_crypto.py:
//   crypto FILE   : one operation per line ("x25519 n p", "box m nonce pk sk", "open c nonce pk sk",
//                   "poly1305 m key", "hsalsa20 key in16", "z85enc bytes", "z85dec text"; arguments in hex,
//                   z85 text as is); prints "result-hex" (or "FAIL") per line.
//   peer CONTROL MEDIA TOPIC MINOR [SERVER_PUB CLIENT_PUB CLIENT_SECRET]
//                 : a DEALER+SUB ZmtpTransport against a pyzmq ROUTER/XPUB peer; prints "TAG {json}" lines.
// Every run ends with "LIBZMQ_MAPPED true|false" (from /proc/self/maps where it exists).
using System;
using System.Collections.Generic;
using System.Diagnostics;
using System.IO;
using System.Text;
using System.Threading;
using Xstreamer.Avatar.Core;

namespace Xstreamer.Avatar.Tests
{
    internal static class TransportCheck
    {
        private static byte[] Hex(string s)
        {
            if (s == "-") return new byte[0];
            var b = new byte[s.Length / 2];
            for (int i = 0; i < b.Length; i++) b[i] = Convert.ToByte(s.Substring(2 * i, 2), 16);
            return b;
        }

        private static void Log(string tag, string json) { Console.WriteLine(tag + " " + json); Console.Out.Flush(); }

        private static int Main(string[] args)
        {
            int rc;
            try
            {
                if (args[0] == "crypto") rc = Crypto(args[1]);
                else if (args[0] == "peer") rc = Peer(args);
                else if (args[0] == "handshake") rc = HandshakeOnly(args);
                else { Console.WriteLine("unknown mode " + args[0]); rc = 2; }
            }
            catch (Exception e) { Log("FAIL", "{\"error\": " + JsonOut.Str(e.ToString()) + "}"); rc = 1; }
            Console.WriteLine("LIBZMQ_MAPPED " + (LibzmqMapped() ? "true" : "false"));
            return rc;
        }

        /// <summary>Whether any libzmq is mapped into this process (Linux /proc; false elsewhere).</summary>
        internal static bool LibzmqMapped()
        {
            try { return File.ReadAllText("/proc/self/maps").Contains("libzmq"); }
            catch (Exception) { return false; }
        }

        private static int Crypto(string path)
        {
            foreach (string line in File.ReadAllLines(path))
            {
                if (line.Trim().Length == 0) continue;
                string[] a = line.Split(' ');
                string result;
                switch (a[0])
                {
                    case "x25519":
                    {
                        var q = new byte[32];
                        Curve25519.ScalarMult(q, Hex(a[1]), Hex(a[2]));
                        result = JsonOut.Hex(q);
                        break;
                    }
                    case "box": result = JsonOut.Hex(CryptoBox.Seal(Hex(a[1]), Hex(a[2]), Hex(a[3]), Hex(a[4]))); break;
                    case "open":
                    {
                        byte[] c = Hex(a[1]);
                        byte[] m = CryptoBox.Open(c, 0, c.Length, Hex(a[2]), Hex(a[3]), Hex(a[4]));
                        result = m == null ? "FAIL" : m.Length == 0 ? "-" : JsonOut.Hex(m);
                        break;
                    }
                    case "poly1305":
                    {
                        byte[] m = Hex(a[1]);
                        var tag = new byte[16];
                        Poly1305.Tag(tag, 0, m, 0, m.Length, Hex(a[2]));
                        result = JsonOut.Hex(tag);
                        break;
                    }
                    case "hsalsa20":
                    {
                        var o = new byte[32];
                        Salsa20.HSalsa20(o, Hex(a[1]), Hex(a[2]));
                        result = JsonOut.Hex(o);
                        break;
                    }
                    case "z85enc": result = Z85.Encode(Hex(a[1])); break;
                    case "z85dec": result = JsonOut.Hex(Z85.Decode(a[1])); break;
                    default: result = "UNKNOWN"; break;
                }
                Console.WriteLine(result);
            }
            return 0;
        }

        private static MultipartMessage WaitMessage(ZmtpTransport t, bool control, int timeoutMs, ref MultipartMessage m)
        {
            var sw = Stopwatch.StartNew();
            while (sw.ElapsedMilliseconds < timeoutMs)
            {
                t.Poll(50);
                if (control ? t.TryReceiveControl(ref m) : t.TryReceiveMedia(ref m)) return m;
            }
            return null;
        }

        private static string Frames(MultipartMessage m)
        {
            var parts = new List<string>();
            for (int i = 0; i < m.Count; i++)
            {
                ArraySegment<byte> f = m.Frame(i);
                int sum = 0;
                for (int k = 0; k < f.Count; k++) sum = (sum * 31 + f.Array[f.Offset + k]) & 0x7fffffff;
                parts.Add("[" + f.Count + ", " + sum + "]");
            }
            return "[" + string.Join(", ", parts.ToArray()) + "]";
        }

        private static byte[] Pattern(int n, int seed)
        {
            var b = new byte[n];
            for (int i = 0; i < n; i++) b[i] = (byte)((i * 7 + seed) % 251);
            return b;
        }

        private static int Peer(string[] args)
        {
            var errors = new List<string>();
            var opt = new ZmtpOptions { MinorVersion = int.Parse(args[4]), HandshakeTimeoutMs = 3000 };
            opt.OnError = e => { lock (errors) errors.Add(e); };
            if (args.Length > 7) opt.Curve = CurveKeys.FromZ85(args[5], args[6] == "-" ? null : args[6], args[7]);
            string errorsJson;
            using (var t = new ZmtpTransport(opt))
            {
                t.ConnectControl(args[1]);
                t.ConnectMedia(args[2]);
                t.Subscribe(Encoding.ASCII.GetBytes(args[3]));
                // Control: multipart requests of 0, 10, 300 and 70,000 bytes (short and long frames); the peer echoes.
                int[] sizes = { 0, 10, 300, 70000 };
                var sent = new List<byte[]> { Encoding.ASCII.GetBytes("echo") };
                for (int i = 0; i < sizes.Length; i++) sent.Add(Pattern(sizes[i], i));
                bool queued = t.SendControl(sent);
                MultipartMessage m = null;
                MultipartMessage echo = WaitMessage(t, true, 10000, ref m);
                Log("ECHO", "{\"queued\": " + (queued ? "true" : "false") + ", \"frames\": " + (echo == null ? "null" : Frames(echo)) +
                    ", \"sent\": " + FramesOf(sent) + ", \"peer\": " + JsonOut.Str(PeerType(t)) + "}");

                // Media: tell the peer we are subscribed (over control), then read what it publishes.
                var media = new List<string>();
                MultipartMessage mm = null;
                var sw = Stopwatch.StartNew();
                while (sw.ElapsedMilliseconds < 15000)
                {
                    if (media.Count == 0 && sw.ElapsedMilliseconds % 200 < 60) t.SendControl(new List<byte[]> { Encoding.ASCII.GetBytes("publish") });
                    t.Poll(50);
                    while (t.TryReceiveMedia(ref mm)) media.Add(Frames(mm));
                    if (media.Count >= 4) break;
                    while (t.TryReceiveControl(ref m)) { }
                }
                Log("MEDIA", "{\"messages\": [" + string.Join(", ", media.ToArray()) + "], \"connections\": " + t.MediaConnections + "}");

                // Reconnect: the peer rebinds its ROUTER on the same port; a request after that is answered.
                t.SendControl(new List<byte[]> { Encoding.ASCII.GetBytes("restart") });
                MultipartMessage ack = WaitMessage(t, true, 10000, ref m);
                Log("RESTARTING", "{\"ack\": " + (ack == null ? "null" : Frames(ack)) + "}");
                sw.Restart();
                MultipartMessage again = null;
                while (sw.ElapsedMilliseconds < 20000 && again == null)
                {
                    if (t.ControlConnections >= 2)
                    {
                        t.SendControl(new List<byte[]> { Encoding.ASCII.GetBytes("echo"), Pattern(5, 9) });
                        again = WaitMessage(t, true, 1000, ref m);
                    }
                    else Thread.Sleep(20);
                }
                Log("RECONNECTED", "{\"connections\": " + t.ControlConnections + ", \"frames\": " + (again == null ? "null" : Frames(again)) + "}");
                lock (errors)
                {
                    var es = new List<string>();
                    foreach (string e in errors) es.Add(JsonOut.Str(e));
                    errorsJson = "[" + string.Join(", ", es.ToArray()) + "]";
                }
                var dispose = Stopwatch.StartNew();
                t.Dispose();
                Log("DONE", "{\"errors\": " + errorsJson + ", \"dispose_ms\": " + dispose.ElapsedMilliseconds + "}");
            }
            return 0;
        }

        /// <summary>handshake CONTROL SERVER_PUB|- CLIENT_PUB|- CLIENT_SECRET|-: connect the control socket only and
        /// report after 4 s whether the handshake completed and which errors were reported.</summary>
        private static int HandshakeOnly(string[] args)
        {
            var errors = new List<string>();
            var opt = new ZmtpOptions { HandshakeTimeoutMs = 2000, ReconnectIntervalMaxMs = 500 };
            opt.OnError = e => { lock (errors) errors.Add(e); };
            if (args[2] == "--files") opt.Curve = CurveKeys.FromCertificates(args[3], args[4]);
            else if (args[2] != "-") opt.Curve = CurveKeys.FromZ85(args[2], args[3] == "-" ? null : args[3], args[4]);
            using (var t = new ZmtpTransport(opt))
            {
                t.ConnectControl(args[1]);
                var sw = Stopwatch.StartNew();
                while (sw.ElapsedMilliseconds < 4000 && !t.ControlConnected) Thread.Sleep(20);
                bool connected = t.ControlConnected;
                var es = new List<string>();
                lock (errors) foreach (string e in errors) es.Add(JsonOut.Str(e));
                Log("HANDSHAKE", "{\"connected\": " + (connected ? "true" : "false") + ", \"errors\": [" + string.Join(", ", es.ToArray()) + "]}");
            }
            return 0;
        }

        private static string PeerType(ZmtpTransport t) { return t.ControlConnected ? "connected" : "not connected"; }

        private static int Checksum(string s)
        {
            int sum = 0;
            foreach (char c in s) sum = (sum * 31 + (byte)c) & 0x7fffffff;
            return sum;
        }

        private static string FramesOf(List<byte[]> frames)
        {
            var m = new MultipartMessage();
            m.CopyFrom(frames);
            return Frames(m);
        }
    }
}
