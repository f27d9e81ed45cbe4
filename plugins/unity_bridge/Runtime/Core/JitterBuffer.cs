// Audio jitter buffer + playout: the network thread writes PCM16 packets (with pts), the audio thread
// reads resampled float samples. Playback starts once `TargetMs` of audio is buffered (or the
// utterance ended), underruns play zeros and re-buffer, and every source sample actually consumed
// advances the AudioClock (the A/V master clock).
using System;
using System.Collections.Generic;

namespace Xstreamer.Avatar.Core
{
    /// <summary>Thread-safe audio jitter buffer feeding a resampler and driving an <see cref="AudioClock"/>.</summary>
    public sealed class AudioJitterBuffer : ISampleSource
    {
        private struct Segment { public long Pts; public long Utt; public int Count; }

        private readonly object _lock = new object();
        private readonly FloatRingBuffer _ring;
        private readonly Queue<Segment> _segments = new Queue<Segment>();
        private LinearResampler _resampler;
        private long _curPts, _curUtt;
        private int _curRemaining;
        private bool _buffering = true;
        private bool _drainHint;
        private int _targetSamples;

        /// <param name="targetMs">Audio buffered before playback starts (jitter absorption).</param>
        /// <param name="capacitySeconds">Ring capacity; packets that do not fit are dropped (Overflows).</param>
        public AudioJitterBuffer(int targetMs, int outputRate, int capacitySeconds = 60)
        {
            SourceRate = ProtocolV1.SampleRate;
            Clock = new AudioClock(SourceRate);
            _ring = new FloatRingBuffer(SourceRate * capacitySeconds);
            _resampler = new LinearResampler(SourceRate, outputRate);
            TargetMs = targetMs;
        }

        public int SourceRate { get; private set; }
        /// <summary>The master clock driven by this buffer.</summary>
        public AudioClock Clock { get; private set; }
        public int Underruns { get; private set; }
        public int Overflows { get; private set; }
        /// <summary>How many times the buffer was flushed (interrupt, new session): a playout that buffers
        /// audio itself (a streamed AudioClip) restarts when this changes, so the flushed reply stops at once.</summary>
        public int Flushes { get { return System.Threading.Volatile.Read(ref _flushes); } }
        private int _flushes;

        /// <summary>Jitter target in milliseconds (latency preset).</summary>
        public int TargetMs
        {
            get { return (int)((long)_targetSamples * 1000 / SourceRate); }
            set { lock (_lock) _targetSamples = Math.Max(0, value) * SourceRate / 1000; }
        }

        /// <summary>Audio currently buffered, in milliseconds.</summary>
        public double BufferedMs { get { lock (_lock) return _ring.Count * 1000.0 / SourceRate; } }

        /// <summary>True while waiting for the buffer to reach the target.</summary>
        public bool IsBuffering { get { lock (_lock) return _buffering; } }

        /// <summary>Utterance of the sample playing now (0 = idle).</summary>
        public long PlayingUtt { get { lock (_lock) return _curUtt; } }

        /// <summary>Change the output rate (AudioSettings.outputSampleRate may change at runtime).</summary>
        public void SetOutputRate(int outputRate)
        {
            lock (_lock)
                if (_resampler.OutputRate != outputRate) _resampler = new LinearResampler(SourceRate, outputRate);
        }

        /// <summary>Network thread: append one PCM16 LE mono packet. False if it did not fit (dropped).</summary>
        public bool Write(long pts, long utt, byte[] pcm16, int offset, int samples)
        {
            lock (_lock)
            {
                if (_ring.Free < samples) { Overflows++; return false; }
                _ring.WritePcm16(pcm16, offset, samples);
                _segments.Enqueue(new Segment { Pts = pts, Utt = utt, Count = samples });
                return true;
            }
        }

        /// <summary>Let a short tail below the target play out (utterance ended, no more audio coming soon).</summary>
        public void Drain() { lock (_lock) _drainHint = true; }

        /// <summary>Drop everything buffered (interrupt, session change). The clock keeps its last value.</summary>
        public void Flush()
        {
            lock (_lock)
            {
                _ring.Clear();
                _segments.Clear();
                _curRemaining = 0;
                _resampler.Reset();
                _buffering = true;
                _drainHint = false;
                _flushes++;
            }
        }

        /// <summary>
        /// Audio thread: fill <paramref name="frames"/> interleaved frames of <paramref name="channels"/>
        /// channels at the output rate. Zeros while buffering or on underrun. Returns frames of real audio.
        /// </summary>
        public int Read(float[] dst, int offset, int frames, int channels)
        {
            lock (_lock)
            {
                if (_buffering)
                {
                    if (_ring.Count > 0 && (_ring.Count >= _targetSamples || _drainHint)) _buffering = false;
                    else { Array.Clear(dst, offset, frames * channels); return 0; }
                }
                int produced = _resampler.Process(dst, offset, frames, channels, this);
                if (produced < frames)
                {
                    Underruns++;
                    _buffering = true;
                    _drainHint = false;
                }
                return produced;
            }
        }

