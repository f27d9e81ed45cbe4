/* AudioWorklet of the xstreamer OBS page: a ring buffer of the co-host's voice, and the master clock.
 *
 * Messages in (port): {type:'push', pts, samples: Float32Array}  queue samples whose first one has `pts`
 *                     {type:'flush'}                             drop everything queued (interrupt, new session)
 *                     {type:'gain', gain}                        0 mutes (the clock keeps running)
 * Messages out:       {type:'clock', played, pts, buffered, underruns, playing, skipped,
 *                      frame, playEnd, runFrame, runPts}
 *   played = samples actually played out since the start, pts = protocol pts of the next sample to render,
 *   skipped = silent samples dropped to keep the queue short (see drain()). The context frames (the
 *   AudioContext's sample counter, `currentFrame`) let the page find the pts being *heard* (see avclock.js):
 *   frame = end of the last rendered quantum, playEnd = just after the last queued sample rendered,
 *   runFrame / runPts = where the current run of continuous playback began.
 *   Sent every other render quantum while playing, every ~100 ms otherwise.
 * Gaps in pts up to MAX_GAP are filled with silence (they still advance the clock); larger jumps or a pts
 * far behind the queue re-anchor the buffer. Playback starts once `prebuffer` samples are queued or the
 * oldest queued sample has waited that long.
 */
const MAX_GAP_S = 0.5;

class XStreamerPlayer extends AudioWorkletProcessor {
  constructor(options) {
    super();
    const o = (options && options.processorOptions) || {};
    this.cap = Math.max(1024, o.capacity || sampleRate * 30);
    this.buf = new Float32Array(this.cap);
    this.r = 0;
    this.w = 0;
    this.count = 0;
    this.readPts = 0;   // pts of the next sample to play
    this.writePts = 0;  // pts of the next sample to be queued
    this.played = 0;
    this.underruns = 0;
    this.prebuffer = Math.max(128, o.prebuffer || Math.round(sampleRate * 0.1));
    this.highWater = this.prebuffer + Math.max(this.prebuffer, Math.round(sampleRate * 0.1));
    this.skipped = 0;
    this.draining = false;
    this.waited = 0;
    this.playing = false;
    this.gain = 1;
    this.quanta = 0;
    this.frame = 0;     // context frame at the end of the last rendered quantum
    this.playEnd = 0;   // context frame just after the last queued sample rendered
    this.runFrame = 0;  // context frame / pts where the current run of continuous playback began
    this.runPts = 0;
    this.port.onmessage = (e) => this.onMessage(e.data);
  }

  onMessage(m) {
    if (m.type === 'push') this.push(m.pts, m.samples);
    else if (m.type === 'flush') this.flush();
    else if (m.type === 'gain') this.gain = m.gain;
    this.report();
  }

  flush() {
    this.r = this.w = this.count = 0;
    this.playing = false;
    this.waited = 0;
    this.newRun();
  }

  newRun() { // the clock restarts its linear stretch here (start of playback, a skip, a flush)
    this.runFrame = this.playEnd = this.frame;
    this.runPts = this.readPts;
  }

  anchor(pts) {
    this.flush();
    this.readPts = this.writePts = pts;
    this.runPts = pts;
  }

  write(s) {
    let n = s.length;
    if (n > this.cap) { s = s.subarray(n - this.cap); n = this.cap; }
    const overflow = this.count + n - this.cap;
    if (overflow > 0) { // drop the oldest samples
      this.r = (this.r + overflow) % this.cap;
      this.count -= overflow;
      this.readPts += overflow;
    }
    const first = Math.min(n, this.cap - this.w);
    this.buf.set(s.subarray(0, first), this.w);
    if (first < n) this.buf.set(s.subarray(first), 0);
    this.w = (this.w + n) % this.cap;
    this.count += n;
    this.writePts += n;
  }

  push(pts, s) {
    if (this.count === 0) {
      this.anchor(pts);
    } else if (pts > this.writePts) {
      const gap = pts - this.writePts;
      if (gap <= MAX_GAP_S * sampleRate) this.write(new Float32Array(gap));
      else this.anchor(pts);
    } else if (pts < this.writePts) {
      const skip = this.writePts - pts;
      if (skip > sampleRate * 2) this.anchor(pts); // far behind: a new clock (daemon restarted)
      else if (skip >= s.length) return;          // a duplicate
      else s = s.subarray(skip);
    }
    this.write(s);
  }

  report() {
    this.port.postMessage({
      type: 'clock', played: this.played, pts: this.readPts, buffered: this.count,
      underruns: this.underruns, playing: this.playing, skipped: this.skipped,
      frame: this.frame, playEnd: this.playEnd, runFrame: this.runFrame, runPts: this.runPts,
    });
  }

  // Latency control: when bursts left more than highWater queued, drop silent stretches (the daemon's idle
  // audio, pauses) until the queue is back near the prebuffer. Speech is never dropped.
  drain(n) {
    if (this.count > this.highWater) this.draining = true;
    if (this.count <= this.prebuffer + n) this.draining = false;
    let budget = 4, dropped = false;
    while (this.playing && this.draining && budget-- > 0 && this.count > this.prebuffer + n) {
      let i = this.r;
      for (let k = 0; k < n; k++) {
        if (Math.abs(this.buf[i]) > 1e-3) { if (dropped) this.newRun(); return; }
        i = i + 1 === this.cap ? 0 : i + 1;
      }
      this.r = i;
      this.count -= n;
      this.readPts += n;
      this.skipped += n;
      dropped = true;
    }
    if (dropped) this.newRun(); // the pts jumped without time passing
  }

  process(inputs, outputs) {
    const out = outputs[0];
    const ch0 = out[0];
    const n = ch0.length;
    this.frame = currentFrame; // start of this quantum (AudioWorkletGlobalScope)
    this.drain(n);
    if (!this.playing && this.count > 0) {
      this.waited += n;
      if (this.count >= this.prebuffer || this.waited >= this.prebuffer) { this.playing = true; this.newRun(); }
    }
    let k = 0;
    if (this.playing) {
      k = Math.min(n, this.count);
      const g = this.gain;
      for (let i = 0; i < k; i++) {
        ch0[i] = this.buf[this.r] * g;
        this.r = this.r + 1 === this.cap ? 0 : this.r + 1;
      }
      this.count -= k;
      this.readPts += k;
      this.played += k;
      this.playEnd = currentFrame + k;
      if (k < n) { this.playing = false; this.waited = 0; this.underruns++; }
    }
    for (let i = k; i < n; i++) ch0[i] = 0;
    for (let c = 1; c < out.length; c++) out[c].set(ch0);
    this.frame = currentFrame + n;
    this.quanta++;
    if ((this.playing && this.quanta % 2 === 0) || this.quanta % 16 === 0 || (k > 0 && k < n)) this.report();
    return true;
  }
}

registerProcessor('xstreamer-player', XStreamerPlayer);
