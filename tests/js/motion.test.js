// Node tests of the OBS page's motion decoder (plugins/obs_source/web/motion.js) and of the pts queue both motion
// packets and video frames are played out from (avclock.js queueByPts / takeDue).
'use strict';
const test = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const path = require('node:path');

const WEB = path.join(__dirname, '..', '..', 'plugins', 'obs_source', 'web');
const { decodeMotion, motionDetail, EVENT } = require(path.join(WEB, 'motion.js'));
const { queueByPts, takeDue } = require(path.join(WEB, 'avclock.js'));
const { decode } = require(path.join(WEB, 'msgpack.js'));
const { validateMedia } = require(path.join(WEB, 'framing.js'));

// float32 little-endian bytes written by Node's Buffer (independent of the decoder's DataView)
function f32le(values) {
  const buf = Buffer.alloc(4 * values.length);
  values.forEach((v, i) => buf.writeFloatLE(v, 4 * i));
  return new Uint8Array(buf.buffer, buf.byteOffset, buf.length);
}

test('values are named by the session\'s channels, in order, little-endian float32', () => {
  const names = ['jawOpen', 'mouthClose', 'headYaw', 'headX'];
  const values = decodeMotion(f32le([0.75, 0, -12.5, 0.03125]), names);
  assert.deepEqual(Object.keys(values), names);
  assert.deepEqual(values, { jawOpen: 0.75, mouthClose: 0, headYaw: -12.5, headX: 0.03125 });
});

test('a payload inside a larger buffer (a WebSocket frame) is read at its own offset', () => {
  const frame = new Uint8Array(3 + 8);
  frame.set(f32le([0.5, 2]), 3);
  assert.deepEqual(decodeMotion(frame.subarray(3), ['a', 'b']), { a: 0.5, b: 2 });
});

test('the golden motion vector: 26 channels, each value the float32 LE of its 4 bytes', () => {
  const meta = JSON.parse(fs.readFileSync(path.join(__dirname, '..', 'vectors', 'media_motion.json'), 'utf8'));
  const header = decode(new Uint8Array(fs.readFileSync(path.join(__dirname, '..', 'vectors', 'media_motion.msgpack'))));
  const payload = Buffer.from(Array.from({ length: meta.payload_len }, (_, i) => i % 251)); // tests/vectors/README.md
  assert.equal(validateMedia(header, payload.length, meta.topic), null);
  const names = Array.from({ length: header.channels }, (_, i) => 'c' + i);
  const detail = motionDetail(header, new Uint8Array(payload), names);
  assert.equal(detail.pts, meta.header.pts);
  assert.equal(detail.utt, meta.header.utt);
  assert.equal(detail.session, meta.header.session);
  assert.equal(Object.keys(detail.values).length, 26);
  for (let i = 0; i < 26; i++) assert.equal(detail.values['c' + i], payload.readFloatLE(4 * i));
});

test('a packet whose size or channel count does not match the session\'s names is refused', () => {
  const names = ['jawOpen', 'headYaw'];
  assert.throws(() => decodeMotion(f32le([1, 2, 3]), names), /12 bytes for 2 channels/);
  assert.throws(() => decodeMotion(f32le([1]), names), /4 bytes for 2 channels/);
  assert.throws(() => decodeMotion(f32le([]), []), /named no channels/);
  const h = { v: 2, session: 's', utt: 1, seq: 0, pts: 882, type: 'motion', channels: 3 };
  assert.throws(() => motionDetail(h, f32le([1, 2, 3]), names), /3 channels, the session names 2/);
  assert.equal(EVENT, 'xstreamer-motion');
});

test('queueByPts keeps pts order (arrivals out of order included) and drops the oldest beyond its bound', () => {
  const q = [];
  for (const pts of [882, 0, 2646, 1764]) assert.equal(queueByPts(q, { pts: pts }, 10), 0);
  assert.deepEqual(q.map((x) => x.pts), [0, 882, 1764, 2646]);
  assert.equal(queueByPts(q, { pts: 3528 }, 4), 1);
  assert.deepEqual(q.map((x) => x.pts), [882, 1764, 2646, 3528]);
});

test('takeDue: nothing before its pts; the newest due one, once; overtaken and stale ones are dropped', () => {
  const slot = 882;
  const q = [0, 882, 1764, 2646].map((pts) => ({ pts: pts }));
  assert.deepEqual(takeDue(q, -1, slot), { item: null, overtaken: 0, stale: 0 });
  assert.deepEqual(takeDue(q, 100, slot), { item: { pts: 0 }, overtaken: 0, stale: 0 });
  assert.deepEqual(takeDue(q, 100, slot), { item: null, overtaken: 0, stale: 0 }, 'taken once');
  // the clock jumped past 882 and reached 1764: 882 was overtaken, 1764 is shown
  assert.deepEqual(takeDue(q, 1800, slot), { item: { pts: 1764 }, overtaken: 1, stale: 0 });
  // the clock is a whole slot past 2646: too late to show it
  assert.deepEqual(takeDue(q, 2646 + slot, slot), { item: null, overtaken: 0, stale: 1 });
  assert.equal(q.length, 0);
});
