// The Unity-independent client: a network thread that speaks protocol v2 to the daemon (hello, open,
// requests, heartbeats; after a lost connection: a new one that resumes the session with its secret, or
// opens it again after a daemon restart, ending the replies that were running with a `lost` event) and feeds
// the audio jitter buffer and the video and motion queues. The thread never calls into Unity: events are
// queued and raised by DispatchEvents() on the caller's thread (Unity: from Update()).
using System;
using System.Collections.Generic;
using System.Diagnostics;
using System.Threading;

namespace Xstreamer.Avatar.Core
{
    /// <summary>Connects to an xstreamer daemon and streams one avatar session.</summary>
    public sealed class AvatarStreamCore : IDisposable
    {
        private readonly AvatarStreamOptions _opt;
        private readonly Queue<AvatarEvent> _events = new Queue<AvatarEvent>();
        private readonly Queue<Func<string, byte[]>> _pending = new Queue<Func<string, byte[]>>();
        private readonly ManualResetEvent _wake = new ManualResetEvent(false);
        private Thread _thread;
        private volatile bool _stop;
        private long _req;
        private long _droppedUtt = -1;
        private long _latestUtt;
        private long _lastSeq = -1;
        private volatile int _state = (int)ConnectionState.Disconnected;
        private string _session;
        // The session this core holds across connections (its id and the secret of its opened, for `resume`),
        // the utterances running in it (acknowledged or started, not yet ended) and the highest utterance id
        // seen (a session opened again continues after it: open.first_utt). Network thread only.
        private string _heldSession, _secret;
        private readonly HashSet<long> _running = new HashSet<long>();
        private long _highestUtt;
        private readonly HashSet<long> _interruptReqs = new HashSet<long>();
        private volatile bool _outage;   // an outage was reported (unavailable, or the transport's own error)
        /// <summary>Why a running reply ended without its end: its session was lost (a daemon restart).</summary>
        public const string LostReason = "lost: the daemon's session ended (restart); the session was opened again";
        private ITransport _transport;
        private byte[] _topic, _sessionBytes;      // the open session's media topic and id (UTF-8)
        private MultipartMessage _mediaMsg, _controlMsg;
        private long _allocStart, _allocBytes;

        /// <summary>A core for <paramref name="options"/> (not started: see <see cref="Start"/>). Throws
        /// ArgumentException when options.FacePoints are not five finite points.</summary>
        public AvatarStreamCore(AvatarStreamOptions options)
        {
            _opt = options ?? new AvatarStreamOptions();
            FacePoints.Check(_opt.FacePoints);   // refused here, on the caller's thread, not by the network thread
            Audio = new AudioJitterBuffer(_opt.JitterTargetMs, _opt.OutputSampleRate);
            Video = new VideoFrameQueue();
            Motion = new MotionFrameQueue();
        }

        /// <summary>Audio jitter buffer; the audio thread calls Audio.Read and its Clock is the master clock.</summary>
        public AudioJitterBuffer Audio { get; private set; }
        /// <summary>Frames waiting for their pts; take with Video.TakeDue(Audio.Clock.Pts).</summary>
        public VideoFrameQueue Video { get; private set; }
        /// <summary>Motion frames (blendshape weights + head pose) waiting for their pts; read with
        /// Motion.TryGetDue(Audio.Clock.Pts, ...). The values follow <see cref="MotionChannels"/>.</summary>
        public MotionFrameQueue Motion { get; private set; }
        /// <summary>Names of the motion values of the open session (opened.motion_channels; empty: this
        /// model publishes no motion). A new array each time a session opens.</summary>
        public string[] MotionChannels { get { return Volatile.Read(ref _motionChannels); } }
        private string[] _motionChannels = new string[0];
        /// <summary>"rgb24" or "rgba32" for the open session's video (opened.video_format).</summary>
        public string VideoFormat { get { return Volatile.Read(ref _videoFormat); } }
        private string _videoFormat = "rgb24";
        public ConnectionState State { get { return (ConnectionState)_state; } }
        /// <summary>The open session id (null until opened).</summary>
        public string Session { get { return Volatile.Read(ref _session); } }
        /// <summary>Audio and video packets taken into the buffers.</summary>
        public int AudioPackets, VideoFrames, MotionFrames;
        /// <summary>Media packets missing (seq gaps), and packets dropped after an interrupt.</summary>
        public int PacketsLost, PacketsDiscarded, Reconnects;
        /// <summary>Connections that took the held session back with `resume` (no restart), and sessions opened
        /// again because the daemon had lost them (a restart).</summary>
        public int Resumes, Reopens;
        /// <summary>Last daemon state string ("idle", "speaking", ...).</summary>
        public volatile string DaemonState = "";

