// Default ITransport: libzmq through P/Invoke. DEALER for control, SUB for media, zmq_poll with a
// timeout and ZMQ_DONTWAIT receives/sends so nothing blocks forever, ZMQ_LINGER 0 on every socket so
// zmq_ctx_term returns at once on Dispose. Use from a single thread.
using System;
using System.Collections.Generic;
using System.Runtime.InteropServices;
using System.Text;

namespace Xstreamer.Avatar.Core
{
    /// <summary>A transport failure (library missing, socket error).</summary>
    public sealed class TransportException : Exception
    {
        public TransportException(string message, Exception inner = null) : base(message, inner) { }
    }

    /// <summary>libzmq-backed transport.</summary>
    public sealed class ZmqTransport : ITransport
    {
        private IntPtr _ctx;
        private IntPtr _control = IntPtr.Zero;
        private IntPtr _media = IntPtr.Zero;
        private IntPtr _msg;
        private bool _disposed;

        /// <summary>libzmq's version, e.g. "4.3.4" (throws TransportException if the library is missing).</summary>
        public static string NativeVersion()
        {
            try
            {
                int a, b, c;
                ZmqNative.zmq_version(out a, out b, out c);
                return a + "." + b + "." + c;
            }
            catch (DllNotFoundException e) { throw Missing(e); }
            catch (EntryPointNotFoundException e) { throw Missing(e); }
        }

        private static TransportException Missing(Exception e)
        {
            return new TransportException("libzmq could not be loaded (" + e.Message + "). Install it: Windows libzmq.dll " +
                "(vcpkg zeromq), macOS libzmq.dylib (brew install zeromq), Linux libzmq.so (libzmq5 + a libzmq.so link); " +
                "see Documentation~/index.md", e);
        }

        public ZmqTransport()
        {
            try { _ctx = ZmqNative.zmq_ctx_new(); }
            catch (DllNotFoundException e) { throw Missing(e); }
            catch (EntryPointNotFoundException e) { throw Missing(e); }
            if (_ctx == IntPtr.Zero) throw new TransportException("zmq_ctx_new failed: " + ZmqNative.LastError());
            _msg = Marshal.AllocHGlobal(ZmqNative.MsgSize);
        }

        private IntPtr NewSocket(int type, string endpoint)
        {
            if (_disposed) throw new ObjectDisposedException("ZmqTransport");
            IntPtr s = ZmqNative.zmq_socket(_ctx, type);
            if (s == IntPtr.Zero) throw new TransportException("zmq_socket failed: " + ZmqNative.LastError());
            SetInt(s, ZmqNative.LINGER, 0);
            SetInt(s, ZmqNative.RECONNECT_IVL, 100);
            SetInt(s, ZmqNative.RECONNECT_IVL_MAX, 1000);
            if (type == ZmqNative.SUB) SetInt(s, ZmqNative.RCVHWM, 5000);
            byte[] ep = Encoding.UTF8.GetBytes(endpoint + "\0");
            if (ZmqNative.zmq_connect(s, ep) != 0)
            {
                string err = ZmqNative.LastError();
                ZmqNative.zmq_close(s);
                throw new TransportException("cannot connect to " + endpoint + ": " + err);
            }
            return s;
        }

        private static void SetInt(IntPtr s, int option, int value)
        {
            ZmqNative.zmq_setsockopt(s, option, ZmqNative.Int32Bytes(value), (UIntPtr)4);
        }

        public void ConnectControl(string endpoint)
        {
            Close(ref _control);
            _control = NewSocket(ZmqNative.DEALER, endpoint);
        }

        public void ConnectMedia(string endpoint)
        {
            Close(ref _media);
            _media = NewSocket(ZmqNative.SUB, endpoint);
        }

        public void Subscribe(byte[] topic)
        {
            if (_media == IntPtr.Zero) throw new InvalidOperationException("media socket not connected");
            if (ZmqNative.zmq_setsockopt(_media, ZmqNative.SUBSCRIBE, topic, (UIntPtr)topic.Length) != 0)
                throw new TransportException("subscribe failed: " + ZmqNative.LastError());
        }

        private static void Close(ref IntPtr s)
        {
            if (s != IntPtr.Zero) { ZmqNative.zmq_close(s); s = IntPtr.Zero; }
        }

