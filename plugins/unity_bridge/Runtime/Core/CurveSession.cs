// The client side of CurveZMQ (ZeroMQ RFC 26) as ZMTP-CURVE (RFC 25) carries it: HELLO, WELCOME,
// INITIATE (with the vouch), READY, then MESSAGE boxes both ways. One instance per connection; the
// transient key pair is made for the connection and forgotten with it.
using System;
using System.Security.Cryptography;

namespace Xstreamer.Avatar.Core
{
    internal sealed class CurveSession
    {
        private readonly CurveKeys _keys;
        private readonly byte[] _cnPublic = new byte[32], _cnSecret = new byte[32];   // C', c'
        private byte[] _serverTransient;                                             // S'
        private byte[] _cookie;
        private ulong _nonce = 1;        // our short nonce: HELLO 1, INITIATE 2, MESSAGE 3, ...
        private ulong _peerNonce;        // the server's last short nonce (READY, then MESSAGE)
        private SecretBox _sendBox, _recvBox;   // same key; one per thread (send: caller, receive: reader)
        private readonly byte[] _sendNonce = Prefixed("CurveZMQMESSAGEC"), _recvNonce = Prefixed("CurveZMQMESSAGES");

        public CurveSession(CurveKeys keys)
        {
            _keys = keys;
            using (var rng = RandomNumberGenerator.Create()) rng.GetBytes(_cnSecret);
            Curve25519.ScalarMultBase(_cnPublic, _cnSecret);
        }

        private static byte[] Prefixed(string prefix)
        {
            var n = new byte[24];
            for (int i = 0; i < prefix.Length; i++) n[i] = (byte)prefix[i];
            return n;
        }

        private static void PutBE64(byte[] b, int off, ulong v) { for (int i = 0; i < 8; i++) b[off + i] = (byte)(v >> (56 - 8 * i)); }

        private static ulong BE64(byte[] b, int off)
        {
            ulong v = 0;
            for (int i = 0; i < 8; i++) v = (v << 8) | b[off + i];
            return v;
        }

        private static int Name(byte[] body, string name)
        {
            body[0] = (byte)name.Length;
            for (int i = 0; i < name.Length; i++) body[1 + i] = (byte)name[i];
            return 1 + name.Length;
        }

        /// <summary>HELLO (200 octets): version 1.0, 72 octets of padding, C', short nonce, Box[64 zeros](C'->S).</summary>
        public byte[] Hello()
        {
            var body = new byte[200];
            int p = Name(body, "HELLO");
            body[p++] = 1;
            body[p++] = 0;
            p += 72;
            Buffer.BlockCopy(_cnPublic, 0, body, p, 32);
            p += 32;
            ulong n = _nonce++;
            PutBE64(body, p, n);
            p += 8;
            byte[] nonce = Prefixed("CurveZMQHELLO---");
            PutBE64(nonce, 16, n);
            byte[] box = CryptoBox.Seal(new byte[64], nonce, _keys.ServerPublicKey, _cnSecret);
            Buffer.BlockCopy(box, 0, body, p, 80);
            return body;
        }

        /// <summary>WELCOME data (after its name): long nonce (16) + Box[S' + cookie](S->C') (144). False when it does not open.</summary>
        public bool Welcome(byte[] b, int off, int len)
        {
            if (len != 16 + 144) return false;
            byte[] nonce = Prefixed("WELCOME-");
            Buffer.BlockCopy(b, off, nonce, 8, 16);
            byte[] plain = CryptoBox.Open(b, off + 16, 144, nonce, _keys.ServerPublicKey, _cnSecret);
            if (plain == null) return false;
            _serverTransient = new byte[32];
            Buffer.BlockCopy(plain, 0, _serverTransient, 0, 32);
            _cookie = new byte[96];
            Buffer.BlockCopy(plain, 32, _cookie, 0, 96);
            byte[] key = CryptoBox.SharedKey(_serverTransient, _cnSecret);
            _sendBox = new SecretBox(key);
            _recvBox = new SecretBox(key);
            Array.Clear(key, 0, key.Length);
            return true;
        }

