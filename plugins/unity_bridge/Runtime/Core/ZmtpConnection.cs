// One ZMTP 3.x connection (ZeroMQ RFC 23 / 37) from a DEALER or SUB socket to a daemon's ROUTER or
// (X)PUB socket over System.Net.Sockets: greeting, the NULL or CURVE (RFC 25/26) mechanism, READY with
// Socket-Type/Identity metadata, frames with short/long sizes, multipart messages, subscriptions (the
// ZMTP 3.1 SUBSCRIBE command, or the 3.0 subscription message for a 3.0 peer), PING -> PONG, and
// reconnects with a growing interval. A reader thread per connection does the blocking reads and fills a
// bounded inbox of reusable messages; sends happen on the caller's thread under a lock.
using System;
using System.Collections.Generic;
using System.Net;
using System.Net.Sockets;
using System.Text;
using System.Threading;

namespace Xstreamer.Avatar.Core
{
    /// <summary>A ZMTP peer broke the protocol, or the handshake failed.</summary>
    public sealed class ZmtpException : Exception
    {
        public ZmtpException(string message) : base(message) { }
    }

    /// <summary>Settings of the managed ZMTP transport.</summary>
    public sealed class ZmtpOptions
    {
        /// <summary>CURVE keys (null: the NULL mechanism, for a daemon on loopback).</summary>
        public CurveKeys Curve;
        public int ConnectTimeoutMs = 3000;
        /// <summary>Greeting + security handshake + READY must complete within this.</summary>
        public int HandshakeTimeoutMs = 3000;
        public int ReconnectIntervalMs = 100;
        public int ReconnectIntervalMaxMs = 1000;
        /// <summary>A larger incoming message closes the connection (a protocol error).</summary>
        public long MaxMessageBytes = 64L * 1024 * 1024;
        /// <summary>Messages received but not yet taken, per socket; the reader stops reading at this bound.</summary>
        public int ControlQueueMessages = 256;
        public int MediaQueueMessages = 64;
        /// <summary>Control messages queued while the connection is down (a send beyond this fails).</summary>
        public int SendQueueMessages = 1000;
        /// <summary>The ZMTP minor version we announce (1: ZMTP 3.1; 0: 3.0, subscriptions as messages).</summary>
        public int MinorVersion = 1;
        /// <summary>A blocking send gives up after this (the connection is then reset).</summary>
        public int SendTimeoutMs = 10000;
        /// <summary>Diagnostics: returns the calling thread's allocated bytes (e.g. GC.GetAllocatedBytesForCurrentThread); null: off.</summary>
        public Func<long> AllocationProbe;
        /// <summary>Protocol and handshake failures, reported from the reader threads (e.g. a CURVE refusal).</summary>
        public Action<string> OnError;
    }

    internal enum ZmtpSocketType { Dealer, Sub }

    /// <summary>A bounded pool + FIFO of reusable messages shared by one reader thread and one consumer.</summary>
    internal sealed class MessageInbox
    {
        private readonly object _lock = new object();
        private readonly Queue<MultipartMessage> _ready = new Queue<MultipartMessage>();
        private readonly Stack<MultipartMessage> _free = new Stack<MultipartMessage>();
        private readonly int _capacity;
        private readonly Action _signal;
        private int _total;

        public MessageInbox(int capacity, Action signal) { _capacity = Math.Max(2, capacity); _signal = signal; }

        public int Count { get { lock (_lock) return _ready.Count; } }

        /// <summary>A cleared message to fill; waits while every message is queued (backpressure). Null when closed.</summary>
        public MultipartMessage Rent(Func<bool> closed)
        {
            lock (_lock)
            {
                while (_free.Count == 0 && _total >= _capacity)
                {
                    if (closed()) return null;
                    Monitor.Wait(_lock, 50);
                }
                if (_free.Count > 0) return _free.Pop();
                _total++;
            }
            return new MultipartMessage(4096);
        }

        public void Deliver(MultipartMessage m)
        {
            lock (_lock) _ready.Enqueue(m);
            _signal();
        }

        /// <summary>Give back a message (cleared for reuse).</summary>
        public void Return(MultipartMessage m)
        {
            if (m == null) return;
            m.Clear();
            lock (_lock) { _free.Push(m); Monitor.PulseAll(_lock); }
        }

