/* Minimal msgpack decoder for the xstreamer OBS page (protocol v2 headers).
 *
 * Decodes the subset protocol v2 headers use: nil, booleans, integers (fixint, uint/int 8..64), float 32/64,
 * str (fix/8/16/32), bin (8/16/32, returned as Uint8Array views), array and map (fix/16/32). Ext types and
 * trailing bytes raise an Error. 64-bit integers beyond 2^53 lose precision (Number), like JSON.
 * Works as a classic browser script (sets globalThis.XSMsgpack) and as a CommonJS module (node tests).
 */
(function (root) {
  'use strict';
  const utf8 = new TextDecoder('utf-8', { fatal: true });

  function decode(input) {
    const bytes = input instanceof Uint8Array ? input : new Uint8Array(input);
    const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    let pos = 0;
    function need(n) {
      if (pos + n > bytes.length) throw new Error('msgpack: truncated input at byte ' + pos);
    }
    function u8() { need(1); return bytes[pos++]; }
    function u16() { need(2); const v = view.getUint16(pos); pos += 2; return v; }
    function u32() { need(4); const v = view.getUint32(pos); pos += 4; return v; }
    function str(n) { need(n); const s = utf8.decode(bytes.subarray(pos, pos + n)); pos += n; return s; }
    function bin(n) { need(n); const b = bytes.subarray(pos, pos + n); pos += n; return b; }
    function arr(n) { const a = new Array(n); for (let i = 0; i < n; i++) a[i] = value(); return a; }
    function map(n) {
      const m = {};
      for (let i = 0; i < n; i++) {
        const k = value();
        if (typeof k !== 'string' && typeof k !== 'number') throw new Error('msgpack: unsupported map key');
        m[k] = value();
      }
      return m;
    }
    function value() {
      const t = u8();
      if (t <= 0x7f) return t;
      if (t >= 0xe0) return t - 0x100;
      if ((t & 0xe0) === 0xa0) return str(t & 0x1f);
      if ((t & 0xf0) === 0x90) return arr(t & 0x0f);
      if ((t & 0xf0) === 0x80) return map(t & 0x0f);
      let v;
      switch (t) {
        case 0xc0: return null;
        case 0xc2: return false;
        case 0xc3: return true;
        case 0xc4: return bin(u8());
        case 0xc5: return bin(u16());
        case 0xc6: return bin(u32());
        case 0xca: need(4); v = view.getFloat32(pos); pos += 4; return v;
        case 0xcb: need(8); v = view.getFloat64(pos); pos += 8; return v;
        case 0xcc: return u8();
        case 0xcd: return u16();
        case 0xce: return u32();
        case 0xcf: need(8); v = view.getBigUint64(pos); pos += 8; return Number(v);
        case 0xd0: need(1); v = view.getInt8(pos); pos += 1; return v;
        case 0xd1: need(2); v = view.getInt16(pos); pos += 2; return v;
        case 0xd2: need(4); v = view.getInt32(pos); pos += 4; return v;
        case 0xd3: need(8); v = view.getBigInt64(pos); pos += 8; return Number(v);
        case 0xd9: return str(u8());
        case 0xda: return str(u16());
        case 0xdb: return str(u32());
        case 0xdc: return arr(u16());
        case 0xdd: return arr(u32());
        case 0xde: return map(u16());
        case 0xdf: return map(u32());
        default: throw new Error('msgpack: unsupported type byte 0x' + t.toString(16));
      }
    }
    const out = value();
    if (pos !== bytes.length) throw new Error('msgpack: ' + (bytes.length - pos) + ' trailing bytes');
    return out;
  }

  const api = { decode: decode };
  if (typeof module !== 'undefined' && module.exports) module.exports = api;
  else root.XSMsgpack = api;
})(typeof globalThis !== 'undefined' ? globalThis : this);