        /// <summary>Optional raw media hook, called ON THE NETWORK THREAD (never touch Unity from it).</summary>
        public Action<MediaPacket, byte[]> MediaObserver;

        public event Action<ConnectionState> ConnectionChanged;
        public event Action<string> SessionOpened;
        public event Action<long, long> Acked;                // req, utt
        public event Action<long> UtteranceStarted, UtteranceEnded, Interrupted;
        /// <summary>A reply that was running when its session was lost (daemon restart): it will not end otherwise.</summary>
        public event Action<long> UtteranceLost;
        public event Action<string, string, bool, long> TextReceived;   // role, text, final, utt
        public event Action<string, string> ErrorReceived;   // code, message

        /// <summary>Start the network thread (idempotent).</summary>
        public void Start()
        {
            if (_thread != null) return;
            _thread = new Thread(Run) { IsBackground = true, Name = "xstreamer-net" };
            _thread.Start();
        }

        // -------------------------------------------------------------------------------------------
        // Requests (any thread). They are sent once a session is open; they return the request id.

        /// <summary>The avatar says <paramref name="text"/> verbatim.</summary>
        public long Say(string text) { return Enqueue(req => s => ProtocolCodec.EncodeText("speak", req, s, text), text); }

        /// <summary>A user turn: the persona answers it.</summary>
        public long Chat(string text) { return Enqueue(req => s => ProtocolCodec.EncodeText("chat", req, s, text), text); }

        /// <summary>Replace the persona (takes effect at the next turn).</summary>
        public long SetPersona(Persona p)
        {
            _opt.Persona = p;   // also used when the session is re-opened after a reconnect
            return Enqueue(req => s => ProtocolCodec.EncodeSetPersona(req, s, p), null);
        }

        /// <summary>Barge-in: local audio/video of the current reply is dropped now, the daemon is told to stop.</summary>
        public long Interrupt()
        {
            long utt = Interlocked.Read(ref _latestUtt);
            if (utt > 0) Interlocked.Exchange(ref _droppedUtt, utt);
            Audio.Flush();
            Video.Flush();
            Motion.Flush();
            return Enqueue(req => s =>
            {
                _interruptReqs.Add(req);   // its ack ends every turn acknowledged before it (cut or dropped from the queue)
                return ProtocolCodec.EncodeSessionOnly("interrupt", req, s);
            }, null);
        }

        private long Enqueue(Func<long, Func<string, byte[]>> make, string text)
        {
            if (text != null && text.Trim().Length == 0) throw new ArgumentException("text is empty");
            if (text != null && text.Length > ProtocolV1.MaxTextChars) throw new ArgumentException("text is longer than " + ProtocolV1.MaxTextChars + " characters");
            long req = Interlocked.Increment(ref _req);
            lock (_pending) _pending.Enqueue(make(req));
            _wake.Set();
            return req;
        }

        // -------------------------------------------------------------------------------------------
        // Events

        /// <summary>Take one queued event (any thread); false when none.</summary>
        public bool TryDequeueEvent(out AvatarEvent e)
        {
            lock (_events)
            {
                if (_events.Count == 0) { e = null; return false; }
                e = _events.Dequeue();
                return true;
            }
        }

