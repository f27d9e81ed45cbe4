// The NaCl primitives CurveZMQ needs, in managed C# (no native library): X25519 (RFC 7748), the Salsa20
// core with HSalsa20 and XSalsa20, Poly1305 (RFC 8439 section 2.5) and crypto_box / crypto_secretbox
// (XSalsa20-Poly1305: 16-byte tag, then the ciphertext). Written from the specifications; checked against
// their published vectors and against libsodium in tests/test_unity_crypto.py.
// The secret-dependent steps (the ladder's swaps, the final reduction, the tag comparison) use masks, not
// branches. SecretBox keeps its scratch state, so sealing and opening messages allocates nothing.
using System;

namespace Xstreamer.Avatar.Core
{
    /// <summary>X25519 Diffie-Hellman on Curve25519 (RFC 7748): 32-byte scalars and u-coordinates.</summary>
    public static class Curve25519
    {
        // A field element mod p = 2^255 - 19 is 16 signed limbs of 16 bits (little endian), each held in a
        // long so that sums and products of unreduced limbs never overflow.
        private const int Limbs = 16;

        private static long[] Fe() { return new long[Limbs]; }

        private static void Set(long[] dst, long[] src) { Array.Copy(src, dst, Limbs); }

        /// <summary>Bring each limb back to [0, 2^16), folding the overflow of the top limb back in (2^256 = 38 mod p).</summary>
        private static void Carry(long[] o)
        {
            for (int i = 0; i < Limbs; i++)
            {
                long c = o[i] >> 16;
                o[i] -= c << 16;
                if (i < Limbs - 1) o[i + 1] += c;
                else o[0] += 38 * c;
            }
        }

        private static void Add(long[] o, long[] a, long[] b) { for (int i = 0; i < Limbs; i++) o[i] = a[i] + b[i]; }
        private static void Sub(long[] o, long[] a, long[] b) { for (int i = 0; i < Limbs; i++) o[i] = a[i] - b[i]; }

        [ThreadStatic] private static long[] _product;

        private static void Mul(long[] o, long[] a, long[] b)
        {
            long[] t = _product ?? (_product = new long[2 * Limbs - 1]);
            Array.Clear(t, 0, t.Length);
            for (int i = 0; i < Limbs; i++)
            {
                long ai = a[i];
                for (int j = 0; j < Limbs; j++) t[i + j] += ai * b[j];
            }
            for (int i = 0; i < Limbs - 1; i++) t[i] += 38 * t[i + Limbs];   // limb i+16 weighs 2^256 = 38
            for (int i = 0; i < Limbs; i++) o[i] = t[i];
            Carry(o);
            Carry(o);
        }

        private static void Square(long[] o, long[] a) { Mul(o, a, a); }

        /// <summary>Swap a and b when bit is 1, in constant time.</summary>
        private static void CSwap(long[] a, long[] b, long bit)
        {
            long mask = -bit;
            for (int i = 0; i < Limbs; i++)
            {
                long t = mask & (a[i] ^ b[i]);
                a[i] ^= t;
                b[i] ^= t;
            }
        }

        /// <summary>a^(p-2) = 1/a (Fermat). p - 2 = 2^255 - 21: every exponent bit is set except bits 2 and 4.</summary>
        private static void Invert(long[] o, long[] a)
        {
            long[] c = Fe();
            Set(c, a);
            for (int bit = 253; bit >= 0; bit--)
            {
                Square(c, c);
                if (bit != 2 && bit != 4) Mul(c, c, a);
            }
            Set(o, c);
        }

        private static void Unpack(long[] o, byte[] s)
        {
            for (int i = 0; i < Limbs; i++) o[i] = s[2 * i] | ((long)s[2 * i + 1] << 8);
            o[15] &= 0x7fff;   // RFC 7748: the top bit of a u-coordinate is ignored
        }