        /// <summary>Swap: m (if any) goes back to the pool, the oldest received message comes out.</summary>
        public bool TryTake(ref MultipartMessage m)
        {
            if (m != null) { Return(m); m = null; }
            lock (_lock)
            {
                if (_ready.Count == 0) return false;
                m = _ready.Dequeue();
                return true;
            }
        }
    }

    internal sealed class ZmtpConnection : IDisposable
    {
        private const byte FlagMore = 1, FlagLong = 2, FlagCommand = 4;

        private readonly string _host;
        private readonly int _port;
        private readonly ZmtpSocketType _type;
        private readonly ZmtpOptions _opt;
        private readonly MessageInbox _inbox;
        private readonly Thread _thread;
        private readonly ManualResetEvent _closeEvent = new ManualResetEvent(false);
        private volatile bool _closed;

        // send side (caller thread, under _sendLock)
        private readonly object _sendLock = new object();
        private Socket _live;                       // the socket after a complete handshake, else null
        private CurveSession _liveCurve;
        private readonly Queue<byte[][]> _pending = new Queue<byte[][]>();
        private readonly List<byte[]> _subscriptions = new List<byte[]>();
        private bool _peerIs31;
        private byte[] _sendBuf = new byte[4096];
        private byte[] _plain = new byte[4096];

        // receive side (reader thread)
        private Socket _sock;
        private readonly byte[] _rbuf = new byte[65536];
        private int _rpos, _rlen;
        private byte[] _frame = new byte[4096];
        private readonly Func<bool> _isClosed;

        public ZmtpConnection(string endpoint, ZmtpSocketType type, ZmtpOptions options, MessageInbox inbox)
        {
            ParseEndpoint(endpoint, out _host, out _port);
            _type = type;
            _opt = options;
            _inbox = inbox;
            _isClosed = () => _closed;
            _thread = new Thread(Run) { IsBackground = true, Name = "xstreamer-zmtp-" + (type == ZmtpSocketType.Dealer ? "control" : "media") };
            _thread.Start();
        }

        /// <summary>Handshakes completed so far (1 after the first connection, +1 per reconnect).</summary>
        public int Connections;
        /// <summary>Diagnostics: bytes allocated by the reader thread since it started (when AllocationProbe is set).</summary>
        public long ReaderAllocatedBytes;
        /// <summary>The peer's Socket-Type property from its READY.</summary>
        public string PeerSocketType;
        public bool IsConnected { get { lock (_sendLock) return _live != null; } }

        internal static void ParseEndpoint(string endpoint, out string host, out int port)
        {
            const string Tcp = "tcp://";
            if (endpoint == null || !endpoint.StartsWith(Tcp, StringComparison.OrdinalIgnoreCase))
                throw new TransportException("only tcp:// endpoints are supported: " + endpoint);
            string rest = endpoint.Substring(Tcp.Length);
            int colon = rest.LastIndexOf(':');
            if (colon <= 0 || !int.TryParse(rest.Substring(colon + 1), out port) || port <= 0 || port > 65535)
                throw new TransportException("endpoint needs host:port: " + endpoint);
            host = rest.Substring(0, colon);
            if (host.StartsWith("[", StringComparison.Ordinal) && host.EndsWith("]", StringComparison.Ordinal))
                host = host.Substring(1, host.Length - 2);
            if (host == "*" || host == "0.0.0.0") host = "127.0.0.1";
            if (host.Length == 0) throw new TransportException("endpoint has no host: " + endpoint);
        }

        // -----------------------------------------------------------------------------------------------
        // Sending (any one thread)

        public void Subscribe(byte[] topic)
        {
            lock (_sendLock)
            {
                _subscriptions.Add((byte[])topic.Clone());
                if (_live != null) SendSubscription(topic);
            }
        }

        /// <summary>Send (or, while disconnected, queue) a multipart message. False when it cannot be queued.</summary>
        public bool Send(IList<byte[]> frames)
        {
            if (_type != ZmtpSocketType.Dealer) throw new InvalidOperationException("a SUB socket sends no messages");
            lock (_sendLock)
            {
                if (_live == null)
                {
                    if (_pending.Count >= _opt.SendQueueMessages) return false;
                    var copy = new byte[frames.Count][];
                    for (int i = 0; i < copy.Length; i++) copy[i] = (byte[])(frames[i] ?? new byte[0]).Clone();
                    _pending.Enqueue(copy);
                    return true;
                }
                try { WriteMessage(frames); return true; }
                catch (SocketException) { }
                catch (ObjectDisposedException) { }
                DropLive();   // the reader sees the broken socket and reconnects
                return false;
            }
        }