        public void CloseSockets()
        {
            Close(ref _control);
            Close(ref _media);
        }

        public bool SendControl(IList<byte[]> frames)
        {
            if (_control == IntPtr.Zero) return false;
            for (int i = 0; i < frames.Count; i++)
            {
                int flags = ZmqNative.DONTWAIT | (i < frames.Count - 1 ? ZmqNative.SNDMORE : 0);
                byte[] f = frames[i] ?? new byte[0];
                if (ZmqNative.zmq_send(_control, f, (UIntPtr)f.Length, flags) < 0)
                {
                    if (i == 0) return false;   // nothing queued: the caller may retry later
                    throw new TransportException("multipart send failed midway: " + ZmqNative.LastError());
                }
            }
            return true;
        }

        public TransportReady Poll(int timeoutMs)
        {
            int n = (_control != IntPtr.Zero ? 1 : 0) + (_media != IntPtr.Zero ? 1 : 0);
            if (n == 0)
            {
                if (timeoutMs > 0) System.Threading.Thread.Sleep(timeoutMs);
                return TransportReady.None;
            }
            var sockets = new IntPtr[n];
            int k = 0;
            if (_control != IntPtr.Zero) sockets[k++] = _control;
            if (_media != IntPtr.Zero) sockets[k++] = _media;
            var revents = new short[n];
            int rc;
            if (ZmqNative.IsWindows)
            {
                var items = new ZmqNative.PollItemWindows[n];
                for (int i = 0; i < n; i++) { items[i].socket = sockets[i]; items[i].events = ZmqNative.POLLIN; }
                rc = ZmqNative.zmq_poll_windows(items, n, timeoutMs);
                for (int i = 0; i < n; i++) revents[i] = items[i].revents;
            }
            else
            {
                var items = new ZmqNative.PollItemPosix[n];
                for (int i = 0; i < n; i++) { items[i].socket = sockets[i]; items[i].events = ZmqNative.POLLIN; }
                rc = ZmqNative.zmq_poll_posix(items, n, timeoutMs);
                for (int i = 0; i < n; i++) revents[i] = items[i].revents;
            }
            if (rc <= 0) return TransportReady.None;   // timeout, EINTR or ETERM: the caller loops and checks its flags
            var ready = TransportReady.None;
            for (int i = 0; i < n; i++)
            {
                if ((revents[i] & ZmqNative.POLLIN) == 0) continue;
                ready |= sockets[i] == _control ? TransportReady.Control : TransportReady.Media;
            }
            return ready;
        }

        private bool Receive(IntPtr socket, out List<byte[]> frames)
        {
            frames = null;
            if (socket == IntPtr.Zero) return false;
            var parts = new List<byte[]>(3);
            while (true)
            {
                ZmqNative.zmq_msg_init(_msg);
                int n = ZmqNative.zmq_msg_recv(_msg, socket, ZmqNative.DONTWAIT);
                if (n < 0)
                {
                    ZmqNative.zmq_msg_close(_msg);
                    if (parts.Count == 0) return false;  // EAGAIN: nothing there
                    throw new TransportException("multipart receive failed midway: " + ZmqNative.LastError());
                }
                var data = new byte[(long)(ulong)ZmqNative.zmq_msg_size(_msg)];
                if (data.Length > 0) Marshal.Copy(ZmqNative.zmq_msg_data(_msg), data, 0, data.Length);
                bool more = ZmqNative.zmq_msg_more(_msg) != 0;
                ZmqNative.zmq_msg_close(_msg);
                parts.Add(data);
                if (!more) break;
            }
            frames = parts;
            return true;
        }

        public bool TryReceiveControl(out List<byte[]> frames) { return Receive(_control, out frames); }
        public bool TryReceiveMedia(out List<byte[]> frames) { return Receive(_media, out frames); }

        /// <summary>Close the sockets and terminate the context (returns promptly: LINGER is 0).</summary>
        public void Dispose()
        {
            if (_disposed) return;
            _disposed = true;
            CloseSockets();
            if (_ctx != IntPtr.Zero) { ZmqNative.zmq_ctx_term(_ctx); _ctx = IntPtr.Zero; }
            if (_msg != IntPtr.Zero) { Marshal.FreeHGlobal(_msg); _msg = IntPtr.Zero; }
        }
    }
}