        /// <summary>The canonical 32 little-endian bytes of o (fully reduced mod p).</summary>
        private static void Pack(byte[] dst, long[] o)
        {
            long[] t = Fe(), m = Fe();
            Set(t, o);
            Carry(t);
            Carry(t);
            Carry(t);
            for (int pass = 0; pass < 2; pass++)
            {
                // m = t - p, limb by limb with borrow; keep m where no borrow came out of the top limb.
                long borrow = 0;
                for (int i = 0; i < Limbs; i++)
                {
                    long pi = i == 0 ? 0xffed : i == Limbs - 1 ? 0x7fff : 0xffff;
                    long v = t[i] - pi - borrow;
                    borrow = (v >> 16) & 1;
                    m[i] = v & 0xffff;
                }
                long keepT = -borrow;              // all ones when t < p
                for (int i = 0; i < Limbs; i++) t[i] = (t[i] & keepT) | (m[i] & ~keepT);
            }
            for (int i = 0; i < Limbs; i++)
            {
                dst[2 * i] = (byte)t[i];
                dst[2 * i + 1] = (byte)(t[i] >> 8);
            }
        }

        private static readonly long[] A24 = { 0xdb41, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0 };   // 121665

        /// <summary>q = X25519(n, p): the scalar n (clamped) times the u-coordinate p.</summary>
        public static void ScalarMult(byte[] q, byte[] n, byte[] p)
        {
            if (q == null || q.Length < 32 || n == null || n.Length < 32 || p == null || p.Length < 32)
                throw new ArgumentException("X25519 takes 32-byte scalars and points");
            var k = new byte[32];
            Array.Copy(n, k, 32);
            k[0] &= 248;
            k[31] &= 127;
            k[31] |= 64;
            long[] x1 = Fe(), x2 = Fe(), z2 = Fe(), x3 = Fe(), z3 = Fe();
            long[] a = Fe(), aa = Fe(), b = Fe(), bb = Fe(), e = Fe(), c = Fe(), d = Fe(), da = Fe(), cb = Fe();
            Unpack(x1, p);
            x2[0] = 1;
            Set(x3, x1);
            z3[0] = 1;
            long swap = 0;
            for (int t = 254; t >= 0; t--)
            {
                long bit = (k[t >> 3] >> (t & 7)) & 1;
                swap ^= bit;
                CSwap(x2, x3, swap);
                CSwap(z2, z3, swap);
                swap = bit;
                Add(a, x2, z2);
                Square(aa, a);
                Sub(b, x2, z2);
                Square(bb, b);
                Sub(e, aa, bb);
                Add(c, x3, z3);
                Sub(d, x3, z3);
                Mul(da, d, a);
                Mul(cb, c, b);
                Add(x3, da, cb);
                Square(x3, x3);
                Sub(z3, da, cb);
                Square(z3, z3);
                Mul(z3, z3, x1);
                Mul(x2, aa, bb);
                Mul(z2, A24, e);
                Add(z2, z2, aa);
                Mul(z2, z2, e);
            }
            CSwap(x2, x3, swap);
            CSwap(z2, z3, swap);
            Invert(z2, z2);
            Mul(x2, x2, z2);
            Pack(q, x2);
            Array.Clear(k, 0, 32);
        }

        private static readonly byte[] BasePoint = { 9, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0 };

        /// <summary>The public key of secret key n: X25519(n, 9).</summary>
        public static void ScalarMultBase(byte[] q, byte[] n) { ScalarMult(q, n, BasePoint); }
    }

    /// <summary>The Salsa20 core (20 rounds) with the HSalsa20 / XSalsa20 constructions NaCl uses.</summary>
    public static class Salsa20
    {
        // "expand 32-byte k"
        private const uint C0 = 0x61707865, C1 = 0x3320646e, C2 = 0x79622d32, C3 = 0x6b206574;

        private static uint Le32(byte[] b, int o) { return (uint)(b[o] | (b[o + 1] << 8) | (b[o + 2] << 16) | (b[o + 3] << 24)); }

        private static void Put32(byte[] b, int o, uint v)
        {
            b[o] = (byte)v; b[o + 1] = (byte)(v >> 8); b[o + 2] = (byte)(v >> 16); b[o + 3] = (byte)(v >> 24);
        }