        /// <summary>Raise the C# events for up to <paramref name="max"/> queued events on the calling thread.</summary>
        public int DispatchEvents(int max = 256)
        {
            int n = 0;
            AvatarEvent e;
            while (n < max && TryDequeueEvent(out e))
            {
                n++;
                switch (e.Kind)
                {
                    case AvatarEventKind.ConnectionChanged: if (ConnectionChanged != null) ConnectionChanged(e.State); break;
                    case AvatarEventKind.SessionOpened: if (SessionOpened != null) SessionOpened(e.Session); break;
                    case AvatarEventKind.Ack: if (Acked != null) Acked(e.Req, e.Utt); break;
                    case AvatarEventKind.UtteranceStart: if (UtteranceStarted != null) UtteranceStarted(e.Utt); break;
                    case AvatarEventKind.UtteranceEnd: if (UtteranceEnded != null) UtteranceEnded(e.Utt); break;
                    case AvatarEventKind.Interrupted: if (Interrupted != null) Interrupted(e.Utt); break;
                    case AvatarEventKind.UtteranceLost: if (UtteranceLost != null) UtteranceLost(e.Utt); break;
                    case AvatarEventKind.Text: if (TextReceived != null) TextReceived(e.Role, e.Text, e.Final, e.Utt); break;
                    case AvatarEventKind.Error: if (ErrorReceived != null) ErrorReceived(e.Code, e.Text); break;
                    case AvatarEventKind.SessionClosed: if (ErrorReceived != null) ErrorReceived("session_closed", e.Text); break;
                }
            }
            return n;
        }

        private void Post(AvatarEvent e) { lock (_events) { if (_events.Count < 10000) _events.Enqueue(e); } }

        private void SetState(ConnectionState s)
        {
            if ((int)s == _state) return;
            _state = (int)s;
            Post(new AvatarEvent { Kind = AvatarEventKind.ConnectionChanged, State = s });
        }

        private void PostError(string code, string message)
        {
            Post(new AvatarEvent { Kind = AvatarEventKind.Error, Code = code, Text = message });
        }

        // -------------------------------------------------------------------------------------------
        // Network thread

        private void Run()
        {
            var probe = _opt.AllocationProbe;
            if (probe != null) _allocStart = probe();
            ITransport t = null;
            try
            {
                t = _opt.TransportFactory != null ? _opt.TransportFactory() : new ZmtpTransport(new ZmtpOptions
                {
                    Curve = _opt.Curve, AllocationProbe = _opt.AllocationProbe,
                    OnError = TransportError,
                });
                _transport = t;
                while (!_stop)
                {
                    try { RunConnection(t); }
                    catch (TransportException e) { TransportError(e.Message); }
                    catch (ProtocolException e) { PostError(ErrorCodes.ToWire(e.Code), e.Detail); }
                    t.CloseSockets();
                    Volatile.Write(ref _session, null);
                    if (_stop) break;
                    SetState(ConnectionState.Disconnected);
                    _wake.WaitOne(_opt.ReconnectDelayMs);
                    _wake.Reset();
                }
            }
            catch (Exception e) { PostError("internal", e.GetType().Name + ": " + e.Message); }
            finally
            {
                if (t != null) t.Dispose();
                SetState(ConnectionState.Closed);
            }
        }

        private Message WaitReply(ITransport t, long req, int timeoutMs)
        {
            var sw = Stopwatch.StartNew();
            while (!_stop && sw.ElapsedMilliseconds < timeoutMs)
            {
                if ((t.Poll(20) & TransportReady.Control) == 0) { DrainMedia(t, 64); continue; }
                List<byte[]> frames;
                while (ReceiveControl(t, out frames))
                {
                    Message m = ProtocolCodec.DecodeServer(frames);
                    if (m.Req == req) return m;
                }
            }
            return null;
        }

        private static string FixMediaHost(string media, string control)
        {
            // A daemon bound to 0.0.0.0 / * announces that host: use the control endpoint's host instead.
            int c = control.LastIndexOf(':'), m = media.LastIndexOf(':');
            int ch = control.IndexOf("://", StringComparison.Ordinal), mh = media.IndexOf("://", StringComparison.Ordinal);
            if (c < 0 || m < 0 || ch < 0 || mh < 0) return media;
            string host = media.Substring(mh + 3, m - mh - 3);
            if (host != "0.0.0.0" && host != "*" && host != "[::]" && host.Length > 0) return media;
            return media.Substring(0, mh + 3) + control.Substring(ch + 3, c - ch - 3) + media.Substring(m);
        }

