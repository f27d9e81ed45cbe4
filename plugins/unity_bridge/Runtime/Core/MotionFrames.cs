// Motion frames (the facial-animation channels of each video frame: ARKit blendshape weights and the head
// pose) waiting for their presentation time, pooled like the video frames. Unlike video, the newest due
// frame is not taken out: every consumer (several blendshape outputs, e.g. a face and its teeth) reads the
// same frame at the same clock.
using System;
using System.Collections.Generic;

namespace Xstreamer.Avatar.Core
{
    /// <summary>One frame of motion channels (in the order of the session's MotionChannels).</summary>
    public sealed class MotionFrame
    {
        public long Pts, Utt, Seq;
        public int Count;
        public float[] Values;
    }

    /// <summary>Thread-safe, pooled queue of motion frames; read with <see cref="TryGetDue"/>.</summary>
    public sealed class MotionFrameQueue
    {
        private readonly object _lock = new object();
        private readonly List<MotionFrame> _frames = new List<MotionFrame>();
        private readonly Stack<MotionFrame> _pool = new Stack<MotionFrame>();

        public MotionFrameQueue(int capacity = 250) { Capacity = capacity; }

        public int Capacity { get; private set; }
        public int Count { get { lock (_lock) return _frames.Count; } }
        /// <summary>Frames received (pushed) so far.</summary>
        public int Received { get; private set; }

        /// <summary>Network thread: queue channels float32 little-endian values from payload[offset..].</summary>
        public void PushFloat32(long pts, long utt, long seq, byte[] payload, int offset, int channels)
        {
            lock (_lock)
            {
                MotionFrame f = _pool.Count > 0 ? _pool.Pop() : new MotionFrame();
                if (f.Values == null || f.Values.Length < channels) f.Values = new float[channels];
                if (BitConverter.IsLittleEndian) Buffer.BlockCopy(payload, offset, f.Values, 0, channels * 4);
                else
                    for (int i = 0; i < channels; i++)
                    {
                        int o = offset + 4 * i;
                        int bits = payload[o] | (payload[o + 1] << 8) | (payload[o + 2] << 16) | (payload[o + 3] << 24);
                        f.Values[i] = BitConverter.ToSingle(BitConverter.GetBytes(bits), 0);
                    }
                f.Pts = pts; f.Utt = utt; f.Seq = seq; f.Count = channels;
                int k = _frames.Count;
                while (k > 0 && _frames[k - 1].Pts > pts) k--;
                _frames.Insert(k, f);
                while (_frames.Count > Capacity) { _pool.Push(_frames[0]); _frames.RemoveAt(0); }
                Received++;
            }
        }

        /// <summary>
        /// Copy the newest frame with pts ≤ clockPts into dst (up to dst.Length values); older frames are
        /// recycled, the copied one stays for other readers. False when no frame is due yet.
        /// </summary>
        public bool TryGetDue(long clockPts, float[] dst, out int count, out long pts)
        {
            lock (_lock)
            {
                count = 0;
                pts = -1;
                int due = -1;
                for (int i = 0; i < _frames.Count && _frames[i].Pts <= clockPts; i++) due = i;
                if (due < 0) return false;
                for (int i = 0; i < due; i++) _pool.Push(_frames[i]);
                if (due > 0) _frames.RemoveRange(0, due);
                MotionFrame f = _frames[0];
                count = Math.Min(f.Count, dst.Length);
                Array.Copy(f.Values, dst, count);
                pts = f.Pts;
                return true;
            }
        }

        /// <summary>Copy the first frame after afterPts (the one to blend towards); false when none is queued yet.</summary>
        public bool TryGetNext(long afterPts, float[] dst, out int count, out long pts)
        {
            lock (_lock)
            {
                count = 0;
                pts = -1;
                for (int i = 0; i < _frames.Count; i++)
                {
                    MotionFrame f = _frames[i];
                    if (f.Pts <= afterPts) continue;
                    count = Math.Min(f.Count, dst.Length);
                    Array.Copy(f.Values, dst, count);
                    pts = f.Pts;
                    return true;
                }
                return false;
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
                    _pool.Push(_frames[i]);
                    _frames.RemoveAt(i);
                }
            }
        }
    }
}