        private static uint R(uint v, int c) { return (v << c) | (v >> (32 - c)); }

        /// <summary>Lay out the 16-word input: constants, key (32 bytes), 16 bytes of nonce + counter.</summary>
        private static void Setup(uint[] x, byte[] key, int keyOff, byte[] in16, int inOff)
        {
            x[0] = C0; x[5] = C1; x[10] = C2; x[15] = C3;
            for (int i = 0; i < 4; i++)
            {
                x[1 + i] = Le32(key, keyOff + 4 * i);
                x[11 + i] = Le32(key, keyOff + 16 + 4 * i);
                x[6 + i] = Le32(in16, inOff + 4 * i);
            }
        }

        /// <summary>20 rounds (10 column + row double rounds) of the Salsa20 permutation, in place.</summary>
        private static void Rounds(uint[] x)
        {
            for (int i = 0; i < 10; i++)
            {
                // columns
                x[4] ^= R(x[0] + x[12], 7); x[8] ^= R(x[4] + x[0], 9); x[12] ^= R(x[8] + x[4], 13); x[0] ^= R(x[12] + x[8], 18);
                x[9] ^= R(x[5] + x[1], 7); x[13] ^= R(x[9] + x[5], 9); x[1] ^= R(x[13] + x[9], 13); x[5] ^= R(x[1] + x[13], 18);
                x[14] ^= R(x[10] + x[6], 7); x[2] ^= R(x[14] + x[10], 9); x[6] ^= R(x[2] + x[14], 13); x[10] ^= R(x[6] + x[2], 18);
                x[3] ^= R(x[15] + x[11], 7); x[7] ^= R(x[3] + x[15], 9); x[11] ^= R(x[7] + x[3], 13); x[15] ^= R(x[11] + x[7], 18);
                // rows
                x[1] ^= R(x[0] + x[3], 7); x[2] ^= R(x[1] + x[0], 9); x[3] ^= R(x[2] + x[1], 13); x[0] ^= R(x[3] + x[2], 18);
                x[6] ^= R(x[5] + x[4], 7); x[7] ^= R(x[6] + x[5], 9); x[4] ^= R(x[7] + x[6], 13); x[5] ^= R(x[4] + x[7], 18);
                x[11] ^= R(x[10] + x[9], 7); x[8] ^= R(x[11] + x[10], 9); x[9] ^= R(x[8] + x[11], 13); x[10] ^= R(x[9] + x[8], 18);
                x[12] ^= R(x[15] + x[14], 7); x[13] ^= R(x[12] + x[15], 9); x[14] ^= R(x[13] + x[12], 13); x[15] ^= R(x[14] + x[13], 18);
            }
        }

        /// <summary>HSalsa20: a 32-byte subkey from a 32-byte key and 16 bytes of input.</summary>
        public static void HSalsa20(byte[] out32, byte[] key, byte[] in16, int inOff = 0)
        {
            var x = new uint[16];
            Setup(x, key, 0, in16, inOff);
            Rounds(x);
            int[] pick = { 0, 5, 10, 15, 6, 7, 8, 9 };
            for (int i = 0; i < 8; i++) Put32(out32, 4 * i, x[pick[i]]);
        }

        /// <summary>One 64-byte Salsa20 block of key (32 bytes at keyOff) and nonce+counter (16 bytes).</summary>
        internal static void Block(byte[] out64, uint[] x, uint[] input, byte[] key, int keyOff, byte[] nonceCounter16)
        {
            Setup(input, key, keyOff, nonceCounter16, 0);
            Array.Copy(input, x, 16);
            Rounds(x);
            for (int i = 0; i < 16; i++) Put32(out64, 4 * i, x[i] + input[i]);
        }
    }

    /// <summary>Poly1305 one-time authenticator (RFC 8439 section 2.5), 26-bit limbs.</summary>
    public static class Poly1305
    {
        private static uint Le32(byte[] b, int o) { return (uint)(b[o] | (b[o + 1] << 8) | (b[o + 2] << 16) | (b[o + 3] << 24)); }

