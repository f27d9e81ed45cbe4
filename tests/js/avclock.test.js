// Node tests of the OBS page's audible audio clock (plugins/obs_source/web/avclock.js).
'use strict';
const test = require('node:test');
const assert = require('node:assert/strict');
const path = require('node:path');

const { audibleFrame, ptsAtFrame } = require(path.join(__dirname, '..', '..', 'plugins', 'obs_source', 'web',
  'avclock.js'));
const SR = 22050;

test('output timestamp: the frame the device plays, extrapolated to now', () => {
  const ts = { contextTime: 2.0, performanceTime: 1000 };
  const heard = audibleFrame(1010, SR, { outputTimestamp: ts, outputLatency: 0.5, reportFrame: 0, reportAt: 0 });
  assert.equal(heard.source, 'output-timestamp');
  assert.equal(Math.round(heard.frame), Math.round(2.01 * SR)); // latency fields are ignored: ts is exact
});

test('no output timestamp yet (performanceTime 0): report frame aged, minus base + output latency', () => {
  const heard = audibleFrame(1020, SR, { outputTimestamp: { contextTime: 0, performanceTime: 0 },
    outputLatency: 0.032, baseLatency: 0.010, reportFrame: 44100, reportAt: 1000 });
  assert.equal(heard.source, 'output-latency');
  // 20 ms since the report: +441 frames; 42 ms of output path: -926.1 frames
  assert.ok(Math.abs(heard.frame - (44100 + 441 - 0.042 * SR)) < 1e-6);
});

test('without latency fields (old browsers) the aged report frame is the estimate', () => {
  const heard = audibleFrame(1000, SR, { outputTimestamp: null, reportFrame: 5000, reportAt: 1000 });
  assert.equal(heard.frame, 5000);
});

const playing = { pts: 10000, playing: true, playEnd: 50000, runFrame: 40000, runPts: 0, frame: 50000 };

test('inside a run the clock is linear and lags the rendered pts by the output delay', () => {
  assert.equal(ptsAtFrame(playing, 50000), 10000);
  assert.equal(ptsAtFrame(playing, 50000 - 926), 10000 - 926);
});

test('before the run began nothing of it is heard: the clock stands at the run start', () => {
  assert.equal(ptsAtFrame(playing, 39000), 0);
  assert.equal(ptsAtFrame({ ...playing, runPts: 9500, runFrame: 49500 }, 49000), 9500);
});

test('a report a few ms old is extrapolated while playing, never while stalled', () => {
  assert.equal(ptsAtFrame(playing, 50000 + 256), 10256);
  const stalled = { ...playing, playing: false };
  assert.equal(ptsAtFrame(stalled, 50000 + 256), 10000);
  assert.equal(ptsAtFrame(stalled, 50000 - 100), 9900, 'the tail of the run is still being heard');
});
