/* Bridge -> page binary framing of the xstreamer OBS page (documented in docs/obs.md).
 *
 *   offset 0   4 bytes   magic "XSB1"
 *   offset 4   f64 BE    wall-clock ms (Unix epoch) when the bridge received the packet from the daemon
 *   offset 12  u32 BE    H = length of the protocol msgpack header
 *   offset 16  H bytes   the media packet's msgpack header (protocol v2, verbatim)
 *   offset 16+H          the packet's payload (PCM16 LE audio, RGB24 or RGBA32 video), possibly empty
 *
 * parseFrame(ArrayBuffer|Uint8Array) -> {publishedMs, header, payload: Uint8Array}; throws Error on bad input.
 * Works as a classic browser script (globalThis.XSFraming) and as a CommonJS module (node tests).
 */
(function (root) {
  'use strict';
  const MAGIC = [0x58, 0x53, 0x42, 0x31]; // "XSB1"
  const PREFIX = 16;

  function msgpack() {
    if (typeof module !== 'undefined' && module.exports) return require('./msgpack.js');
    return root.XSMsgpack;
  }

  function parseFrame(input) {
    const bytes = input instanceof Uint8Array ? input : new Uint8Array(input);
    if (bytes.length < PREFIX) throw new Error('frame: shorter than its 16-byte prefix');
    for (let i = 0; i < 4; i++) {
      if (bytes[i] !== MAGIC[i]) throw new Error('frame: bad magic (not an XSB1 frame)');
    }
    const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    const publishedMs = view.getFloat64(4);
    const headerLen = view.getUint32(12);
    if (PREFIX + headerLen > bytes.length) throw new Error('frame: header length exceeds the frame');
    const header = msgpack().decode(bytes.subarray(PREFIX, PREFIX + headerLen));
    if (header === null || typeof header !== 'object' || Array.isArray(header)) {
      throw new Error('frame: header is not a msgpack map');
    }
    return { publishedMs: publishedMs, header: header, payload: bytes.subarray(PREFIX + headerLen) };
  }

  const COMMON = { v: 'int', session: 'str', utt: 'uint', seq: 'uint', pts: 'uint', type: 'str' };
  const FIELDS = {
    audio: { sample_rate: 'int', samples: 'int' },
    video: { width: 'int', height: 'int', format: ['rgb24', 'rgba32'] },
    motion: { channels: 'int' },
    text: { role: ['assistant', 'user'], text: 'str', final: 'bool' },
    event: { event: ['utterance_start', 'utterance_end', 'interrupted', 'session_closed', 'lost', 'moved'], reason: 'str' },
    state: { state: ['idle', 'thinking', 'speaking', 'closed'], fps: 'num', lead_ms: 'num', model: 'str' },
  };
  const REQUIRED = { text: ['text'], event: ['event'], state: ['state'] };

  function fits(value, rule) {
    if (Array.isArray(rule)) return rule.indexOf(value) >= 0;
    if (rule === 'str') return typeof value === 'string';
    if (rule === 'bool') return typeof value === 'boolean';
    if (rule === 'num') return typeof value === 'number';
    if (rule === 'int') return Number.isInteger(value);
    if (rule === 'uint') return Number.isInteger(value) && value >= 0;
    return false;
  }

  /* Check a media header (protocol v2) like the Python codec does. Returns null when valid, otherwise
   * {code: 'malformed'|'unsupported_version'|'unknown_type', message}. `topic` is checked when given. */
  function validateMedia(h, payloadLen, topic) {
    const bad = (code, message) => ({ code: code, message: message });
    if (h === null || typeof h !== 'object' || Array.isArray(h)) return bad('malformed', 'header is not a map');
    if (!Number.isInteger(h.v)) return bad('malformed', "no integer 'v'");
    if (h.v !== 2) return bad('unsupported_version', 'protocol version ' + h.v);
    const extra = FIELDS[h.type];
    if (!extra) return bad('unknown_type', 'unknown media type ' + h.type);
    for (const k of Object.keys(h)) {
      const rule = COMMON[k] || extra[k];
      if (!rule) return bad('malformed', 'unknown field ' + k);
      if (!fits(h[k], rule)) return bad('malformed', 'bad value for ' + k);
    }
    for (const k of ['session', 'utt', 'seq', 'pts'].concat(REQUIRED[h.type] || [])) {
      if (!(k in h)) return bad('malformed', 'missing field ' + k);
    }
    if (topic !== undefined && topic.indexOf('xs2/') !== 0) return bad('malformed', 'not a v2 media topic');
    let expected = null;
    if (h.type === 'audio') expected = 2 * ('samples' in h ? h.samples : 882);
    if (h.type === 'video') {
      expected = (h.format === 'rgba32' ? 4 : 3) * ('width' in h ? h.width : 256) * ('height' in h ? h.height : 256);
    }
    if (h.type === 'motion') expected = 4 * ('channels' in h ? h.channels : 26);
    if (expected === null && payloadLen > 0) return bad('malformed', h.type + ' packets carry no payload');
    if (expected !== null && payloadLen !== expected) return bad('malformed', 'payload has ' + payloadLen + ' bytes');
    return null;
  }

  const api = { parseFrame: parseFrame, validateMedia: validateMedia, PREFIX: PREFIX };
  if (typeof module !== 'undefined' && module.exports) module.exports = api;
  else root.XSFraming = api;
})(typeof globalThis !== 'undefined' ? globalThis : this);
