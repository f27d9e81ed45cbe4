/* xstreamer OBS page: WebSocket client of the bridge, canvas renderer and AudioWorklet player.
 *
 * Audio is the master clock, as heard: the worklet reports the pts it renders (it only advances with samples
 * actually played) and avclock.js turns that into the pts the listener hears now (output latency, age of the
 * report). On each animation frame the newest video frame with pts <= that audible clock is painted; a frame
 * whose 40 ms slot the clock already passed is dropped as late. The canvas is cleared (transparent) when no
 * frame has been due for CLEAR_AFTER_MS, and at once when the bridge connection drops.
 * URL parameters: token=T (the bridge's token, from the URL it printed; sent on the WebSocket), overlay=1
 * (fps / latency / A/V / late overlay), buffer=MS (audio prebuffer, default 100), ws=URL (WebSocket address;
 * default ws://<this host>/ws).
 * Video frames are rgb24 (opaque) or rgba32 (the portrait's alpha): the packet's `format` says which; the canvas
 * and the page are transparent, so with rgba32 only the co-host covers the scene.
 * Motion packets (motion-space models: one per video frame, same pts) are decoded with the session's channel
 * names (motion.js) and played out at the same clock as the frames: when the audible clock reaches a packet's pts
 * the page dispatches window 'xstreamer-motion' (detail {pts, utt, session, values: {jawOpen: .., headYaw: ..}})
 * and keeps it in window.xstreamerMotion; packets overtaken or past their slot are dropped like late frames.
 * In an iframe (an overlay page that embeds this one) each event also goes to the parent as
 * postMessage({type: 'xstreamer-motion', detail}).
 * meter=1 draws a small mouth-open / head-yaw meter from those events (meter.js).
 * Fault injection, for the tests that prove the sync metrics can fail (never set them in OBS):
 * test_video_delay_ms=MS holds every video frame back MS ms after it arrived (a slow video path);
 * test_av_skew_ms=MS paints frames against the audible clock shifted by MS (> 0: video early).
 * Statistics for scripts: window.xstreamerStats (also sent to the bridge once a second, see GET /stats).
 */
