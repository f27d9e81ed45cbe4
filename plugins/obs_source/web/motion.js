/* Motion packets on the xstreamer OBS page (protocol v2 `motion`; documented in docs/obs.md, "Motion").
 *
 * A motion-space model sends, with every video frame and the same pts, one `motion` packet: `channels`
 * float32 little-endian values in the order of the session's `opened.motion_channels` (ARKit blendshape weights
 * 0..1, then headYaw / headPitch / headRoll in degrees and headX / headY as a fraction of the face width). The
 * bridge hands the page those names in its `session` control message; the page never declares them itself.
 *
 *   decodeMotion(payload: Uint8Array, names: string[]) -> {name: value, ...}   (throws Error on a size mismatch)
 *   motionDetail(header, payload, names) -> {pts, utt, session, values}       (the xstreamer-motion event detail)
 *
 * player.js queues the decoded packets by pts and dispatches each, when the audible clock reaches it, as
 *   window.dispatchEvent(new CustomEvent('xstreamer-motion', {detail: {pts, utt, session, values}}))
 * Works as a classic browser script (globalThis.XSMotion) and as a CommonJS module (node tests).
 */
(function (root) {
  'use strict';
  const EVENT = 'xstreamer-motion';

  function decodeMotion(payload, names) {
    if (!Array.isArray(names) || names.length === 0) throw new Error('motion: the session named no channels');
    if (!(payload instanceof Uint8Array)) throw new Error('motion: the payload is not bytes');
    if (payload.byteLength !== 4 * names.length) {
      throw new Error('motion: ' + payload.byteLength + ' bytes for ' + names.length + ' channels');
    }
    const view = new DataView(payload.buffer, payload.byteOffset, payload.byteLength);
    const values = {};
    for (let i = 0; i < names.length; i++) values[names[i]] = view.getFloat32(4 * i, true);
    return values;
  }

  function motionDetail(h, payload, names) {
    if (h.channels !== names.length) {
      throw new Error('motion: the packet has ' + h.channels + ' channels, the session names ' + names.length);
    }
    return { pts: h.pts, utt: h.utt, session: h.session, values: decodeMotion(payload, names) };
  }

  const api = { decodeMotion: decodeMotion, motionDetail: motionDetail, EVENT: EVENT };
  if (typeof module !== 'undefined' && module.exports) module.exports = api;
  else root.XSMotion = api;
})(typeof globalThis !== 'undefined' ? globalThis : this);
