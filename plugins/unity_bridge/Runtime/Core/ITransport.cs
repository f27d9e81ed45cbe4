// The transport seam: AvatarStreamCore talks to the daemon only through ITransport, so another binding
// (NetMQ, a websocket relay, a test double) can replace the default one, ZmtpTransport (ZeroMQ's wire
// protocol in managed C#). Implementations are used from ONE thread (the core's network thread) and must
// never block longer than the given timeouts.
using System;
using System.Collections.Generic;

namespace Xstreamer.Avatar.Core
{
    /// <summary>Which sockets have something to read after <see cref="ITransport.Poll"/>.</summary>
    [Flags]
    public enum TransportReady { None = 0, Control = 1, Media = 2 }

    /// <summary>A transport failure (bad endpoint, socket error).</summary>
    public sealed class TransportException : Exception
    {
        public TransportException(string message, Exception inner = null) : base(message, inner) { }
    }

    /// <summary>A control channel (DEALER-like, request/reply) and a media channel (SUB-like).</summary>
    public interface ITransport : IDisposable
    {
        /// <summary>(Re)create the control socket and connect it; drops any previous one.</summary>
        void ConnectControl(string endpoint);
        /// <summary>(Re)create the media socket and connect it; drops any previous one.</summary>
        void ConnectMedia(string endpoint);
        /// <summary>Close both sockets (the transport stays usable).</summary>
        void CloseSockets();
        void Subscribe(byte[] topic);
        /// <summary>Queue a multipart control message without blocking; false when it cannot be queued.</summary>
        bool SendControl(IList<byte[]> frames);
        /// <summary>Wait at most <paramref name="timeoutMs"/> for readable sockets.</summary>
        TransportReady Poll(int timeoutMs);
        /// <summary>Non-blocking receive of one multipart control message.</summary>
        bool TryReceiveControl(out List<byte[]> frames);
        /// <summary>Non-blocking receive of one multipart media message.</summary>
        bool TryReceiveMedia(out List<byte[]> frames);
    }

    /// <summary>
    /// Optional: a transport that hands out reusable messages instead of new byte arrays (the core uses it
    /// when present, so the media path allocates nothing per packet). Swap semantics: the message passed in
    /// (null the first time) goes back to the transport, a received one comes out.
    /// </summary>
    public interface IMultipartTransport : ITransport
    {
        bool TryReceiveControl(ref MultipartMessage message);
        bool TryReceiveMedia(ref MultipartMessage message);
    }
}