        private void RunConnection(ITransport t)
        {
            SetState(ConnectionState.Connecting);
            t.ConnectControl(_opt.ControlEndpoint);
            long req = Interlocked.Increment(ref _req);
            t.SendControl(new[] { ProtocolCodec.EncodeHello(req, _opt.ClientName) });
            Message reply = WaitReply(t, req, _opt.HelloTimeoutMs);
            if (reply == null)
            {
                Outage("no welcome from the daemon at " + _opt.ControlEndpoint + " within " + _opt.HelloTimeoutMs + " ms; retrying");
                return;
            }
            var err = reply as ErrorMessage;
            if (err != null) { PostError(err.CodeWire, err.Text); _wake.WaitOne(1000); return; }
            var welcome = reply as WelcomeMessage;
            if (welcome == null) throw new ProtocolException(ErrorCode.Malformed, "expected welcome, got " + reply.Type);
            _outage = false;
            SetState(ConnectionState.Connected);
            t.ConnectMedia(FixMediaHost(welcome.MediaEndpoint, _opt.ControlEndpoint));

            // The session this core held on an earlier connection: take it back with its secret. The daemon
            // answers opened (the same session, topic and secret) or, when it no longer has it (a restart),
            // unknown_session / not_owner: then it is opened again below and its running replies are lost.
            OpenedMessage opened = null;
            if (_heldSession != null && _secret != null)
            {
                req = Interlocked.Increment(ref _req);
                t.SendControl(new[] { ProtocolCodec.EncodeResume(req, _heldSession, _secret) });
                reply = WaitReply(t, req, _opt.HelloTimeoutMs);
                if (reply == null) return;
                err = reply as ErrorMessage;
                if (err != null && err.Code != ErrorCode.UnknownSession && err.Code != ErrorCode.NotOwner)
                {
                    PostError(err.CodeWire, err.Text);
                    _wake.WaitOne(1000);
                    return;
                }
                opened = reply as OpenedMessage;
                if (opened == null && err == null) throw new ProtocolException(ErrorCode.Malformed, "expected opened, got " + reply.Type);
            }
            bool resumed = opened != null;
            if (!resumed)
            {
                req = Interlocked.Increment(ref _req);
                bool portrait = _opt.Portrait != null && _opt.Portrait.Length > 0;
                byte[] open = ProtocolCodec.EncodeOpen(req, _opt.Persona, portrait, _opt.VideoSize, portrait ? _opt.FacePoints : null,
                                                       _highestUtt + 1);
                t.SendControl(portrait ? new[] { open, _opt.Portrait } : new[] { open });
                reply = WaitReply(t, req, _opt.OpenTimeoutMs);
                if (reply == null) return;
                err = reply as ErrorMessage;
                if (err != null) { PostError(err.CodeWire, err.Text); _wake.WaitOne(2000); return; }
                opened = reply as OpenedMessage;
                if (opened == null) throw new ProtocolException(ErrorCode.Malformed, "expected opened, got " + reply.Type);
                LoseRunning();   // the replies of the session the daemon lost end here, before the new session's events
                Audio.Flush();
                Video.Flush();
                Motion.Flush();
                Audio.Clock.Reset();
                Interlocked.Exchange(ref _droppedUtt, -1);
                Interlocked.Exchange(ref _latestUtt, 0);
                Interlocked.Exchange(ref _lastSeq, -1);   // a new session's seq starts at 0
                if (_heldSession != null) Reopens++;
            }
            else Resumes++;   // the same session: its buffers, clock and seq go on (packets sent meanwhile count as lost)
            _heldSession = opened.Session;
            _secret = opened.Secret;
            Volatile.Write(ref _motionChannels, opened.MotionChannels);
            Volatile.Write(ref _videoFormat, opened.VideoFormat);
            _topic = System.Text.Encoding.ASCII.GetBytes(opened.Topic);    // the session's private media topic
            _sessionBytes = System.Text.Encoding.UTF8.GetBytes(opened.Session);
            Volatile.Write(ref _session, opened.Session);
            t.Subscribe(_topic);
            Post(new AvatarEvent { Kind = AvatarEventKind.SessionOpened, Session = opened.Session, Resumed = resumed });
            SetState(ConnectionState.Ready);
            ServeSession(t, opened.Session, Math.Max(100, welcome.HeartbeatMs));
        }

        /// <summary>The transport says why the daemon cannot be reached (refused keys, a security mismatch, ...):
        /// that explains the outage, so no `unavailable` follows it. Any thread.</summary>
        private void TransportError(string message)
        {
            PostError("transport", message);
            _outage = true;
        }

