// The master clock: the pts (22,050 Hz source samples) of the audio actually played. Written by the
// audio thread, read by the main thread (video) and anyone else; lock-free.
using System.Threading;

namespace Xstreamer.Avatar.Core
{
    /// <summary>Audio master clock in source-sample pts. Only samples actually played advance it.</summary>
    public sealed class AudioClock
    {
        private long _pts = -1;
        private long _played;
        private int _sampleRate;

        public AudioClock(int sampleRate) { _sampleRate = sampleRate; }

        /// <summary>pts of the next source sample to be played; -1 before the first sample.</summary>
        public long Pts { get { return Interlocked.Read(ref _pts); } }

        /// <summary>Source samples played since creation (underrun zeros are not counted).</summary>
        public long SamplesPlayed { get { return Interlocked.Read(ref _played); } }

        public int SampleRate { get { return _sampleRate; } }

        /// <summary>Clock in seconds (pts / sample rate), or -1 before the first sample.</summary>
        public double Seconds { get { long p = Pts; return p < 0 ? -1 : (double)p / _sampleRate; } }

        /// <summary>Called by the playout when one source sample with pts <paramref name="pts"/> was consumed.</summary>
        internal void Played(long pts) { Interlocked.Exchange(ref _pts, pts + 1); Interlocked.Increment(ref _played); }

        /// <summary>Forget the position (new session).</summary>
        public void Reset() { Interlocked.Exchange(ref _pts, -1); }
    }
}
