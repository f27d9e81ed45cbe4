// The default ITransport: ZeroMQ's wire protocol (ZMTP 3.x) spoken in managed C# over System.Net.Sockets,
// so the package needs no native library on any platform. A DEALER connection for control and a SUB
// connection for media, each with its own reader thread (ZmtpConnection); NULL security on loopback,
// CURVE (CurveZMQ) when keys are given. Poll waits on a monitor that the readers pulse.
using System;
using System.Collections.Generic;
using System.Threading;

namespace Xstreamer.Avatar.Core
{
    /// <summary>DEALER + SUB over managed ZMTP (see ZmtpConnection).</summary>
    public sealed class ZmtpTransport : IMultipartTransport
    {
        private readonly ZmtpOptions _opt;
        private readonly object _signal = new object();
        private readonly MessageInbox _controlInbox, _mediaInbox;
        private ZmtpConnection _control, _media;
        private MultipartMessage _legacy;
        private bool _disposed;

        public ZmtpTransport(ZmtpOptions options = null)
        {
            _opt = options ?? new ZmtpOptions();
            Action pulse = () => { lock (_signal) Monitor.PulseAll(_signal); };
            _controlInbox = new MessageInbox(_opt.ControlQueueMessages, pulse);
            _mediaInbox = new MessageInbox(_opt.MediaQueueMessages, pulse);
        }

        public ZmtpOptions Options { get { return _opt; } }

        /// <summary>Diagnostics: bytes allocated by the two reader threads (when Options.AllocationProbe is set).</summary>
        public long ReaderAllocatedBytes
        {
            get
            {
                long n = 0;
                ZmtpConnection c = _control, m = _media;
                if (c != null) n += Volatile.Read(ref c.ReaderAllocatedBytes);
                if (m != null) n += Volatile.Read(ref m.ReaderAllocatedBytes);
                return n + _closedReaderBytes;
            }
        }
        private long _closedReaderBytes;

        /// <summary>Completed handshakes of the control / media connections (reconnects add one each).</summary>
        public int ControlConnections { get { ZmtpConnection c = _control; return c == null ? 0 : c.Connections; } }
        public int MediaConnections { get { ZmtpConnection m = _media; return m == null ? 0 : m.Connections; } }
        public bool ControlConnected { get { ZmtpConnection c = _control; return c != null && c.IsConnected; } }
        public bool MediaConnected { get { ZmtpConnection m = _media; return m != null && m.IsConnected; } }

        private void Check() { if (_disposed) throw new ObjectDisposedException("ZmtpTransport"); }

        private void Drop(ref ZmtpConnection c, MessageInbox inbox)
        {
            if (c == null) return;
            c.Dispose();
            _closedReaderBytes += Volatile.Read(ref c.ReaderAllocatedBytes);
            c = null;
            MultipartMessage m = null;
            while (inbox.TryTake(ref m)) { }   // messages of the old connection are stale
        }

        public void ConnectControl(string endpoint)
        {
            Check();
            Drop(ref _control, _controlInbox);
            _control = new ZmtpConnection(endpoint, ZmtpSocketType.Dealer, _opt, _controlInbox);
        }

        public void ConnectMedia(string endpoint)
        {
            Check();
            Drop(ref _media, _mediaInbox);
            _media = new ZmtpConnection(endpoint, ZmtpSocketType.Sub, _opt, _mediaInbox);
        }

        public void CloseSockets()
        {
            Drop(ref _control, _controlInbox);
            Drop(ref _media, _mediaInbox);
        }

        public void Subscribe(byte[] topic)
        {
            if (_media == null) throw new InvalidOperationException("media socket not connected");
            _media.Subscribe(topic);
        }

        public bool SendControl(IList<byte[]> frames)
        {
            ZmtpConnection c = _control;
            return c != null && c.Send(frames);
        }

        public TransportReady Poll(int timeoutMs)
        {
            lock (_signal)
            {
                TransportReady r = Ready();
                if (r != TransportReady.None || timeoutMs <= 0) return r;
                Monitor.Wait(_signal, timeoutMs);
                return Ready();
            }
        }

        private TransportReady Ready()
        {
            var r = TransportReady.None;
            if (_controlInbox.Count > 0) r |= TransportReady.Control;
            if (_mediaInbox.Count > 0) r |= TransportReady.Media;
            return r;
        }

        public bool TryReceiveControl(ref MultipartMessage message) { return _controlInbox.TryTake(ref message); }
        public bool TryReceiveMedia(ref MultipartMessage message) { return _mediaInbox.TryTake(ref message); }

        public bool TryReceiveControl(out List<byte[]> frames) { return Legacy(_controlInbox, out frames); }
        public bool TryReceiveMedia(out List<byte[]> frames) { return Legacy(_mediaInbox, out frames); }

        private bool Legacy(MessageInbox inbox, out List<byte[]> frames)
        {
            frames = null;
            if (!inbox.TryTake(ref _legacy)) return false;
            frames = _legacy.ToList();
            inbox.Return(_legacy);
            _legacy = null;
            return true;
        }

        public void Dispose()
        {
            if (_disposed) return;
            _disposed = true;
            CloseSockets();
        }
    }
}
