// Streaming linear-interpolation resampler (e.g. 22,050 Hz -> AudioSettings.outputSampleRate).
using System;

namespace Xstreamer.Avatar.Core
{
    /// <summary>Where the resampler pulls source samples from, one at a time.</summary>
    public interface ISampleSource
    {
        /// <summary>Next source sample; false on underrun.</summary>
        bool TryPop(out float sample);
    }

    /// <summary>Linear resampler with state kept across calls (no clicks at buffer boundaries).</summary>
    public sealed class LinearResampler
    {
        private readonly double _step;    // source samples per output sample
        private double _frac;             // position between _s0 and _s1, in [0, 1)
        private float _s0, _s1;
        private bool _primed;

        public LinearResampler(int sourceRate, int outputRate)
        {
            if (sourceRate <= 0 || outputRate <= 0) throw new ArgumentOutOfRangeException("rates must be positive");
            SourceRate = sourceRate;
            OutputRate = outputRate;
            _step = (double)sourceRate / outputRate;
        }

        public int SourceRate { get; private set; }
        public int OutputRate { get; private set; }

        /// <summary>Forget the interpolation state (after a flush or a discontinuity).</summary>
        public void Reset() { _frac = 0; _s0 = _s1 = 0; _primed = false; }

        /// <summary>
        /// Writes <paramref name="frames"/> output frames (each sample copied to all <paramref name="channels"/>)
        /// into dst from <paramref name="offset"/>. On underrun the rest is zeros. Returns the number of
        /// frames made from real source data.
        /// </summary>
        public int Process(float[] dst, int offset, int frames, int channels, ISampleSource src)
        {
            int produced = 0;
            for (int i = 0; i < frames; i++)
            {
                if (!_primed)
                {
                    if (!src.TryPop(out _s0) || !src.TryPop(out _s1))
                    {
                        Fill(dst, offset + i * channels, (frames - i) * channels);
                        return produced;
                    }
                    _primed = true;
                }
                float v = _s0 + (float)((_s1 - _s0) * _frac);
                int o = offset + i * channels;
                for (int c = 0; c < channels; c++) dst[o + c] = v;
                produced++;
                _frac += _step;
                while (_frac >= 1.0)
                {
                    _frac -= 1.0;
                    _s0 = _s1;
                    if (!src.TryPop(out _s1))
                    {
                        _primed = false;   // underrun: restart cleanly when data returns
                        _frac = 0;
                        Fill(dst, o + channels, (frames - i - 1) * channels);
                        return produced;
                    }
                }
            }
            return produced;
        }

        private static void Fill(float[] dst, int from, int n) { Array.Clear(dst, from, Math.Max(0, n)); }
    }
}
