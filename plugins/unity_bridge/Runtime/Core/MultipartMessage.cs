// One multipart message whose frames live in a single reusable byte buffer. The transport fills it and
// the core reads it without copying; both keep reusing the same instances (no allocation per message
// once the buffers have grown to the largest message seen).
using System;
using System.Collections.Generic;

namespace Xstreamer.Avatar.Core
{
    /// <summary>A reusable multipart message: frame i is Buffer[Offset(i) .. Offset(i) + Length(i)).</summary>
    public sealed class MultipartMessage
    {
        private byte[] _buf;
        private int _used;
        private int[] _off = new int[4], _len = new int[4];
        private int _count;

        public MultipartMessage(int capacity = 1024) { _buf = new byte[Math.Max(16, capacity)]; }

        public int Count { get { return _count; } }
        /// <summary>The buffer holding every frame (it may be replaced when a frame grows it).</summary>
        public byte[] Buffer { get { return _buf; } }
        public int Offset(int i) { Check(i); return _off[i]; }
        public int Length(int i) { Check(i); return _len[i]; }
        /// <summary>Bytes of all frames together.</summary>
        public int TotalBytes { get { return _used; } }

        private void Check(int i) { if ((uint)i >= (uint)_count) throw new ArgumentOutOfRangeException("i"); }

        public ArraySegment<byte> Frame(int i) { Check(i); return new ArraySegment<byte>(_buf, _off[i], _len[i]); }

        /// <summary>A copy of frame i.</summary>
        public byte[] ToArray(int i)
        {
            Check(i);
            var b = new byte[_len[i]];
            System.Buffer.BlockCopy(_buf, _off[i], b, 0, b.Length);
            return b;
        }

        /// <summary>Copies of every frame (allocates: for control messages and tools, not the media path).</summary>
        public List<byte[]> ToList()
        {
            var l = new List<byte[]>(_count);
            for (int i = 0; i < _count; i++) l.Add(ToArray(i));
            return l;
        }

        /// <summary>Frame i equals bytes (all of them).</summary>
        public bool FrameEquals(int i, byte[] bytes)
        {
            Check(i);
            if (bytes == null || bytes.Length != _len[i]) return false;
            int o = _off[i];
            for (int k = 0; k < bytes.Length; k++) if (_buf[o + k] != bytes[k]) return false;
            return true;
        }

        public void Clear() { _count = 0; _used = 0; }

        /// <summary>Append a frame of len bytes (contents to be written by the caller at the returned offset).</summary>
        public int AddFrame(int len)
        {
            if (len < 0) throw new ArgumentOutOfRangeException("len");
            if (_used + (long)len > _buf.Length)
            {
                long want = Math.Max((long)_buf.Length * 2, (long)_used + len);
                if (want > int.MaxValue) throw new InvalidOperationException("message too large");
                var nb = new byte[want];
                System.Buffer.BlockCopy(_buf, 0, nb, 0, _used);
                _buf = nb;
            }
            if (_count == _off.Length)
            {
                Array.Resize(ref _off, _count * 2);
                Array.Resize(ref _len, _count * 2);
            }
            int at = _used;
            _off[_count] = at;
            _len[_count] = len;
            _count++;
            _used += len;
            return at;
        }

        /// <summary>Append a copy of src[off..off+len).</summary>
        public void AddFrame(byte[] src, int off, int len)
        {
            int at = AddFrame(len);
            if (len > 0) System.Buffer.BlockCopy(src, off, _buf, at, len);
        }

        /// <summary>Shorten the last frame to len bytes (after it was decrypted in place, say).</summary>
        public void TrimLast(int len)
        {
            if (_count == 0 || len < 0 || len > _len[_count - 1]) throw new ArgumentOutOfRangeException("len");
            _used -= _len[_count - 1] - len;
            _len[_count - 1] = len;
        }

        /// <summary>Replace the contents with copies of frames (for transports that hand out byte arrays).</summary>
        public void CopyFrom(IList<byte[]> frames)
        {
            Clear();
            foreach (byte[] f in frames) AddFrame(f ?? new byte[0], 0, f == null ? 0 : f.Length);
        }
    }
}