        private void DropLive()
        {
            Socket s = _live;
            _live = null;
            _liveCurve = null;
            if (s != null) { try { s.Shutdown(SocketShutdown.Both); } catch (Exception) { } }
        }

        private void EnsureSend(int n) { if (_sendBuf.Length < n) _sendBuf = new byte[Math.Max(n, _sendBuf.Length * 2)]; }

        /// <summary>Under _sendLock with _live set: frames as message frames (CURVE: each inside a MESSAGE box).</summary>
        private void WriteMessage(IList<byte[]> frames)
        {
            for (int i = 0; i < frames.Count; i++)
            {
                byte[] f = frames[i] ?? new byte[0];
                WriteFrame(f, 0, f.Length, i < frames.Count - 1, false);
            }
        }

        private void WriteFrame(byte[] data, int off, int len, bool more, bool command)
        {
            if (_liveCurve == null)
            {
                int n = Header(0, len, (byte)((more ? FlagMore : 0) | (command ? FlagCommand : 0)), len);
                Buffer.BlockCopy(data, off, _sendBuf, n, len);
                SendAll(n + len);
                return;
            }
            // CURVE: Box[flags + data] in a MESSAGE command body, carried as one message frame (as libzmq does)
            int plainLen = 1 + len;
            if (_plain.Length < plainLen) _plain = new byte[Math.Max(plainLen, _plain.Length * 2)];
            _plain[0] = (byte)((more ? 1 : 0) | (command ? 2 : 0));
            Buffer.BlockCopy(data, off, _plain, 1, len);
            int body = 8 + 8 + SecretBox.TagBytes + plainLen;
            int h = Header(0, body, 0, body);
            _liveCurve.SealMessage(_plain, plainLen, _sendBuf, h);
            SendAll(h + body);
        }

        /// <summary>Write a frame header for a body of len bytes at _sendBuf[at]; ensures room for extra bytes after it.</summary>
        private int Header(int at, long len, byte flags, int extra)
        {
            EnsureSend(at + 9 + extra);
            if (len > 255)
            {
                _sendBuf[at] = (byte)(flags | FlagLong);
                for (int i = 0; i < 8; i++) _sendBuf[at + 1 + i] = (byte)(len >> (56 - 8 * i));
                return at + 9;
            }
            _sendBuf[at] = flags;
            _sendBuf[at + 1] = (byte)len;
            return at + 2;
        }

        private void SendAll(int n)
        {
            int sent = 0;
            while (sent < n) sent += _live.Send(_sendBuf, sent, n - sent, SocketFlags.None);
        }

        private void SendSubscription(byte[] topic)
        {
            if (_peerIs31)
            {
                byte[] cmd = Command("SUBSCRIBE", topic.Length);
                Buffer.BlockCopy(topic, 0, cmd, 1 + 9, topic.Length);
                WriteFrame(cmd, 0, cmd.Length, false, true);
            }
            else
            {
                var msg = new byte[topic.Length + 1];
                msg[0] = 1;
                Buffer.BlockCopy(topic, 0, msg, 1, topic.Length);
                WriteFrame(msg, 0, msg.Length, false, false);
            }
        }

        /// <summary>A command body: name length, name, then dataLen bytes for the caller to fill.</summary>
        private static byte[] Command(string name, int dataLen)
        {
            var b = new byte[1 + name.Length + dataLen];
            b[0] = (byte)name.Length;
            for (int i = 0; i < name.Length; i++) b[1 + i] = (byte)name[i];
            return b;
        }

        // -----------------------------------------------------------------------------------------------
        // The reader thread: connect, handshake, read; reconnect on any failure until disposed.

