// Options, connection states and the events AvatarStreamCore queues for the consumer's thread.
using System;

namespace Xstreamer.Avatar.Core
{
    /// <summary>Link state as seen by the client.</summary>
    public enum ConnectionState { Disconnected, Connecting, Connected, Ready, Closed }

    /// <summary>What an <see cref="AvatarEvent"/> reports.</summary>
    public enum AvatarEventKind
    {
        ConnectionChanged, SessionOpened, Ack, UtteranceStart, UtteranceEnd, Interrupted, Text, Error, SessionClosed,
        /// <summary>A reply that was running when its session was lost to a daemon restart (protocol v2's `lost`,
        /// made by the client): it gets no UtteranceEnd. Text says why.</summary>
        UtteranceLost,
    }

    /// <summary>An event produced on the network thread and dispatched on the consumer's thread.</summary>
    public sealed class AvatarEvent
    {
        public AvatarEventKind Kind;
        public ConnectionState State;
        public long Utt, Req, Pts;
        public string Session, Role, Text, Code;
        public bool Final;
        /// <summary>SessionOpened: true when a new connection took the same session back (`resume`), false when it
        /// was opened (first, or again after a daemon restart).</summary>
        public bool Resumed;

        public override string ToString()
        {
            return Kind + " utt=" + Utt + (Text != null ? " text=" + Text : "") + (Code != null ? " code=" + Code : "");
        }
    }

    /// <summary>Settings of an <see cref="AvatarStreamCore"/>.</summary>
    public sealed class AvatarStreamOptions
    {
        /// <summary>The daemon's control endpoint (ROUTER), e.g. tcp://127.0.0.1:7570.</summary>
        public string ControlEndpoint = "tcp://127.0.0.1:7570";
        public string ClientName = "xstreamer-unity/0.1.0";
        public Persona Persona = new Persona();
        /// <summary>Portrait image file bytes (PNG/JPEG), or null for the persona's default.</summary>
        public byte[] Portrait;
        /// <summary>
        /// Only for a portrait in which the daemon finds no face (a drawing, a mascot; it refuses those with
        /// invalid_portrait): five points placing the face, in the portrait's pixels (left eye centre, right eye
        /// centre, nose tip, left mouth corner, right mouth corner, as the picture shows them). null: none.
        /// </summary>
        public FacePoint[] FacePoints;
        /// <summary>Side of the square video frames to ask for: 256 or 512 (open.video_size).</summary>
        public int VideoSize = ProtocolV1.FrameSize;
        /// <summary>Jitter buffer target (see <see cref="LatencyPresets"/>).</summary>
        public int JitterTargetMs = 160;
        public int OutputSampleRate = 48000;
        /// <summary>How long to wait for welcome before reconnecting.</summary>
        public int HelloTimeoutMs = 3000;
        /// <summary>How long to wait for opened (portrait analysis may take a while).</summary>
        public int OpenTimeoutMs = 30000;
        /// <summary>Silence on both sockets for this long means the daemon is gone: reconnect.</summary>
        public int LivenessTimeoutMs = 3000;
        /// <summary>Pause between reconnect attempts.</summary>
        public int ReconnectDelayMs = 250;
        /// <summary>On Dispose, how long to wait for the daemon to acknowledge closing the session.</summary>
        public int CloseTimeoutMs = 250;
        /// <summary>CURVE keys for a daemon served off loopback (null: no encryption, for loopback).</summary>
        public CurveKeys Curve;
        /// <summary>Creates the transport (default: ZmtpTransport, managed ZeroMQ, with <see cref="Curve"/>).</summary>
        public Func<ITransport> TransportFactory;
        /// <summary>Diagnostics: returns the calling thread's allocated bytes (e.g. GC.GetAllocatedBytesForCurrentThread);
        /// when set, NetworkThreadAllocatedBytes and TransportAllocatedBytes count the network threads' allocations.</summary>
        public Func<long> AllocationProbe;
    }

    /// <summary>Latency presets: the jitter buffer target in milliseconds.</summary>
    public enum LatencyPreset { Low, Balanced, Safe }

    public static class LatencyPresets
    {
        /// <summary>Low 80 ms, Balanced 160 ms, Safe 320 ms of audio buffered before playback.</summary>
        public static int TargetMs(LatencyPreset p)
        {
            switch (p)
            {
                case LatencyPreset.Low: return 80;
                case LatencyPreset.Safe: return 320;
                default: return 160;
            }
        }
    }
}