        /// <summary>The daemon does not answer: one `unavailable` error per outage (not one per retry).</summary>
        private void Outage(string message)
        {
            if (_outage) return;
            _outage = true;
            PostError(ErrorCodes.ToWire(ErrorCode.Unavailable), message);
        }

        /// <summary>End every running reply of the lost session with an UtteranceLost event.</summary>
        private void LoseRunning()
        {
            var lost = new List<long>(_running);
            lost.Sort();
            _running.Clear();
            _interruptReqs.Clear();
            foreach (long u in lost) Post(new AvatarEvent { Kind = AvatarEventKind.UtteranceLost, Utt = u, Text = LostReason });
        }

        /// <summary>Network thread: an utterance id acknowledged or seen in media.</summary>
        private void NoteUtt(long utt, bool running)
        {
            if (utt <= 0) return;
            if (utt > _highestUtt) _highestUtt = utt;
            if (running) _running.Add(utt);
        }

        private void ServeSession(ITransport t, string session, int heartbeatMs)
        {
            var clock = Stopwatch.StartNew();
            long lastHeard = 0, lastPing = 0;
            int liveness = Math.Max(_opt.LivenessTimeoutMs, 3 * heartbeatMs);
            while (!_stop)
            {
                lock (_pending)
                    while (_pending.Count > 0) t.SendControl(new[] { _pending.Dequeue()(session) });
                TransportReady ready = t.Poll(10);
                long now = clock.ElapsedMilliseconds;
                if ((ready & TransportReady.Control) != 0)
                {
                    List<byte[]> frames;
                    while (ReceiveControl(t, out frames))
                    {
                        lastHeard = now;
                        if (!HandleControl(ProtocolCodec.DecodeServer(frames))) return;   // session lost
                    }
                }
                if ((ready & TransportReady.Media) != 0 && DrainMedia(t, 256)) lastHeard = now;
                if (_sessionClosed) { _sessionClosed = false; return; }
                if (now - lastPing >= heartbeatMs)
                {
                    lastPing = now;
                    t.SendControl(new[] { ProtocolCodec.EncodePing(Interlocked.Increment(ref _req), session) });
                }
                if (now - lastHeard > liveness)
                {
                    Outage("no answer from the daemon for " + (now - lastHeard) + " ms; reconnecting");
                    Reconnects++;
                    return;
                }
            }
            Goodbye(t, session);
        }

        /// <summary>
        /// Dispose with a session open: tell the daemon to close it (so it stops generating for us at once
        /// instead of after its idle timeout) and wait at most CloseTimeoutMs for the ack, because LINGER 0
        /// drops unsent messages when the socket closes.
        /// </summary>
        private void Goodbye(ITransport t, string session)
        {
            long req = Interlocked.Increment(ref _req);
            try
            {
                if (!t.SendControl(new[] { ProtocolCodec.EncodeSessionOnly("close", req, session) })) return;
                var sw = Stopwatch.StartNew();
                while (sw.ElapsedMilliseconds < _opt.CloseTimeoutMs)
                {
                    if ((t.Poll(10) & TransportReady.Control) == 0) continue;
                    List<byte[]> frames;
                    while (ReceiveControl(t, out frames))
                    {
                        Message m;
                        try { m = ProtocolCodec.DecodeServer(frames); }
                        catch (ProtocolException) { continue; }
                        if (m.Req == req) { ClosedCleanly = m is AckMessage; return; }
                    }
                }
            }
            catch (TransportException) { }   // shutting down anyway
        }

        /// <summary>True once Dispose closed the session and the daemon acknowledged it.</summary>
        public volatile bool ClosedCleanly;

        private bool _sessionClosed;