        [ThreadStatic] private static byte[] _last;   // the padded final block

        /// <summary>The 16-byte tag of m[off..off+len) under the 32-byte one-time key (r || s).</summary>
        public static void Tag(byte[] tag, int tagOff, byte[] m, int off, int len, byte[] key, int keyOff = 0)
        {
            const uint Mask = 0x3ffffff;
            // r, clamped (the masks include the clamp of RFC 8439), split into 26-bit limbs
            uint r0 = Le32(key, keyOff) & 0x3ffffff;
            uint r1 = (Le32(key, keyOff + 3) >> 2) & 0x3ffff03;
            uint r2 = (Le32(key, keyOff + 6) >> 4) & 0x3ffc0ff;
            uint r3 = (Le32(key, keyOff + 9) >> 6) & 0x3f03fff;
            uint r4 = (Le32(key, keyOff + 12) >> 8) & 0x00fffff;
            uint s1 = r1 * 5, s2 = r2 * 5, s3 = r3 * 5, s4 = r4 * 5;
            uint h0 = 0, h1 = 0, h2 = 0, h3 = 0, h4 = 0;
            byte[] last = _last ?? (_last = new byte[16]);
            int pos = 0;
            while (pos < len)
            {
                byte[] blk = m;
                int bo = off + pos;
                uint hibit = 1u << 24;
                if (len - pos < 16)
                {
                    // the final partial block gets a 1 byte appended, then zeros, and no 2^128 bit
                    Array.Clear(last, 0, 16);
                    Array.Copy(m, off + pos, last, 0, len - pos);
                    last[len - pos] = 1;
                    blk = last;
                    bo = 0;
                    hibit = 0;
                }
                h0 += Le32(blk, bo) & Mask;
                h1 += (Le32(blk, bo + 3) >> 2) & Mask;
                h2 += (Le32(blk, bo + 6) >> 4) & Mask;
                h3 += (Le32(blk, bo + 9) >> 6) & Mask;
                h4 += (Le32(blk, bo + 12) >> 8) | hibit;

                ulong d0 = (ulong)h0 * r0 + (ulong)h1 * s4 + (ulong)h2 * s3 + (ulong)h3 * s2 + (ulong)h4 * s1;
                ulong d1 = (ulong)h0 * r1 + (ulong)h1 * r0 + (ulong)h2 * s4 + (ulong)h3 * s3 + (ulong)h4 * s2;
                ulong d2 = (ulong)h0 * r2 + (ulong)h1 * r1 + (ulong)h2 * r0 + (ulong)h3 * s4 + (ulong)h4 * s3;
                ulong d3 = (ulong)h0 * r3 + (ulong)h1 * r2 + (ulong)h2 * r1 + (ulong)h3 * r0 + (ulong)h4 * s4;
                ulong d4 = (ulong)h0 * r4 + (ulong)h1 * r3 + (ulong)h2 * r2 + (ulong)h3 * r1 + (ulong)h4 * r0;
                ulong c;
                c = d0 >> 26; h0 = (uint)d0 & Mask; d1 += c;
                c = d1 >> 26; h1 = (uint)d1 & Mask; d2 += c;
                c = d2 >> 26; h2 = (uint)d2 & Mask; d3 += c;
                c = d3 >> 26; h3 = (uint)d3 & Mask; d4 += c;
                c = d4 >> 26; h4 = (uint)d4 & Mask;
                h0 += (uint)c * 5;
                h1 += h0 >> 26; h0 &= Mask;
                pos += 16;
            }
            // full carry, then h mod p: subtract p = 2^130 - 5 when h >= p
            uint k;
            k = h1 >> 26; h1 &= Mask; h2 += k;
            k = h2 >> 26; h2 &= Mask; h3 += k;
            k = h3 >> 26; h3 &= Mask; h4 += k;
            k = h4 >> 26; h4 &= Mask; h0 += k * 5;
            k = h0 >> 26; h0 &= Mask; h1 += k;
            uint g0 = h0 + 5; k = g0 >> 26; g0 &= Mask;
            uint g1 = h1 + k; k = g1 >> 26; g1 &= Mask;
            uint g2 = h2 + k; k = g2 >> 26; g2 &= Mask;
            uint g3 = h3 + k; k = g3 >> 26; g3 &= Mask;
            uint g4 = h4 + k - (1u << 26);
            uint useG = (g4 >> 31) - 1;          // all ones when g4 did not go negative (h >= p)
            h0 = (h0 & ~useG) | (g0 & useG);
            h1 = (h1 & ~useG) | (g1 & useG);
            h2 = (h2 & ~useG) | (g2 & useG);
            h3 = (h3 & ~useG) | (g3 & useG);
            h4 = (h4 & ~useG) | (g4 & useG);
            // h (130 bits) as four 32-bit words, + s, mod 2^128
            ulong w0 = (h0 | (h1 << 26)) & 0xffffffffUL;
            ulong w1 = ((h1 >> 6) | (h2 << 20)) & 0xffffffffUL;
            ulong w2 = ((h2 >> 12) | (h3 << 14)) & 0xffffffffUL;
            ulong w3 = ((h3 >> 18) | (h4 << 8)) & 0xffffffffUL;
            ulong f;
            f = w0 + Le32(key, keyOff + 16); Put(tag, tagOff, (uint)f);
            f = w1 + Le32(key, keyOff + 20) + (f >> 32); Put(tag, tagOff + 4, (uint)f);
            f = w2 + Le32(key, keyOff + 24) + (f >> 32); Put(tag, tagOff + 8, (uint)f);
            f = w3 + Le32(key, keyOff + 28) + (f >> 32); Put(tag, tagOff + 12, (uint)f);
        }

