/* The audible audio clock of the xstreamer OBS page: pure functions, used by player.js, tested by node
 * (tests/js/avclock.test.js).
 *
 * The worklet (audio-worklet.js) renders samples ahead of what the listener hears: the output path adds
 * AudioContext.baseLatency + outputLatency (~40 ms in Chromium). After each render quantum it reports
 *   pts      protocol pts of the next sample it will render
 *   playing  whether it is playing queued samples (false: not started, underrun, flushed)
 *   runFrame, runPts   context frame / pts at which the current run of continuous playback began
 *   playEnd  context frame just after the last queued sample it rendered
 *   frame    context frame at the end of the quantum it just rendered
 * audibleFrame() says which context frame is being heard at a performance.now() instant; ptsAtFrame() maps
 * that frame to the protocol pts the worklet rendered there. Together: the pts the listener hears now.
 * queueByPts() / takeDue() keep what is played out at that clock (video frames, motion packets): a queue sorted
 * by pts, from which the newest item due is taken, once, when the clock reaches it.
 */
(function (root) {
  'use strict';

  /* The context frame heard at performance time `now` (ms), and how it was found.
   *   o.outputTimestamp  AudioContext.getOutputTimestamp() taken now, or null
   *   o.outputLatency, o.baseLatency  seconds (AudioContext fields; 0 / undefined where not supported)
   *   o.reportFrame, o.reportAt       the last worklet report's `frame` and the performance time it arrived
   * With an output timestamp (Chromium, Firefox): the frame the device plays at its performanceTime,
   * extrapolated to `now`. Without one: the report's frame, aged by the time since it arrived (the worklet
   * kept rendering meanwhile), minus the output path's latency. */
  function audibleFrame(now, sampleRate, o) {
    const ts = o.outputTimestamp;
    if (ts && ts.performanceTime > 0 && Number.isFinite(ts.contextTime)) {
      return { frame: (ts.contextTime + (now - ts.performanceTime) / 1000) * sampleRate, source: 'output-timestamp' };
    }
    const ageMs = Math.max(0, now - o.reportAt);
    const latency = (o.outputLatency || 0) + (o.baseLatency || 0);
    return { frame: o.reportFrame + ageMs * sampleRate / 1000 - latency * sampleRate, source: 'output-latency' };
  }

  /* The pts the worklet rendered at context frame `frame`, from its last report `r`. Inside the current run
   * of playback the clock is linear (one pts per frame); before the run began, nothing of it is heard yet
   * (runPts); after playEnd it advances only while the worklet is still playing (a report can be a few ms
   * old), else it stands at the next unplayed sample. */
  function ptsAtFrame(r, frame) {
    if (frame < r.runFrame) return r.runPts;
    const d = frame - r.playEnd;
    if (d >= 0) return r.playing ? r.pts + d : r.pts;
    return Math.max(r.runPts, r.pts + d);
  }

  /* Insert `item` ({pts, ...}) into `queue` (sorted by pts; equal pts keep their arrival order); beyond `max`
   * items the oldest is dropped. Returns how many were dropped (0 or 1). */
  function queueByPts(queue, item, max) {
    let i = queue.length;
    while (i > 0 && queue[i - 1].pts > item.pts) i--;
    queue.splice(i, 0, item);
    if (queue.length > max) { queue.shift(); return 1; }
    return 0;
  }

  /* Take from `queue` (sorted by pts) every item due at `clock` (pts <= clock). The newest of them is the one to
   * show; the older ones were overtaken (the clock passed the next one's pts before they were taken). The newest
   * is `stale` too when the clock has already passed its slot (clock - pts >= slot samples): then nothing is
   * shown. Returns {item: the one to show or null, overtaken: n, stale: 0|1}. */
  function takeDue(queue, clock, slot) {
    let due = -1;
    for (let i = 0; i < queue.length && queue[i].pts <= clock; i++) due = i;
    if (due < 0) return { item: null, overtaken: 0, stale: 0 };
    const item = queue[due];
    queue.splice(0, due + 1);
    if (clock - item.pts >= slot) return { item: null, overtaken: due, stale: 1 };
    return { item: item, overtaken: due, stale: 0 };
  }

  const api = { audibleFrame: audibleFrame, ptsAtFrame: ptsAtFrame, queueByPts: queueByPts, takeDue: takeDue };
  if (typeof module !== 'undefined' && module.exports) module.exports = api;
  else root.XSClock = api;
})(typeof globalThis !== 'undefined' ? globalThis : this);