        /// <summary>ISampleSource, called by the resampler under the lock.</summary>
        bool ISampleSource.TryPop(out float sample)
        {
            if (_curRemaining == 0)
            {
                if (_segments.Count == 0) { sample = 0; return false; }
                Segment s = _segments.Dequeue();
                _curPts = s.Pts; _curUtt = s.Utt; _curRemaining = s.Count;
            }
            if (!_ring.TryPop(out sample)) { _curRemaining = 0; return false; }
            Clock.Played(_curPts - 1);   // the resampler holds one sample of look-ahead
            _curPts++;
            _curRemaining--;
            return true;
        }
    }

    /// <summary>One decoded frame: rows top to bottom, as on the wire; RGB24 (3 bytes a pixel) or RGBA32 (4).</summary>
    public sealed class VideoFrame
    {
        public long Pts, Utt, Seq;
        public int Width, Height;
        /// <summary>3 (rgb24) or 4 (rgba32, straight alpha).</summary>
        public int BytesPerPixel = 3;
        /// <summary>The pixels (Width * Height * BytesPerPixel bytes; a pooled array may be longer).</summary>
        public byte[] Rgb;
    }

    /// <summary>
    /// Frames waiting for their presentation time. The consumer takes the newest frame with pts ≤ the audio
    /// clock; older ones are dropped as late. Holds at most <see cref="Capacity"/> frames (oldest dropped).
    /// Frames are pooled: <see cref="PushCopy"/> copies a payload into a recycled frame, and the frame
    /// <see cref="TakeDue"/> returns stays valid until the next TakeDue (then it is recycled), so a steady
    /// stream allocates nothing.
    /// </summary>
    public sealed class VideoFrameQueue
    {
        private readonly object _lock = new object();
        private readonly List<VideoFrame> _frames = new List<VideoFrame>();
        private readonly Stack<VideoFrame> _pool = new Stack<VideoFrame>();
        private VideoFrame _lent;

        public VideoFrameQueue(int capacity = 250) { Capacity = capacity; }

        public int Capacity { get; private set; }
        public int DroppedLate { get; private set; }
        public int DroppedOverflow { get; private set; }
        public int Count { get { lock (_lock) return _frames.Count; } }
        /// <summary>Frames ever created (the pool's size): stays small when the stream is steady.</summary>
        public int FramesAllocated { get; private set; }

        private void Recycle(VideoFrame f) { if (f != null && _pool.Count < Capacity + 2) _pool.Push(f); }

        /// <summary>Queue a frame the caller made (it joins the pool once it is dropped or replaced).</summary>
        public void Push(VideoFrame f)
        {
            lock (_lock) Insert(f);
        }

        /// <summary>Queue a copy of payload[offset..offset+length) in a pooled frame.</summary>
        public void PushCopy(long pts, long utt, long seq, int width, int height, int bytesPerPixel, byte[] payload, int offset, int length)
        {
            lock (_lock)
            {
                VideoFrame f = _pool.Count > 0 ? _pool.Pop() : null;
                if (f == null) { f = new VideoFrame(); FramesAllocated++; }
                if (f.Rgb == null || f.Rgb.Length != length) f.Rgb = new byte[length];
                Buffer.BlockCopy(payload, offset, f.Rgb, 0, length);
                f.Pts = pts; f.Utt = utt; f.Seq = seq; f.Width = width; f.Height = height; f.BytesPerPixel = bytesPerPixel;
                Insert(f);
            }
        }

        private void Insert(VideoFrame f)
        {
            int i = _frames.Count;
            while (i > 0 && _frames[i - 1].Pts > f.Pts) i--;   // keep pts order
            _frames.Insert(i, f);
            while (_frames.Count > Capacity) { Recycle(_frames[0]); _frames.RemoveAt(0); DroppedOverflow++; }
        }

        /// <summary>Newest frame with pts ≤ clockPts (older ones are dropped); null when none is due. The
        /// frame stays valid until the next TakeDue.</summary>
        public VideoFrame TakeDue(long clockPts)
        {
            lock (_lock)
            {
                int due = -1;
                for (int i = 0; i < _frames.Count && _frames[i].Pts <= clockPts; i++) due = i;
                if (due < 0) return null;
                VideoFrame f = _frames[due];
                DroppedLate += due;
                for (int i = 0; i < due; i++) Recycle(_frames[i]);
                _frames.RemoveRange(0, due + 1);
                Recycle(_lent);
                _lent = f;
                return f;
            }
        }

        /// <summary>Remove all frames (utt &lt; 0) or those of one utterance.</summary>
        public void Flush(long utt = -1)
        {
            lock (_lock)
            {
                for (int i = _frames.Count - 1; i >= 0; i--)
                {
                    if (utt >= 0 && _frames[i].Utt != utt) continue;
                    Recycle(_frames[i]);
                    _frames.RemoveAt(i);
                }
            }
        }
    }
}