        private static void Put(byte[] b, int o, uint v)
        {
            b[o] = (byte)v; b[o + 1] = (byte)(v >> 8); b[o + 2] = (byte)(v >> 16); b[o + 3] = (byte)(v >> 24);
        }
    }

    /// <summary>
    /// crypto_secretbox (XSalsa20-Poly1305) under one 32-byte key: output = 16-byte tag || ciphertext, the
    /// layout CurveZMQ puts on the wire. Reuses its scratch buffers: one instance per thread.
    /// </summary>
    public sealed class SecretBox
    {
        public const int TagBytes = 16, NonceBytes = 24, KeyBytes = 32;

        private readonly byte[] _key = new byte[KeyBytes];
        private readonly byte[] _subkey = new byte[KeyBytes];
        private readonly byte[] _nonceCounter = new byte[16];
        private readonly byte[] _block = new byte[64];
        private readonly byte[] _polyKey = new byte[32];
        private readonly byte[] _tag = new byte[16];
        private readonly uint[] _x = new uint[16], _in = new uint[16];

        public SecretBox(byte[] key)
        {
            if (key == null || key.Length != KeyBytes) throw new ArgumentException("a secretbox key has 32 bytes");
            Array.Copy(key, _key, KeyBytes);
        }

        /// <summary>Derive the XSalsa20 subkey for the nonce and produce block 0 (its first 32 bytes are the Poly1305 key).</summary>
        private void Start(byte[] nonce, int nonceOff)
        {
            var hin = _nonceCounter;   // reuse as the HSalsa20 input
            Array.Copy(nonce, nonceOff, hin, 0, 16);
            HSalsa(hin);
            Array.Clear(_nonceCounter, 0, 16);
            Array.Copy(nonce, nonceOff + 16, _nonceCounter, 0, 8);
            Salsa20.Block(_block, _x, _in, _subkey, 0, _nonceCounter);
            Array.Copy(_block, 0, _polyKey, 0, 32);
        }

        private void HSalsa(byte[] in16)
        {
            // HSalsa20 without its own allocations: run the block function and undo the feed-forward.
            Salsa20.Block(_block, _x, _in, _key, 0, in16);
            int[] pick = HPick;
            for (int i = 0; i < 8; i++)
            {
                uint v = _x[pick[i]];
                _subkey[4 * i] = (byte)v; _subkey[4 * i + 1] = (byte)(v >> 8);
                _subkey[4 * i + 2] = (byte)(v >> 16); _subkey[4 * i + 3] = (byte)(v >> 24);
            }
        }

