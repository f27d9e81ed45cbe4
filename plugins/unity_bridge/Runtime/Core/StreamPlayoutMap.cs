// Pull-ahead compensation for a streamed, looping AudioClip. Unity (FMOD) calls the clip's PCM reader
// callback ahead of playback and buffers what it gets, so the jitter buffer's clock (samples CONSUMED)
// runs ahead of what is heard by that read-ahead. This map remembers, for the last chunks handed to the
// clip, where in the clip they went and the clock after each; given the AudioSource's play position
// (timeSamples, a position in the clip) it returns the pts of the sample PLAYED there. Unity-free.
using System;

namespace Xstreamer.Avatar.Core
{
    /// <summary>Maps a looping stream clip's play position to the audio clock pts of the sample played there.</summary>
    public sealed class StreamPlayoutMap
    {
        private struct Chunk { public int Start, Frames, Produced; public long PtsEnd; }

        private readonly object _lock = new object();
        private readonly Chunk[] _chunks;
        private readonly double _sourcePerFrame;
        private int _newest = -1, _count;
        private int _writePos;

        /// <param name="clipFrames">Length of the looping clip in frames (its samples).</param>
        /// <param name="sourceRate">Clock rate (pts units per second, 22,050).</param>
        /// <param name="outputRate">Clip frequency (frames per second).</param>
        /// <param name="history">Chunks remembered; must cover the stream's read-ahead.</param>
        public StreamPlayoutMap(int clipFrames, int sourceRate, int outputRate, int history = 256)
        {
            if (clipFrames <= 0 || sourceRate <= 0 || outputRate <= 0 || history <= 0) throw new ArgumentOutOfRangeException("clipFrames");
            ClipFrames = clipFrames;
            _sourcePerFrame = (double)sourceRate / outputRate;
            _chunks = new Chunk[history];
        }

        public int ClipFrames { get; private set; }

        /// <summary>Clip position the next chunk will be written to.</summary>
        public int WritePosition { get { lock (_lock) return _writePos; } }

        /// <summary>PCMSetPositionCallback: the next chunk goes to <paramref name="position"/> (loop, seek, Play).</summary>
        public void SetPosition(int position)
        {
            lock (_lock) _writePos = Mod(position);
        }

        /// <summary>
        /// PCM reader callback (audio thread): a chunk of <paramref name="frames"/> frames was written at the
        /// current write position; its first <paramref name="produced"/> frames are real audio (the rest
        /// zeros); <paramref name="ptsAfter"/> is the clock after it (AudioClock.Pts).
        /// </summary>
        public void Record(int frames, int produced, long ptsAfter)
        {
            if (frames <= 0) return;
            lock (_lock)
            {
                _newest = (_newest + 1) % _chunks.Length;
                _chunks[_newest] = new Chunk { Start = _writePos, Frames = frames, Produced = Math.Max(0, Math.Min(produced, frames)), PtsEnd = ptsAfter };
                if (_count < _chunks.Length) _count++;
                _writePos = Mod(_writePos + frames);
            }
        }

        /// <summary>
        /// The clock (pts of the next source sample to be heard) when the clip plays at
        /// <paramref name="clipPosition"/>; -1 when unknown (nothing recorded there, or audio never started).
        /// The newest chunk covering the position wins: the read-ahead is shorter than the clip.
        /// </summary>
        public long PtsAt(int clipPosition)
        {
            int pos = Mod(clipPosition);
            lock (_lock)
            {
                // Playback caught up with the write position: everything written was played.
                if (_count > 0 && pos == _writePos) return _chunks[_newest].PtsEnd;
                for (int i = 0; i < _count; i++)
                {
                    Chunk c = _chunks[(_newest - i + _chunks.Length) % _chunks.Length];
                    int offset = Mod(pos - c.Start);
                    if (offset >= c.Frames) continue;
                    if (c.PtsEnd < 0) return -1;
                    if (offset >= c.Produced) return c.PtsEnd;   // zeros (underrun): the clock stands still
                    return Math.Max(0, c.PtsEnd - (long)Math.Round((c.Produced - offset) * _sourcePerFrame));
                }
                return -1;
            }
        }

        /// <summary>Frames written but not yet played when the clip plays at <paramref name="clipPosition"/>.</summary>
        public int LeadFrames(int clipPosition)
        {
            lock (_lock) return Mod(_writePos - Mod(clipPosition));
        }

        /// <summary>Forget everything (new clip, restart, buffer change).</summary>
        public void Reset()
        {
            lock (_lock) { _newest = -1; _count = 0; _writePos = 0; }
        }

        private int Mod(long x) { long m = x % ClipFrames; return (int)(m < 0 ? m + ClipFrames : m); }
    }
}