        /// <summary>False when the daemon no longer knows us (restart): the caller reconnects.</summary>
        private bool HandleControl(Message m)
        {
            var ack = m as AckMessage;
            if (ack != null)
            {
                if (_interruptReqs.Remove(ack.Req)) _running.Clear();
                NoteUtt(ack.Utt, true);
                if (ack.Utt > 0) Interlocked.Exchange(ref _latestUtt, ack.Utt);
                Post(new AvatarEvent { Kind = AvatarEventKind.Ack, Req = ack.Req, Utt = ack.Utt });
                return true;
            }
            var err = m as ErrorMessage;
            if (err != null)
            {
                // the daemon no longer knows this connection or session (a restart), or the session is not ours
                // on this connection: a new connection resumes it, or opens it again (not an error for the
                // application: it sees the reconnect, and UtteranceLost for replies the restart cut off)
                if (err.Code == ErrorCode.UnknownSession || err.Code == ErrorCode.NotWelcomed || err.Code == ErrorCode.NotOwner)
                {
                    Reconnects++;
                    return false;
                }
                PostError(err.CodeWire, err.Text);
            }
            return true;
        }

        /// <summary>One control message as byte arrays (control traffic is rare: copies are fine).</summary>
        private bool ReceiveControl(ITransport t, out List<byte[]> frames)
        {
            var mt = t as IMultipartTransport;
            if (mt == null) return t.TryReceiveControl(out frames);
            frames = null;
            if (!mt.TryReceiveControl(ref _controlMsg)) return false;
            frames = _controlMsg.ToList();
            return true;
        }

        /// <summary>Receive up to <paramref name="max"/> media messages; true if any arrived.</summary>
        private bool DrainMedia(ITransport t, int max)
        {
            var mt = t as IMultipartTransport;
            int n = 0;
            while (n < max)
            {
                if (mt != null)
                {
                    if (!mt.TryReceiveMedia(ref _mediaMsg)) break;
                }
                else
                {
                    List<byte[]> frames;
                    if (!t.TryReceiveMedia(out frames)) break;
                    if (_mediaMsg == null) _mediaMsg = new MultipartMessage();
                    _mediaMsg.CopyFrom(frames);
                }
                n++;
                HandleMediaMessage(_mediaMsg);
            }
            var probe = _opt.AllocationProbe;
            if (probe != null && n > 0) Volatile.Write(ref _allocBytes, probe() - _allocStart);
            return n > 0;
        }

        /// <summary>Diagnostics: bytes the network thread allocated since it started (with AllocationProbe set).</summary>
        public long NetworkThreadAllocatedBytes { get { return Volatile.Read(ref _allocBytes); } }

        /// <summary>Diagnostics: bytes the transport's reader threads allocated (ZmtpTransport with AllocationProbe set).</summary>
        public long TransportAllocatedBytes
        {
            get { var z = _transport as ZmtpTransport; return z == null ? 0 : z.ReaderAllocatedBytes; }
        }

        private void HandleMediaMessage(MultipartMessage m)
        {
            // The per-frame packets (audio, video) take the allocation-free path; anything else, or anything
            // unusual, goes through the full validator.
            MediaHeader h;
            byte[] topic = _topic, session = _sessionBytes;
            if (MediaObserver == null && topic != null && m.Count == 3 && m.FrameEquals(0, topic) &&
                FastMediaHeader.TryParse(m.Buffer, m.Offset(1), m.Length(1), session, out h) &&
                h.ExpectedPayload == m.Length(2))
            {
                TrackSeq(h.Seq, h.Utt);
                bool dropped = h.Utt > 0 && h.Utt == Interlocked.Read(ref _droppedUtt);
                if (h.Kind == MediaHeader.Audio) OnAudio(h.Pts, h.Utt, (int)h.SampleRate, (int)h.Samples, m.Buffer, m.Offset(2), dropped);
                else if (h.Kind == MediaHeader.Motion) OnMotion(h.Pts, h.Utt, h.Seq, (int)h.Channels, m.Buffer, m.Offset(2), dropped);
                else OnVideo(h.Pts, h.Utt, h.Seq, (int)h.Width, (int)h.Height, h.BytesPerPixel, m.Buffer, m.Offset(2), m.Length(2), dropped);
                return;
            }
            // v2: only the session's own private topic is ours (the daemon sends no other; a stale subscription
            // of an earlier session would be dropped here)
            if (topic == null || m.Count < 1 || !m.FrameEquals(0, topic)) { PacketsDiscarded++; return; }
            byte[] payload;
            MediaPacket p;
            try { p = ProtocolCodec.DecodeMedia(m.ToList(), out payload); }
            catch (ProtocolException e) { PostError(ErrorCodes.ToWire(e.Code), "bad media packet: " + e.Detail); return; }
            if (p.Session != Volatile.Read(ref _session)) { PacketsDiscarded++; return; }
            HandleMedia(p, payload);
        }