        private static readonly int[] HPick = { 0, 5, 10, 15, 6, 7, 8, 9 };

        /// <summary>XOR src with the XSalsa20 key stream from byte 32 of block 0 on (NaCl's layout).</summary>
        private void Xor(byte[] src, int srcOff, byte[] dst, int dstOff, int len)
        {
            int done = 0;
            ulong counter = 0;
            int blockPos = 32;   // block 0's first 32 bytes went to Poly1305
            while (done < len)
            {
                if (blockPos == 64)
                {
                    counter++;
                    for (int i = 0; i < 8; i++) _nonceCounter[8 + i] = (byte)(counter >> (8 * i));
                    Salsa20.Block(_block, _x, _in, _subkey, 0, _nonceCounter);
                    blockPos = 0;
                }
                int n = Math.Min(64 - blockPos, len - done);
                for (int i = 0; i < n; i++) dst[dstOff + done + i] = (byte)(src[srcOff + done + i] ^ _block[blockPos + i]);
                done += n;
                blockPos += n;
            }
        }

        /// <summary>Seal m[off..off+len) into output: the tag, then the ciphertext (TagBytes + len bytes at
        /// outOff). The ciphertext may overwrite m in place (outOff + TagBytes == off).</summary>
        public void Seal(byte[] nonce, int nonceOff, byte[] m, int off, int len, byte[] output, int outOff)
        {
            Start(nonce, nonceOff);
            Xor(m, off, output, outOff + TagBytes, len);
            Poly1305.Tag(output, outOff, output, outOff + TagBytes, len, _polyKey);
        }

        /// <summary>Open box[off..off+len) (tag || ciphertext) into output (len - 16 bytes at outOff; may be
        /// box itself at off + 16, in place). False when the tag does not verify (output untouched).</summary>
        public bool Open(byte[] nonce, int nonceOff, byte[] box, int off, int len, byte[] output, int outOff)
        {
            if (len < TagBytes) return false;
            Start(nonce, nonceOff);
            Poly1305.Tag(_tag, 0, box, off + TagBytes, len - TagBytes, _polyKey);
            int diff = 0;
            for (int i = 0; i < TagBytes; i++) diff |= _tag[i] ^ box[off + i];
            if (diff != 0) return false;
            Xor(box, off + TagBytes, output, outOff, len - TagBytes);
            return true;
        }
    }

    /// <summary>crypto_box: X25519 + HSalsa20 key agreement, then a <see cref="SecretBox"/>.</summary>
    public static class CryptoBox
    {
        /// <summary>crypto_box_beforenm: the shared secretbox key of (their public key, our secret key).</summary>
        public static byte[] SharedKey(byte[] publicKey, byte[] secretKey)
        {
            var s = new byte[32];
            Curve25519.ScalarMult(s, secretKey, publicKey);
            var k = new byte[32];
            Salsa20.HSalsa20(k, s, new byte[16]);
            Array.Clear(s, 0, 32);
            return k;
        }

        /// <summary>Box m from secretKey to publicKey: 16-byte tag || ciphertext.</summary>
        public static byte[] Seal(byte[] m, byte[] nonce, byte[] publicKey, byte[] secretKey)
        {
            var output = new byte[m.Length + SecretBox.TagBytes];
            new SecretBox(SharedKey(publicKey, secretKey)).Seal(nonce, 0, m, 0, m.Length, output, 0);
            return output;
        }

        /// <summary>Open a box from publicKey to secretKey; null when it does not verify.</summary>
        public static byte[] Open(byte[] box, int off, int len, byte[] nonce, byte[] publicKey, byte[] secretKey)
        {
            if (len < SecretBox.TagBytes) return null;
            var output = new byte[len - SecretBox.TagBytes];
            return new SecretBox(SharedKey(publicKey, secretKey)).Open(nonce, 0, box, off, len, output, 0) ? output : null;
        }
    }
}
