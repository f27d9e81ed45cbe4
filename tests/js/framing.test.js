// Video formats of the page's media validation: rgb24 (opaque) and rgba32 (the portrait's alpha; PLAN.md's
// motion/video decision), each with its own payload size.
'use strict';
const test = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const path = require('node:path');

const { validateMedia } = require(path.join(__dirname, '..', '..', 'plugins', 'obs_source', 'web', 'framing.js'));
// the protocol version the page validates against: that of the golden vectors (tests/vectors)
const V = JSON.parse(fs.readFileSync(path.join(__dirname, '..', 'vectors', 'media_video_rgba512.json'))).header.v;

function video(format, size) {
  const h = { v: V, session: 's1', utt: 1, seq: 0, pts: 0, type: 'video', width: size, height: size };
  if (format !== undefined) h.format = format;
  return h;
}

test('rgb24 frames carry 3 bytes a pixel, rgba32 frames 4', () => {
  assert.equal(validateMedia(video('rgb24', 256), 256 * 256 * 3), null);
  assert.equal(validateMedia(video(undefined, 256), 256 * 256 * 3), null);
  assert.equal(validateMedia(video('rgba32', 512), 512 * 512 * 4), null);
  assert.equal(validateMedia(video('rgba32', 256), 256 * 256 * 3).code, 'malformed');
  assert.equal(validateMedia(video('rgb24', 256), 256 * 256 * 4).code, 'malformed');
});

test('other pixel formats are refused', () => {
  assert.equal(validateMedia(video('bgra32', 256), 256 * 256 * 4).code, 'malformed');
});