        private void Run()
        {
            int interval = _opt.ReconnectIntervalMs;
            Func<long> probe = _opt.AllocationProbe;
            long allocStart = probe != null ? probe() : 0;
            while (!_closed)
            {
                bool handshook = false;
                try
                {
                    Socket s = Connect();
                    if (s == null) { if (_closed) break; }
                    else
                    {
                        _sock = s;
                        _rpos = _rlen = 0;
                        CurveSession curve = Handshake(s);
                        handshook = true;
                        interval = _opt.ReconnectIntervalMs;
                        s.ReceiveTimeout = 0;
                        lock (_sendLock)
                        {
                            _live = s;
                            _liveCurve = curve;
                            Interlocked.Increment(ref Connections);
                            foreach (byte[] topic in _subscriptions) SendSubscription(topic);
                            while (_pending.Count > 0) WriteMessage(_pending.Dequeue());
                        }
                        ReadTraffic(curve, probe, allocStart);
                    }
                }
                catch (ZmtpException e) { if (!_closed) Report(e.Message); }
                catch (SocketException) { }
                catch (ObjectDisposedException) { }
                catch (System.IO.IOException) { }
                finally
                {
                    lock (_sendLock) { if (_live == _sock) { _live = null; _liveCurve = null; } }
                    CloseSocket(_sock);
                    _sock = null;
                }
                if (_closed) break;
                _closeEvent.WaitOne(interval);
                if (!handshook) interval = Math.Min(interval * 2, _opt.ReconnectIntervalMaxMs);
            }
        }

        private void Report(string message)
        {
            Action<string> cb = _opt.OnError;
            if (cb != null) cb((_type == ZmtpSocketType.Dealer ? "control" : "media") + " " + _host + ":" + _port + ": " + message);
        }

        private static void CloseSocket(Socket s)
        {
            if (s == null) return;
            try { s.Shutdown(SocketShutdown.Both); } catch (Exception) { }
            try { s.Close(); } catch (Exception) { }
        }

