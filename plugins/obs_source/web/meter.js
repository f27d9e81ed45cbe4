/* The OBS page's built-in use of motion (URL flag meter=1): a small meter in the bottom-left corner that shows
 * how open the co-host's mouth is (jawOpen, 0..1) and where its head turns (headYaw, degrees; the scale spans
 * +-YAW_RANGE). It is an ordinary listener of the page's 'xstreamer-motion' events, like a streamer's own overlay
 * would be (docs/obs.md, "Motion"), so it moves exactly when the painted frames do. With no event for
 * STALE_MS (between sessions, no motion model) it shows empty bars. State for scripts: window.xstreamerMeter.
 */
(function () {
  'use strict';
  if (new URLSearchParams(location.search).get('meter') !== '1') return;
  const W = 132, H = 40, YAW_RANGE = 30, STALE_MS = 250;
  const canvas = document.createElement('canvas');
  canvas.id = 'meter';
  canvas.width = W; canvas.height = H;
  canvas.style.cssText = 'position:fixed;left:6px;bottom:6px;width:' + W + 'px;height:' + H + 'px;';
  document.body.appendChild(canvas);
  const g = canvas.getContext('2d');
  const state = { events: 0, mouth: null, yaw: null, pts: null, at: 0, shown: false };
  window.xstreamerMeter = state;

  function clamp(v, lo, hi) { return Math.min(hi, Math.max(lo, v)); }

  function draw() {
    g.clearRect(0, 0, W, H);
    g.fillStyle = 'rgba(0, 0, 0, 0.55)';
    g.fillRect(0, 0, W, H);
    g.font = '10px monospace';
    g.fillStyle = '#ddd';
    g.fillText('mouth', 4, 12);
    g.fillText('yaw', 4, 32);
    // mouth: a bar filled by jawOpen
    g.strokeStyle = '#888';
    g.strokeRect(40.5, 4.5, 86, 10);
    if (state.shown && state.mouth !== null) {
      g.fillStyle = '#ff5a7a';
      g.fillRect(41, 5, Math.round(85 * state.mouth), 9);
    }
    // yaw: a scale from -YAW_RANGE to +YAW_RANGE degrees with its centre, and a marker where the head points
    g.beginPath(); g.moveTo(40, 29.5); g.lineTo(126, 29.5); g.moveTo(83.5, 24); g.lineTo(83.5, 35); g.stroke();
    if (state.shown && state.yaw !== null) {
      const x = 83 + Math.round(43 * clamp(state.yaw, -YAW_RANGE, YAW_RANGE) / YAW_RANGE);
      g.fillStyle = '#5ad1ff';
      g.fillRect(x - 2, 23, 5, 13);
    }
  }

  window.addEventListener('xstreamer-motion', (e) => {
    const v = e.detail.values;
    state.events++; state.pts = e.detail.pts; state.at = performance.now(); state.shown = true;
    state.mouth = typeof v.jawOpen === 'number' ? clamp(v.jawOpen, 0, 1) : null;
    state.yaw = typeof v.headYaw === 'number' ? v.headYaw : null;
    draw();
  });
  setInterval(() => {
    if (state.shown && performance.now() - state.at > STALE_MS) { state.shown = false; draw(); }
  }, 100);
  draw();
})();
