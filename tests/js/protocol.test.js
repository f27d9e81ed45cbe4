// Node tests (node --test tests/js) of the OBS page's msgpack decoder and bridge framing against the
// protocol v2 golden vectors in tests/vectors (see tests/vectors/README.md).
'use strict';
const test = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const path = require('node:path');

const WEB = path.join(__dirname, '..', '..', 'plugins', 'obs_source', 'web');
const VECTORS = path.join(__dirname, '..', 'vectors');
const { decode } = require(path.join(WEB, 'msgpack.js'));
const { parseFrame, validateMedia } = require(path.join(WEB, 'framing.js'));

const names = JSON.parse(fs.readFileSync(path.join(VECTORS, 'index.json'), 'utf8')).vectors;
const load = (name) => ({
  meta: JSON.parse(fs.readFileSync(path.join(VECTORS, name + '.json'), 'utf8')),
  bytes: new Uint8Array(fs.readFileSync(path.join(VECTORS, name + '.msgpack'))),
});

// JSON's {"$hex": "..."} stands for a msgpack bin value (README); the decoder returns Uint8Array.
function normalise(value) {
  if (value instanceof Uint8Array) return { $hex: Buffer.from(value).toString('hex') };
  if (Array.isArray(value)) return value.map(normalise);
  if (value && typeof value === 'object') {
    const out = {};
    for (const k of Object.keys(value)) out[k] = normalise(value[k]);
    return out;
  }
  return value;
}

test('the vector set is not empty and covers media and server messages', () => {
  assert.ok(names.length >= 20);
  assert.ok(names.some((n) => n.startsWith('media_')));
  assert.ok(names.some((n) => n.startsWith('server_')));
});

for (const name of names) {
  test('msgpack decode: ' + name, () => {
    const { meta, bytes } = load(name);
    assert.equal(Buffer.from(bytes).toString('hex'), meta.header_hex);
    if (meta.header === null) {
      assert.throws(() => decode(bytes), /msgpack/);
      return;
    }
    const got = decode(bytes);
    assert.deepEqual(normalise(got), meta.header);
    if (got && typeof got === 'object' && !Array.isArray(got)) {
      assert.deepEqual(Object.keys(got), Object.keys(meta.header)); // wire order kept
    }
  });
}

for (const name of names.filter((n) => load(n).meta.direction === 'media')) {
  test('media validation: ' + name, () => {
    const { meta, bytes } = load(name);
    const payloadLen = meta.frames === 3 ? meta.payload_len : 0;
    let header;
    try { header = decode(bytes); } catch (err) { header = undefined; }
    const err = header === undefined ? { code: 'malformed' } : validateMedia(header, payloadLen, meta.topic);
    if (meta.valid) assert.equal(err, null);
    else assert.equal(err && err.code, meta.error_code);
  });
}

function frameOf(headerBytes, payload, publishedMs) {
  const buf = new Uint8Array(16 + headerBytes.length + payload.length);
  buf.set([0x58, 0x53, 0x42, 0x31], 0);
  const view = new DataView(buf.buffer);
  view.setFloat64(4, publishedMs);
  view.setUint32(12, headerBytes.length);
  buf.set(headerBytes, 16);
  buf.set(payload, 16 + headerBytes.length);
  return buf;
}

test('parseFrame splits an XSB1 frame into publish time, header and payload', () => {
  const { meta, bytes } = load('media_audio');
  const payload = Uint8Array.from({ length: meta.payload_len }, (_, i) => i % 251);
  const frame = frameOf(bytes, payload, 1764000123456.25);
  const fr = parseFrame(frame.buffer);
  assert.equal(fr.publishedMs, 1764000123456.25);
  assert.deepEqual(normalise(fr.header), meta.header);
  assert.equal(fr.payload.length, meta.payload_len);
  assert.deepEqual(Array.from(fr.payload.subarray(250, 253)), [250, 0, 1]);
  assert.equal(validateMedia(fr.header, fr.payload.length), null);
});

test('parseFrame rejects bad magic, short frames and an overlong header length', () => {
  const { bytes } = load('media_state');
  const good = frameOf(bytes, new Uint8Array(0), 1);
  assert.equal(parseFrame(good).header.type, 'state');
  const badMagic = good.slice(); badMagic[0] = 0x59;
  assert.throws(() => parseFrame(badMagic), /magic/);
  assert.throws(() => parseFrame(good.subarray(0, 10)), /shorter/);
  const long = good.slice(); new DataView(long.buffer).setUint32(12, bytes.length + 1);
  assert.throws(() => parseFrame(long), /exceeds|truncated|trailing/);
});

test('decode handles every integer and float width, bin and nested containers', () => {
  // {"a": [-1, -33, 255, 65535, 4294967295, -129, -32769, 1.5(f32), 0.1(f64)], "b": bin(2), "c": nil}
  const bytes = Uint8Array.from([
    0x83, 0xa1, 0x61, 0x99, 0xff, 0xd0, 0xdf, 0xcc, 0xff, 0xcd, 0xff, 0xff, 0xce, 0xff, 0xff, 0xff, 0xff,
    0xd1, 0xff, 0x7f, 0xd2, 0xff, 0xff, 0x7f, 0xff, 0xca, 0x3f, 0xc0, 0x00, 0x00,
    0xcb, 0x3f, 0xb9, 0x99, 0x99, 0x99, 0x99, 0x99, 0x9a,
    0xa1, 0x62, 0xc4, 0x02, 0x01, 0x02, 0xa1, 0x63, 0xc0,
  ]);
  const got = decode(bytes);
  assert.deepEqual(got.a, [-1, -33, 255, 65535, 4294967295, -129, -32769, 1.5, 0.1]);
  assert.deepEqual(Array.from(got.b), [1, 2]);
  assert.equal(got.c, null);
  assert.throws(() => decode(Uint8Array.from([0xc1])), /unsupported type/);
  assert.throws(() => decode(Uint8Array.from([0x01, 0x02])), /trailing/);
});