        private void TrackSeq(long seq, long utt)
        {
            long last = Interlocked.Exchange(ref _lastSeq, seq);
            if (last >= 0 && seq > last + 1) PacketsLost += (int)(seq - last - 1);
            if (utt > _highestUtt) _highestUtt = utt;
            if (utt > 0 && utt > Interlocked.Read(ref _latestUtt)) Interlocked.Exchange(ref _latestUtt, utt);
        }

        private void OnAudio(long pts, long utt, int sampleRate, int samples, byte[] buf, int off, bool dropped)
        {
            if (dropped || sampleRate != ProtocolV1.SampleRate) { PacketsDiscarded++; return; }
            Audio.Write(pts, utt, buf, off, samples);
            Interlocked.Increment(ref AudioPackets);
        }

        private void OnVideo(long pts, long utt, long seq, int width, int height, int bpp, byte[] buf, int off, int len, bool dropped)
        {
            if (dropped) { PacketsDiscarded++; return; }
            Video.PushCopy(pts, utt, seq, width, height, bpp, buf, off, len);
            Interlocked.Increment(ref VideoFrames);
        }

        private void OnMotion(long pts, long utt, long seq, int channels, byte[] buf, int off, bool dropped)
        {
            if (dropped) { PacketsDiscarded++; return; }
            Motion.PushFloat32(pts, utt, seq, buf, off, channels);
            Interlocked.Increment(ref MotionFrames);
        }

        private void HandleMedia(MediaPacket p, byte[] payload)
        {
            TrackSeq(p.Seq, p.Utt);
            var obs = MediaObserver;
            if (obs != null) obs(p, payload);
            bool dropped = p.Utt > 0 && p.Utt == Interlocked.Read(ref _droppedUtt);
            var audio = p as AudioPacket;
            if (audio != null)
            {
                OnAudio(p.Pts, p.Utt, audio.SampleRate, audio.Samples, payload, 0, dropped);
                return;
            }
            var video = p as VideoPacket;
            if (video != null)
            {
                OnVideo(p.Pts, p.Utt, p.Seq, video.Width, video.Height, video.BytesPerPixel, payload, 0, payload.Length, dropped);
                return;
            }
            var motion = p as MotionPacket;
            if (motion != null)
            {
                OnMotion(p.Pts, p.Utt, p.Seq, motion.Channels, payload, 0, dropped);
                return;
            }
            var text = p as TextPacket;
            if (text != null)
            {
                Post(new AvatarEvent { Kind = AvatarEventKind.Text, Utt = p.Utt, Pts = p.Pts, Role = text.Role, Text = text.Text, Final = text.Final });
                return;
            }
            var ev = p as EventPacket;
            if (ev != null)
            {
                var e = new AvatarEvent { Utt = p.Utt, Pts = p.Pts, Text = ev.Reason };
                switch (ev.Event)
                {
                    case "utterance_start": e.Kind = AvatarEventKind.UtteranceStart; NoteUtt(p.Utt, true); break;
                    case "utterance_end": e.Kind = AvatarEventKind.UtteranceEnd; _running.Remove(p.Utt); Audio.Drain(); break;
                    case "lost": e.Kind = AvatarEventKind.UtteranceLost; _running.Remove(p.Utt); break;   // (made by clients, not sent)
                    case "interrupted":
                        e.Kind = AvatarEventKind.Interrupted;
                        _running.Remove(p.Utt);
                        Interlocked.Exchange(ref _droppedUtt, p.Utt);
                        Audio.Flush();
                        Video.Flush(p.Utt);
                        Motion.Flush(p.Utt);
                        break;
                    default: e.Kind = AvatarEventKind.SessionClosed; _sessionClosed = true; break;
                }
                Post(e);
                return;
            }
            var st = p as StatePacket;
            if (st != null) DaemonState = st.State;
        }

        /// <summary>Stop the network thread and close the connections (bounded wait).</summary>
        public void Dispose()
        {
            _stop = true;
            _wake.Set();
            Thread th = _thread;
            _thread = null;
            if (th != null && !th.Join(3000))
                PostError("internal", "network thread did not stop within 3 s");
        }
    }
}