        private Socket Connect()
        {
            IPAddress[] addresses;
            IPAddress ip;
            if (IPAddress.TryParse(_host, out ip)) addresses = new[] { ip };
            else if (string.Equals(_host, "localhost", StringComparison.OrdinalIgnoreCase)) addresses = new[] { IPAddress.Loopback };
            else addresses = Dns.GetHostAddresses(_host);
            foreach (IPAddress a in addresses)
            {
                var s = new Socket(a.AddressFamily, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
                _sock = s;   // so that Dispose can abort the attempt
                try
                {
                    IAsyncResult ar = s.BeginConnect(new IPEndPoint(a, _port), null, null);
                    int which = WaitHandle.WaitAny(new[] { ar.AsyncWaitHandle, _closeEvent }, _opt.ConnectTimeoutMs);
                    if (which != 0) { CloseSocket(s); if (_closed) return null; continue; }
                    s.EndConnect(ar);
                    s.SendTimeout = _opt.SendTimeoutMs;
                    return s;
                }
                catch (SocketException) { CloseSocket(s); }
                catch (ObjectDisposedException) { CloseSocket(s); }
            }
            _sock = null;
            return null;
        }

        // ---- reading primitives

        private void Fill()
        {
            int n = _sock.Receive(_rbuf, 0, _rbuf.Length, SocketFlags.None);
            if (n <= 0) throw new System.IO.IOException("connection closed by the peer");
            _rpos = 0;
            _rlen = n;
        }

        private void ReadExact(byte[] dst, int off, int n)
        {
            while (n > 0)
            {
                if (_rpos == _rlen)
                {
                    if (n >= _rbuf.Length / 2)
                    {
                        int got = _sock.Receive(dst, off, n, SocketFlags.None);   // large body: straight into place
                        if (got <= 0) throw new System.IO.IOException("connection closed by the peer");
                        off += got; n -= got;
                        continue;
                    }
                    Fill();
                }
                int k = Math.Min(n, _rlen - _rpos);
                Buffer.BlockCopy(_rbuf, _rpos, dst, off, k);
                _rpos += k; off += k; n -= k;
            }
        }

        private byte ReadByte()
        {
            if (_rpos == _rlen) Fill();
            return _rbuf[_rpos++];
        }

        /// <summary>One frame header: returns flags, size in <paramref name="size"/>.</summary>
        private byte ReadFrameHeader(out long size)
        {
            byte flags = ReadByte();
            if ((flags & 0xf8) != 0) throw new ZmtpException("frame with reserved flag bits set (0x" + flags.ToString("x2") + ")");
            if ((flags & FlagLong) != 0)
            {
                ulong v = 0;
                for (int i = 0; i < 8; i++) v = (v << 8) | ReadByte();
                if (v > (ulong)_opt.MaxMessageBytes) throw new ZmtpException("frame of " + v + " bytes exceeds the " + _opt.MaxMessageBytes + " byte limit");
                size = (long)v;
            }
            else size = ReadByte();
            return flags;
        }

        private void EnsureFrame(long n) { if (_frame.Length < n) _frame = new byte[Math.Max(n, _frame.Length * 2L)]; }

        /// <summary>Read one command frame into _frame; returns its name ("" when the frame is not a command).</summary>
        private string ReadCommand(out int dataOff, out int dataLen)
        {
            long size;
            byte flags = ReadFrameHeader(out size);
            if ((flags & FlagCommand) == 0) throw new ZmtpException("expected a command frame during the handshake");
            EnsureFrame(size);
            ReadExact(_frame, 0, (int)size);
            return ParseCommand(_frame, 0, (int)size, out dataOff, out dataLen);
        }

        private static string ParseCommand(byte[] b, int off, int len, out int dataOff, out int dataLen)
        {
            if (len < 1 || b[off] == 0 || b[off] + 1 > len) throw new ZmtpException("malformed command");
            int n = b[off];
            var name = new StringBuilder(n);
            for (int i = 0; i < n; i++) name.Append((char)b[off + 1 + i]);
            dataOff = off + 1 + n;
            dataLen = len - 1 - n;
            return name.ToString();
        }

        private static bool IsCommand(byte[] b, int off, int len, string name)
        {
            if (len < 1 + name.Length || b[off] != name.Length) return false;
            for (int i = 0; i < name.Length; i++) if (b[off + 1 + i] != (byte)name[i]) return false;
            return true;
        }

        // ---- handshake

        private string SocketTypeName { get { return _type == ZmtpSocketType.Dealer ? "DEALER" : "SUB"; } }

        private byte[] Metadata()
        {
            var props = new List<byte>();
            AddProperty(props, "Socket-Type", Encoding.ASCII.GetBytes(SocketTypeName));
            if (_type == ZmtpSocketType.Dealer) AddProperty(props, "Identity", new byte[0]);
            return props.ToArray();
        }

        private static void AddProperty(List<byte> dst, string name, byte[] value)
        {
            dst.Add((byte)name.Length);
            foreach (char c in name) dst.Add((byte)c);
            dst.Add((byte)(value.Length >> 24)); dst.Add((byte)(value.Length >> 16));
            dst.Add((byte)(value.Length >> 8)); dst.Add((byte)value.Length);
            dst.AddRange(value);
        }

        /// <summary>Parse metadata properties; checks the peer's Socket-Type against ours.</summary>
        private void CheckMetadata(byte[] b, int off, int len)
        {
            int end = off + len;
            string socketType = null;
            while (off < end)
            {
                int n = b[off++];
                if (n == 0 || off + n + 4 > end) throw new ZmtpException("malformed metadata");
                string name = Encoding.ASCII.GetString(b, off, n);
                off += n;
                long vlen = ((long)b[off] << 24) | ((long)b[off + 1] << 16) | ((long)b[off + 2] << 8) | b[off + 3];
                off += 4;
                if (vlen > end - off) throw new ZmtpException("malformed metadata value");
                if (string.Equals(name, "Socket-Type", StringComparison.OrdinalIgnoreCase))
                    socketType = Encoding.ASCII.GetString(b, off, (int)vlen);
                off += (int)vlen;
            }
            PeerSocketType = socketType;
            bool ok = _type == ZmtpSocketType.Dealer
                ? socketType == "ROUTER" || socketType == "DEALER" || socketType == "REP"
                : socketType == "PUB" || socketType == "XPUB";
            if (!ok) throw new ZmtpException("a " + SocketTypeName + " socket cannot talk to a " + (socketType ?? "peer without Socket-Type"));
        }

        /// <summary>Greeting, mechanism handshake and READY exchange; returns the CURVE session (null for NULL).</summary>
        private CurveSession Handshake(Socket s)
        {
            s.ReceiveTimeout = _opt.HandshakeTimeoutMs;
            bool curve = _opt.Curve != null;
            var greeting = new byte[64];
            greeting[0] = 0xff;
            greeting[9] = 0x7f;
            greeting[10] = 3;
            greeting[11] = (byte)_opt.MinorVersion;
            string mech = curve ? "CURVE" : "NULL";
            for (int i = 0; i < mech.Length; i++) greeting[12 + i] = (byte)mech[i];
            greeting[32] = 0;   // as-server: we are the client
            s.Send(greeting);

            var peer = new byte[64];
            try { ReadExact(peer, 0, 64); }
            catch (System.IO.IOException)
            {
                // libzmq closes at once when the mechanisms differ, sometimes before its greeting is out
                throw new ZmtpException("the daemon closed the connection during the greeting: a security mismatch? " +
                                        (curve ? "(the daemon may serve without CURVE)" : "(the daemon needs CURVE keys: set them in the client)"));
            }
            if (peer[0] != 0xff || (peer[9] & 1) != 1) throw new ZmtpException("the peer does not speak ZMTP (bad signature)");
            if (peer[10] < 3) throw new ZmtpException("the peer speaks ZMTP " + peer[10] + ".x; 3.0 or later is needed");
            var peerMech = new StringBuilder();
            for (int i = 12; i < 32 && peer[i] != 0; i++) peerMech.Append((char)peer[i]);
            if (peerMech.ToString() != mech)
                throw new ZmtpException("security mismatch: the daemon uses " + peerMech + ", this client " + mech +
                                        (curve ? " (the daemon serves without CURVE keys)" : " (the daemon needs CURVE keys: set them in the client)"));
            _peerIs31 = _opt.MinorVersion >= 1 && (peer[10] > 3 || peer[11] >= 1);

            int dataOff, dataLen;
            if (!curve)
            {
                byte[] meta = Metadata();
                byte[] ready = Command("READY", meta.Length);
                Buffer.BlockCopy(meta, 0, ready, 6, meta.Length);
                SendCommandPlain(s, ready);
                string name = ReadCommand(out dataOff, out dataLen);
                if (name == "ERROR") throw new ZmtpException("refused by the daemon: " + ErrorReason(_frame, dataOff, dataLen));
                if (name != "READY") throw new ZmtpException("expected READY, got " + name);
                CheckMetadata(_frame, dataOff, dataLen);
                return null;
            }

            var session = new CurveSession(_opt.Curve);
            SendCommandPlain(s, session.Hello());
            string cmd;
            try { cmd = ReadCommand(out dataOff, out dataLen); }
            catch (System.IO.IOException) { throw WrongServerKey(); }
            catch (SocketException) { throw WrongServerKey(); }
            if (cmd == "ERROR") throw new ZmtpException("CURVE refused by the daemon: " + ErrorReason(_frame, dataOff, dataLen));
            if (cmd != "WELCOME") throw new ZmtpException("expected WELCOME, got " + cmd);
            if (!session.Welcome(_frame, dataOff, dataLen))
                throw new ZmtpException("CURVE: the WELCOME box does not open: the server key is wrong");
            SendCommandPlain(s, session.Initiate(Metadata()));
            cmd = ReadCommand(out dataOff, out dataLen);
            if (cmd == "ERROR")
                throw new ZmtpException("CURVE refused by the daemon: " + ErrorReason(_frame, dataOff, dataLen) +
                                        " (is this client's public key among the daemon's authorized keys?)");
            if (cmd != "READY") throw new ZmtpException("expected READY, got " + cmd);
            int metaOff, metaLen;
            if (!session.Ready(_frame, dataOff, dataLen, out metaOff, out metaLen))
                throw new ZmtpException("CURVE: the READY box does not open");
            CheckMetadata(_frame, metaOff, metaLen);
            return session;
        }

        private static ZmtpException WrongServerKey()
        {
            // A CURVE server that cannot open HELLO's box closes the connection without a word.
            return new ZmtpException("CURVE: the daemon dropped the connection after HELLO: the server key is wrong " +
                                     "(or the daemon is not the one the key belongs to)");
        }

        private static string ErrorReason(byte[] b, int off, int len)
        {
            if (len < 1) return "(no reason)";
            int n = Math.Min(b[off], len - 1);
            return Encoding.ASCII.GetString(b, off + 1, n);
        }

        private static void SendCommandPlain(Socket s, byte[] body)
        {
            byte[] frame;
            int h;
            if (body.Length > 255)
            {
                frame = new byte[9 + body.Length];
                frame[0] = FlagCommand | FlagLong;
                for (int i = 0; i < 8; i++) frame[1 + i] = (byte)((long)body.Length >> (56 - 8 * i));
                h = 9;
            }
            else
            {
                frame = new byte[2 + body.Length];
                frame[0] = FlagCommand;
                frame[1] = (byte)body.Length;
                h = 2;
            }
            Buffer.BlockCopy(body, 0, frame, h, body.Length);
            int sent = 0;
            while (sent < frame.Length) sent += s.Send(frame, sent, frame.Length - sent, SocketFlags.None);
        }

        // ---- traffic

        private void ReadTraffic(CurveSession curve, Func<long> probe, long allocStart)
        {
            MultipartMessage msg = null;
            try
            {
                while (!_closed)
                {
                    long size;
                    byte flags = ReadFrameHeader(out size);
                    bool command = (flags & FlagCommand) != 0;
                    bool more = (flags & FlagMore) != 0;
                    if (curve != null)
                    {
                        EnsureFrame(size);
                        ReadExact(_frame, 0, (int)size);
                        if (command)
                        {
                            // only ERROR may come in clear once the CURVE session is up
                            int o, l;
                            if (ParseCommand(_frame, 0, (int)size, out o, out l) == "ERROR")
                                throw new ZmtpException("the daemon closed the session: " + ErrorReason(_frame, o, l));
                            throw new ZmtpException("unencrypted command after the CURVE handshake");
                        }
                        int plainOff, plainLen;
                        if (!curve.OpenMessage(_frame, (int)size, out plainOff, out plainLen))
                            throw new ZmtpException("CURVE: a MESSAGE box does not open (or its nonce repeats)");
                        byte innerFlags = _frame[plainOff];
                        command = (innerFlags & 2) != 0;
                        more = (innerFlags & 1) != 0;
                        if (command) { HandleCommand(_frame, plainOff + 1, plainLen - 1); continue; }
                        if (msg == null && (msg = _inbox.Rent(_isClosed)) == null) return;
                        if (msg.TotalBytes + (long)plainLen - 1 > _opt.MaxMessageBytes) throw new ZmtpException("message exceeds the size limit");
                        msg.AddFrame(_frame, plainOff + 1, plainLen - 1);
                    }
                    else if (command)
                    {
                        EnsureFrame(size);
                        ReadExact(_frame, 0, (int)size);
                        HandleCommand(_frame, 0, (int)size);
                        continue;
                    }
                    else
                    {
                        if (msg == null && (msg = _inbox.Rent(_isClosed)) == null) return;
                        if (msg.TotalBytes + size > _opt.MaxMessageBytes) throw new ZmtpException("message exceeds the size limit");
                        int at = msg.AddFrame((int)size);
                        ReadExact(msg.Buffer, at, (int)size);
                    }
                    if (more) continue;
                    _inbox.Deliver(msg);
                    msg = null;
                    if (probe != null) Volatile.Write(ref ReaderAllocatedBytes, probe() - allocStart);
                }
            }
            finally { if (msg != null) _inbox.Return(msg); }
        }

        private void HandleCommand(byte[] b, int off, int len)
        {
            int dataOff, dataLen;
            string name = IsCommand(b, off, len, "PING") ? "PING" : ParseCommand(b, off, len, out dataOff, out dataLen);
            if (name == "PING")
            {
                // PING: TTL (2 octets, tenths of a second) + context (0..16 octets); answer PONG + the context
                int ctxOff = off + 5 + 2, ctxLen = Math.Max(0, Math.Min(16, len - 7));
                if (len >= 7)
                {
                    int ttl = (b[off + 5] << 8) | b[off + 6];
                    if (ttl > 0 && _sock != null) _sock.ReceiveTimeout = ttl * 100;   // silence beyond the TTL: reconnect
                }
                byte[] pong = Command("PONG", ctxLen);
                if (ctxLen > 0) Buffer.BlockCopy(b, ctxOff, pong, 5, ctxLen);
                lock (_sendLock)
                {
                    if (_live == null) return;
                    try { WriteFrame(pong, 0, pong.Length, false, true); }
                    catch (SocketException) { DropLive(); }
                }
                return;
            }
            if (name == "ERROR")
            {
                ParseCommand(b, off, len, out dataOff, out dataLen);
                throw new ZmtpException("the daemon sent ERROR: " + ErrorReason(b, dataOff, dataLen));
            }
            // PONG, SUBSCRIBE/CANCEL echoes and future commands: nothing to do
        }

        public void Dispose()
        {
            if (_closed) return;
            _closed = true;
            _closeEvent.Set();
            lock (_sendLock) { _live = null; _liveCurve = null; }
            CloseSocket(_sock);
            if (!_thread.Join(2000)) Report("reader thread did not stop within 2 s");
        }
    }
}