        /// <summary>INITIATE: the cookie, a short nonce, Box[C + vouch + metadata](C'->S'); the vouch is
        /// a long nonce + Box[C' + S](C->S').</summary>
        public byte[] Initiate(byte[] metadata)
        {
            var vouchNonce = Prefixed("VOUCH---");
            var longNonce = new byte[16];
            using (var rng = RandomNumberGenerator.Create()) rng.GetBytes(longNonce);
            Buffer.BlockCopy(longNonce, 0, vouchNonce, 8, 16);
            var vouchPlain = new byte[64];
            Buffer.BlockCopy(_cnPublic, 0, vouchPlain, 0, 32);
            Buffer.BlockCopy(_keys.ServerPublicKey, 0, vouchPlain, 32, 32);
            byte[] vouch = CryptoBox.Seal(vouchPlain, vouchNonce, _serverTransient, _keys.ClientSecretKey);

            var plain = new byte[32 + 16 + 80 + metadata.Length];
            Buffer.BlockCopy(_keys.ClientPublicKey, 0, plain, 0, 32);
            Buffer.BlockCopy(longNonce, 0, plain, 32, 16);
            Buffer.BlockCopy(vouch, 0, plain, 48, 80);
            Buffer.BlockCopy(metadata, 0, plain, 128, metadata.Length);

            ulong n = _nonce++;
            byte[] nonce = Prefixed("CurveZMQINITIATE");
            PutBE64(nonce, 16, n);
            byte[] box = CryptoBox.Seal(plain, nonce, _serverTransient, _cnSecret);

            var body = new byte[9 + 96 + 8 + box.Length];
            int p = Name(body, "INITIATE");
            Buffer.BlockCopy(_cookie, 0, body, p, 96);
            p += 96;
            PutBE64(body, p, n);
            p += 8;
            Buffer.BlockCopy(box, 0, body, p, box.Length);
            return body;
        }

        /// <summary>READY data: short nonce + Box[metadata](S'->C'), opened in place; the metadata's span is returned.</summary>
        public bool Ready(byte[] b, int off, int len, out int metaOff, out int metaLen)
        {
            metaOff = metaLen = 0;
            if (len < 8 + SecretBox.TagBytes) return false;
            byte[] nonce = Prefixed("CurveZMQREADY---");
            Buffer.BlockCopy(b, off, nonce, 16, 8);
            if (!_recvBox.Open(nonce, 0, b, off + 8, len - 8, b, off + 8 + SecretBox.TagBytes)) return false;
            _peerNonce = BE64(b, off);
            metaOff = off + 8 + SecretBox.TagBytes;
            metaLen = len - 8 - SecretBox.TagBytes;
            return true;
        }

        /// <summary>Write a MESSAGE body ([7]"MESSAGE", short nonce, Box[plain](C'->S')) at dst[at]; returns its length.</summary>
        public int SealMessage(byte[] plain, int plainLen, byte[] dst, int at)
        {
            Name(dst, at, "MESSAGE");
            ulong n = _nonce++;
            PutBE64(dst, at + 8, n);
            PutBE64(_sendNonce, 16, n);
            _sendBox.Seal(_sendNonce, 0, plain, 0, plainLen, dst, at + 16);
            return 16 + SecretBox.TagBytes + plainLen;
        }

        private static void Name(byte[] b, int at, string name)
        {
            b[at] = (byte)name.Length;
            for (int i = 0; i < name.Length; i++) b[at + 1 + i] = (byte)name[i];
        }

        /// <summary>Open a MESSAGE body in place (b[0..len)): the plaintext (flags + data) span. False when the
        /// frame is not a MESSAGE, its nonce does not increase, or the box does not verify.</summary>
        public bool OpenMessage(byte[] b, int len, out int plainOff, out int plainLen)
        {
            plainOff = plainLen = 0;
            if (len < 16 + SecretBox.TagBytes + 1 || b[0] != 7 || b[1] != (byte)'M' || b[2] != (byte)'E' || b[3] != (byte)'S' ||
                b[4] != (byte)'S' || b[5] != (byte)'A' || b[6] != (byte)'G' || b[7] != (byte)'E') return false;
            ulong n = BE64(b, 8);
            if (n <= _peerNonce) return false;
            Buffer.BlockCopy(b, 8, _recvNonce, 16, 8);
            if (!_recvBox.Open(_recvNonce, 0, b, 16, len - 16, b, 16 + SecretBox.TagBytes)) return false;
            _peerNonce = n;
            plainOff = 16 + SecretBox.TagBytes;
            plainLen = len - plainOff;
            return true;
        }
    }
}
