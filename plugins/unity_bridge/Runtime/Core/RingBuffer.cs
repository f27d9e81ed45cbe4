// Fixed-capacity float ring buffer (single producer / single consumer, externally locked).
using System;

namespace Xstreamer.Avatar.Core
{
    /// <summary>FIFO of float samples with a fixed capacity; never allocates after construction.</summary>
    public sealed class FloatRingBuffer
    {
        private readonly float[] _data;
        private int _head;   // next read index
        private int _count;

        public FloatRingBuffer(int capacity)
        {
            if (capacity <= 0) throw new ArgumentOutOfRangeException("capacity");
            _data = new float[capacity];
        }

        public int Capacity { get { return _data.Length; } }
        public int Count { get { return _count; } }
        public int Free { get { return _data.Length - _count; } }

        /// <summary>Appends up to <paramref name="n"/> samples; returns how many fitted.</summary>
        public int Write(float[] src, int offset, int n)
        {
            n = Math.Min(n, Free);
            int tail = (_head + _count) % _data.Length;
            int first = Math.Min(n, _data.Length - tail);
            Array.Copy(src, offset, _data, tail, first);
            if (n > first) Array.Copy(src, offset + first, _data, 0, n - first);
            _count += n;
            return n;
        }

        /// <summary>Appends n PCM16 little-endian samples from src[offset..] as floats in [-1, 1); returns how many fitted.</summary>
        public int WritePcm16(byte[] src, int offset, int n)
        {
            n = Math.Min(n, Free);
            int tail = (_head + _count) % _data.Length;
            for (int i = 0; i < n; i++)
            {
                _data[tail] = (short)(src[offset + 2 * i] | (src[offset + 2 * i + 1] << 8)) / 32768f;
                if (++tail == _data.Length) tail = 0;
            }
            _count += n;
            return n;
        }

        /// <summary>Removes and returns one sample; false when empty.</summary>
        public bool TryPop(out float s)
        {
            if (_count == 0) { s = 0; return false; }
            s = _data[_head];
            _head = (_head + 1) % _data.Length;
            _count--;
            return true;
        }

        /// <summary>Removes up to <paramref name="n"/> samples into dst; returns how many.</summary>
        public int Read(float[] dst, int offset, int n)
        {
            n = Math.Min(n, _count);
            int first = Math.Min(n, _data.Length - _head);
            Array.Copy(_data, _head, dst, offset, first);
            if (n > first) Array.Copy(_data, 0, dst, offset + first, n - first);
            _head = (_head + n) % _data.Length;
            _count -= n;
            return n;
        }

        public void Clear() { _head = 0; _count = 0; }
    }
}