(function () {
  'use strict';
  const params = new URLSearchParams(location.search);
  const OVERLAY = params.get('overlay') === '1';
  const PREBUFFER_MS = Math.max(20, Number(params.get('buffer') || 100));
  const TOKEN = params.get('token') || '';
  const WS_URL = (params.get('ws') || ('ws://' + location.host + '/ws')) +
    (TOKEN ? '?token=' + encodeURIComponent(TOKEN) : '');
  const CLEAR_AFTER_MS = 250;
  const STALE_FRAMES = 1;           // a frame whose slot the audio clock has already passed is dropped, not shown
  const MAX_VIDEO_QUEUE = 250;      // 10 s at 25 fps
  const FALLBACK_AFTER_MS = 1500;   // audio context not running by then -> wall-clock fallback
  const VIDEO_ONLY_MS = 300;        // video and no audio packet for this long: the page feeds silence
  const TEST_VIDEO_DELAY_MS = Math.max(0, Number(params.get('test_video_delay_ms') || 0));
  const TEST_AV_SKEW_MS = Number(params.get('test_av_skew_ms') || 0);

  const stats = {
    connected: false, daemonConnected: false, session: null, reconnects: 0, sessions: 0,
    framesReceived: 0, framesPainted: 0, framesSkipped: 0, framesLate: 0, latePerSec: 0, audioPackets: 0,
    audioClockSamples: 0, skippedSamples: 0, clockPts: 0, bufferedMs: 0, underruns: 0, audioState: 'none',
    clockSource: 'none', outputLagMs: null, clockAgeMs: null,
    avOffsetMs: null, avOffsetMaxAbsMs: null, fps: 0, latencyMs: null, latencyAvgMs: null,
    transportMs: null, muted: false, cleared: true, errors: 0, utt: null, uttReceived: null,
    testVideoDelayMs: TEST_VIDEO_DELAY_MS, testAvSkewMs: TEST_AV_SKEW_MS,
    uttPackets: {}, videoFormat: null, paintedPts: null,
    motionChannels: 0, motionReceived: 0, motionDispatched: 0, motionLate: 0, motionPts: null,
  };
  window.xstreamerStats = stats;
  // per painted frame (last TRACE_MAX): published->painted ms, published->received ms, A/V offset ms
  const trace = { latencyMs: [], transportMs: [], avOffsetMs: [] };
  window.xstreamerTrace = trace;
  const TRACE_MAX = 5000;

  const canvas = document.getElementById('stage');
  const ctx = canvas.getContext('2d');
  const overlay = document.getElementById('overlay');
  if (OVERLAY) overlay.style.display = 'block';

  let sr = 22050, spf = 882;
  let ws = null, backoff = 100, everConnected = false, epoch = null;
  let audio = null;           // {ctx, node, gain}
  let audioClock = null;      // last worklet report
  let audioClockAt = 0;       // performance.now() when it arrived
  let fallback = { on: false, anchored: false, pts0: 0, t0: 0, maxPts: 0 };
  let video = [];             // [{pts, utt, publishedMs, rgb}] sorted by pts
  let motion = [];            // [{pts, utt, session, values}] sorted by pts (xstreamer-motion event details)
  let motionNames = [];       // the session's opened.motion_channels (from the bridge's `session` message)
  let motionPts = -1;         // pts of the last dispatched motion packet
  let held = [];              // frames held back by test_video_delay_ms: [{at, frame}]
  let shownPts = -1, lastPaintMs = 0, image = null, lastAudioMs = -1e9;
  const paintTimes = [], latencies = [], offsets = [], lateTimes = [];

  // audio / video packets received per utterance (the last UTT_KEEP utterances), for tests and the overlay
  const UTT_KEEP = 16;
  function countUtt(utt, kind) {
    const per = stats.uttPackets;
    if (!per[utt]) {
      per[utt] = { audio: 0, video: 0 };
      const keys = Object.keys(per).map(Number).sort((a, b) => a - b);
      while (keys.length > UTT_KEEP) delete per[keys.shift()];
    }
    per[utt][kind]++;
  }

  function nowWall() { return performance.timeOrigin + performance.now(); }

  // ---- audio ---------------------------------------------------------------------------------------
  async function startAudio(rate) {
    if (audio && audio.ctx.sampleRate === rate) return;
    if (audio) { try { audio.ctx.close(); } catch (e) { /* already closed */ } }
    audio = null; audioClock = null;
    try {
      const actx = new AudioContext({ sampleRate: rate, latencyHint: 'interactive' });
      await actx.audioWorklet.addModule('audio-worklet.js');
      const node = new AudioWorkletNode(actx, 'xstreamer-player', {
        numberOfInputs: 0, numberOfOutputs: 1, outputChannelCount: [2],
        processorOptions: { prebuffer: Math.round(rate * PREBUFFER_MS / 1000), capacity: rate * 30 },
      });
      node.port.onmessage = (e) => {
        if (e.data.type === 'clock') { audioClock = e.data; audioClockAt = performance.now(); }
      };
      node.connect(actx.destination);
      audio = { ctx: actx, node: node };
      node.port.postMessage({ type: 'gain', gain: stats.muted ? 0 : 1 });
      actx.onstatechange = () => { stats.audioState = actx.state; };
      stats.audioState = actx.state;
      if (actx.state !== 'running') actx.resume().catch(() => {});
      setTimeout(() => {
        if (audio && audio.ctx === actx && actx.state !== 'running') { fallback.on = true; stats.audioState = 'wallclock'; }
      }, FALLBACK_AFTER_MS);
    } catch (err) {
      console.warn('xstreamer: no AudioWorklet, using the wall clock', err);
      fallback.on = true; stats.audioState = 'wallclock'; stats.errors++;
    }
  }
  const resume = () => { if (audio && audio.ctx.state !== 'running') audio.ctx.resume().catch(() => {}); };
  window.addEventListener('click', resume);
  window.addEventListener('keydown', resume);

  function post(msg, transfer) { if (audio) audio.node.port.postMessage(msg, transfer || []); }

  function onAudio(h, payload) {
    stats.audioPackets++;
    countUtt(h.utt, 'audio');
    lastAudioMs = performance.now();
    const n = payload.byteLength >> 1;
    const pcm = new DataView(payload.buffer, payload.byteOffset, n * 2);
    const f = new Float32Array(n);
    for (let i = 0; i < n; i++) f[i] = pcm.getInt16(2 * i, true) / 32768;
    if (fallbackActive()) onAudioClock(h.pts, n);
    post({ type: 'push', pts: h.pts, samples: f }, [f.buffer]);
  }

  function onAudioClock(pts, n) { // wall-clock fallback: the clock runs from the first queued sample on
    const now = performance.now();
    if (!fallback.anchored || fallbackClock(now) >= fallback.maxPts || pts > fallback.maxPts + sr) {
      fallback.anchored = true; fallback.pts0 = pts - Math.round(sr * PREBUFFER_MS / 1000); fallback.t0 = now;
    }
    fallback.maxPts = Math.max(fallback.maxPts, pts + n);
  }

  function fallbackActive() { return fallback.on && !(audio && audio.ctx.state === 'running'); }
  function fallbackClock(now) {
    if (!fallback.anchored) return 0;
    return Math.min(fallback.maxPts, fallback.pts0 + (now - fallback.t0) * sr / 1000);
  }
  // The pts being heard at performance time `now` (see avclock.js); sets stats.clockSource / outputLagMs.
  function audiblePts(now) {
    if (fallbackActive()) { stats.clockSource = 'wallclock'; return fallbackClock(now); }
    if (!audioClock || !audio) { stats.clockSource = 'none'; return 0; }
    const actx = audio.ctx;
    const heard = XSClock.audibleFrame(now, sr, {
      outputTimestamp: actx.getOutputTimestamp ? actx.getOutputTimestamp() : null,
      outputLatency: actx.outputLatency, baseLatency: actx.baseLatency,
      reportFrame: audioClock.frame, reportAt: audioClockAt,
    });
    const rendered = audioClock.frame + (now - audioClockAt) * sr / 1000;
    stats.clockSource = heard.source;
    stats.outputLagMs = Math.round((rendered - heard.frame) * 10000 / sr) / 10;
    stats.clockAgeMs = Math.round((now - audioClockAt) * 10) / 10;
    return XSClock.ptsAtFrame(audioClock, heard.frame);
  }

  function flushAll() {
    video = []; held = []; shownPts = -1; motion = []; motionPts = -1;
    post({ type: 'flush' });
    fallback.anchored = false; fallback.maxPts = 0;
  }

  // ---- video ---------------------------------------------------------------------------------------
  function onVideo(h, payload, publishedMs) {
    stats.framesReceived++;
    stats.uttReceived = h.utt;
    countUtt(h.utt, 'video');
    stats.videoFormat = h.format || 'rgb24';
    if (performance.now() - lastAudioMs > VIDEO_ONLY_MS) {
      // video without voice (an idle animation): silence keeps the audio clock, and so the frames, moving
      const n = spf, f = new Float32Array(n);
      post({ type: 'push', pts: h.pts, samples: f }, [f.buffer]);
      if (fallbackActive()) onAudioClock(h.pts, n);
    }
    const f = { pts: h.pts, utt: h.utt, publishedMs: publishedMs, receivedMs: nowWall(), pixels: payload,
      w: h.width, h: h.height, alpha: h.format === 'rgba32' };
    if (TEST_VIDEO_DELAY_MS > 0) held.push({ at: performance.now() + TEST_VIDEO_DELAY_MS, frame: f });
    else queueFrame(f);
  }

  function queueFrame(f) {
    stats.framesSkipped += XSClock.queueByPts(video, f, MAX_VIDEO_QUEUE);
  }

  // ---- motion --------------------------------------------------------------------------------------
  function onMotion(h, payload) {
    stats.motionReceived++;
    let detail;
    try { detail = XSMotion.motionDetail(h, payload, motionNames); } catch (err) { stats.errors++; return; }
    stats.motionLate += XSClock.queueByPts(motion, detail, MAX_VIDEO_QUEUE);
  }

  function playMotion(clock) {
    const m = XSClock.takeDue(motion, clock, STALE_FRAMES * spf);
    stats.motionLate += m.overtaken + m.stale;
    if (!m.item || m.item.pts === motionPts) return;
    motionPts = m.item.pts;
    stats.motionDispatched++; stats.motionPts = m.item.pts;
    window.xstreamerMotion = m.item;
    window.dispatchEvent(new CustomEvent(XSMotion.EVENT, { detail: m.item }));
    // embedded in an overlay page (an iframe): the same detail to the parent, whatever its origin
    if (window.parent !== window) window.parent.postMessage({ type: XSMotion.EVENT, detail: m.item }, '*');
  }

  function late(count) {
    stats.framesSkipped += count; stats.framesLate += count;
    const now = performance.now();
    for (let i = 0; i < count; i++) lateTimes.push(now);
  }

  function paint(f) {
    if (canvas.width !== f.w || canvas.height !== f.h) { canvas.width = f.w; canvas.height = f.h; image = null; }
    if (!image) image = ctx.createImageData(f.w, f.h);
    const dst = image.data, src = f.pixels, n = f.w * f.h;
    if (f.alpha) {
      dst.set(src.subarray(0, 4 * n));                  // rgba32: straight (not premultiplied) alpha, as ImageData
    } else {
      for (let i = 0, j = 0, k = 0; i < n; i++, j += 4, k += 3) {
        dst[j] = src[k]; dst[j + 1] = src[k + 1]; dst[j + 2] = src[k + 2]; dst[j + 3] = 255;
      }
    }
    ctx.putImageData(image, 0, 0);
  }

  function tick() {
    requestAnimationFrame(tick);
    const now = performance.now();
    while (held.length && held[0].at <= now) queueFrame(held.shift().frame);
    const heard = audiblePts(now);                       // what the listener hears now
    const clock = heard + TEST_AV_SKEW_MS * sr / 1000;   // what frames are painted against
    stats.clockPts = Math.round(heard);
    if (audioClock) {
      stats.audioClockSamples = audioClock.played;
      stats.bufferedMs = Math.round(audioClock.buffered * 1000 / sr);
      stats.underruns = audioClock.underruns;
      stats.skippedSamples = audioClock.skipped;
    }
    // the newest frame due; older due ones were overtaken, and it is late itself once its slot has passed
    const due = XSClock.takeDue(video, clock, STALE_FRAMES * spf);
    if (due.overtaken + due.stale) late(due.overtaken + due.stale);
    if (due.item) {
      const f = due.item;
      if (f.pts !== shownPts) {
        paint(f);
        shownPts = f.pts; lastPaintMs = now; stats.cleared = false; stats.utt = f.utt; stats.paintedPts = f.pts;
        stats.framesPainted++;
        const wall = nowWall();
        stats.latencyMs = Math.round((wall - f.publishedMs) * 10) / 10;
        const off = (f.pts - heard) * 1000 / sr;        // against the audible clock, never the skewed one
        stats.avOffsetMs = Math.round(off * 10) / 10;
        paintTimes.push(now); latencies.push(stats.latencyMs); offsets.push(Math.abs(off));
        if (trace.latencyMs.length >= TRACE_MAX) { trace.latencyMs.shift(); trace.transportMs.shift(); trace.avOffsetMs.shift(); }
        trace.latencyMs.push(wall - f.publishedMs); trace.transportMs.push(f.receivedMs - f.publishedMs);
        trace.avOffsetMs.push(off);
      }
    }
    playMotion(clock);                                    // after the frame of the same pts was painted
    while (paintTimes.length && now - paintTimes[0] > 1000) { paintTimes.shift(); latencies.shift(); offsets.shift(); }
    while (lateTimes.length && now - lateTimes[0] > 1000) lateTimes.shift();
    stats.fps = paintTimes.length;
    stats.latePerSec = lateTimes.length;
    stats.latencyAvgMs = latencies.length ? Math.round(latencies.reduce((a, b) => a + b, 0) / latencies.length) : null;
    stats.avOffsetMaxAbsMs = offsets.length ? Math.round(Math.max.apply(null, offsets) * 10) / 10 : null;
    if (!stats.cleared && now - lastPaintMs > CLEAR_AFTER_MS) {
      ctx.clearRect(0, 0, canvas.width, canvas.height);
      stats.cleared = true;
    }
    if (OVERLAY) {
      overlay.textContent = (stats.connected ? (stats.daemonConnected ? 'live' : 'no daemon') : 'no bridge') +
        '  fps ' + stats.fps + '  latency ' + (stats.latencyAvgMs === null ? '-' : stats.latencyAvgMs + ' ms') +
        '  A/V ' + (stats.avOffsetMs === null ? '-' : stats.avOffsetMs + ' ms') +
        '  late ' + stats.latePerSec + '/s' + (stats.muted ? '  muted' : '');
    }
  }

  // ---- bridge connection ---------------------------------------------------------------------------
  function onControl(m) {
    if (m.type === 'session') {
      stats.daemonConnected = true;
      if (m.session !== stats.session || m.epoch !== epoch) { stats.sessions++; flushAll(); }
      stats.session = m.session; epoch = m.epoch;
      sr = m.sample_rate; spf = Math.round(sr / m.fps);
      motionNames = Array.isArray(m.motion_channels) ? m.motion_channels.slice() : [];
      stats.motionChannels = motionNames.length;
      startAudio(sr);
    } else if (m.type === 'daemon') {
      stats.daemonConnected = !!m.connected;
      if (!m.connected) flushAll();
    } else if (m.type === 'flush') {
      flushAll();
    } else if (m.type === 'mute') {
      stats.muted = !!m.muted;
      post({ type: 'gain', gain: stats.muted ? 0 : 1 });
    }
  }

  function onMedia(buf) {
    let fr;
    try { fr = XSFraming.parseFrame(buf); } catch (err) { stats.errors++; return; }
    const h = fr.header;
    if (XSFraming.validateMedia(h, fr.payload.byteLength) !== null) { stats.errors++; return; }
    stats.transportMs = Math.round((nowWall() - fr.publishedMs) * 10) / 10;
    if (h.type === 'audio') onAudio(h, fr.payload);
    else if (h.type === 'video') onVideo(h, fr.payload, fr.publishedMs);
    else if (h.type === 'motion') onMotion(h, fr.payload);
    else if (h.type === 'event' && (h.event === 'interrupted' || h.event === 'session_closed' || h.event === 'lost')) {
      flushAll();                           // 'lost' (protocol v2): a daemon restart cut the reply off
    }
  }

  function connect() {
    ws = new WebSocket(WS_URL);
    ws.binaryType = 'arraybuffer';
    ws.onopen = () => {
      if (everConnected) stats.reconnects++;
      everConnected = true; stats.connected = true; backoff = 100;
    };
    ws.onmessage = (e) => {
      if (typeof e.data === 'string') { try { onControl(JSON.parse(e.data)); } catch (err) { stats.errors++; } }
      else onMedia(e.data);
    };
    ws.onclose = () => {
      stats.connected = false; stats.daemonConnected = false;
      flushAll();                           // nothing queued outlives the bridge: the canvas goes transparent
      if (!stats.cleared) { ctx.clearRect(0, 0, canvas.width, canvas.height); stats.cleared = true; }
      setTimeout(connect, backoff);
      backoff = Math.min(1000, backoff * 2);
    };
    ws.onerror = () => { /* onclose follows */ };
  }

  setInterval(() => {
    if (ws && ws.readyState === WebSocket.OPEN) ws.send(JSON.stringify({ type: 'stats', stats: stats }));
  }, 1000);
  connect();
  requestAnimationFrame(tick);
})();
