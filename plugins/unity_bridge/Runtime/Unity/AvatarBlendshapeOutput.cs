// Drives a SkinnedMeshRenderer's blendshapes from the daemon's motion packets (ARKit-named channels: jawOpen,
// eyeBlinkLeft, ...), so a 3D NPC talks without any video. The channel -> blendshape map is built once per
// session and mesh: names match case-insensitively after the last '.', '/' or ':' (so "blendShape1.jawOpen"
// and "JawOpen" both match jawOpen), with "_L"/"_R" endings read as Left/Right; explicit overrides come
// first. Weights in [0, 1] are scaled to Unity's 0..100. The head pose channels (headYaw/Pitch/Roll in
// degrees, headX/Y in face widths) optionally drive a Transform. Frames are chosen by the audio clock, like
// AvatarVideoOutput, and interpolated between motion frames so the face moves smoothly at any frame rate.
using System;
using System.Collections.Generic;
using UnityEngine;
using Xstreamer.Avatar.Core;

namespace Xstreamer.Avatar
{
    /// <summary>Applies the audio-clock-synchronized motion channels to blendshapes (and a head transform).</summary>
    [AddComponentMenu("Xstreamer/Avatar Blendshape Output")]
    public sealed class AvatarBlendshapeOutput : MonoBehaviour
    {
        /// <summary>Maps one motion channel to a blendshape of another name.</summary>
        [Serializable]
        public struct NameOverride
        {
            [Tooltip("Motion channel, e.g. jawOpen.")] public string channel;
            [Tooltip("Blendshape name on the mesh, e.g. Mouth_Open.")] public string blendShape;
        }

        [SerializeField] private AvatarStreamClient client;
        [Tooltip("Optional: the audio output whose clock (minus its DSP latency) picks the frame.")]
        [SerializeField] private AvatarAudioOutput audioOutput;
        [Tooltip("The face mesh (default: the SkinnedMeshRenderer on this GameObject).")]
        [SerializeField] private SkinnedMeshRenderer target;
        [Tooltip("Blendshape weight for a channel value of 1 (Unity's blendshapes run 0..100).")]
        [SerializeField] private float weightScale = 100f;
        [Tooltip("Channels whose blendshapes have other names on this rig.")]
        [SerializeField] private NameOverride[] overrides = new NameOverride[0];
        [Tooltip("Optional: a head bone or object turned by headYaw/headPitch/headRoll (and moved by headX/headY).")]
        [SerializeField] private Transform head;
        [Tooltip("Multiplies the head angles (0: no head motion).")]
        [SerializeField] private float headRotationScale = 1f;
        [Tooltip("Meters per face width for headX/headY (0: the head is only turned).")]
        [SerializeField] private float headTranslationMeters = 0f;
        [Tooltip("Extra motion delay in ms (positive: later).")]
        [Range(-200f, 200f)] [SerializeField] private float motionOffsetMs = 0f;
        [Tooltip("Blend between motion frames (40 ms apart) by the clock, for smooth motion above 25 fps.")]
        [SerializeField] private bool interpolate = true;

        private string[] _channels;         // the session's motion channel names the map was built for
        private Mesh _mesh;                 // the mesh the map was built for
        private int[] _shapeIndex = new int[0], _shapeChannel = new int[0];   // pairs: blendshape <- channel
        private int _yaw = -1, _pitch = -1, _roll = -1, _x = -1, _y = -1;
        private float[] _values = new float[ProtocolV1.MaxMotionChannels];
        private float[] _next = new float[ProtocolV1.MaxMotionChannels];
        private Quaternion _headRotation;
        private Vector3 _headPosition;
        private bool _headCaptured;

        /// <summary>Blendshapes driven by a channel (after the map was built).</summary>
        public int MappedBlendShapes { get { return _shapeIndex.Length; } }
        /// <summary>pts of the motion frame applied last (-1 before the first).</summary>
        public long AppliedPts { get; private set; }
        public int FramesApplied { get; private set; }

        private void Awake()
        {
            AppliedPts = -1;
            if (client == null) client = GetComponentInParent<AvatarStreamClient>();
            if (audioOutput == null) audioOutput = GetComponentInParent<AvatarAudioOutput>();
            if (target == null) target = GetComponent<SkinnedMeshRenderer>();
        }

        /// <summary>A blendshape or channel name reduced for matching: after the last '.', '/' or ':', "_L"/"_R"
        /// read as Left/Right, then lower case without '_', '-' or spaces.</summary>
        public static string NormalizeName(string name)
        {
            if (string.IsNullOrEmpty(name)) return "";
            int cut = Math.Max(name.LastIndexOf('.'), Math.Max(name.LastIndexOf('/'), name.LastIndexOf(':')));
            // "eyeBlink.L" style: a one-letter tail after the dot is a side, not a name
            if (cut > 0 && cut == name.Length - 2 && (name[cut + 1] == 'L' || name[cut + 1] == 'R' || name[cut + 1] == 'l' || name[cut + 1] == 'r'))
            {
                int before = Math.Max(name.LastIndexOf('.', cut - 1), Math.Max(name.LastIndexOf('/', cut - 1), name.LastIndexOf(':', cut - 1)));
                name = name.Substring(before + 1, cut - before - 1) + "_" + name[cut + 1];
            }
            else if (cut >= 0) name = name.Substring(cut + 1);
            string lower = name.ToLowerInvariant();
            if (lower.EndsWith("_l")) lower = lower.Substring(0, lower.Length - 2) + "left";
            else if (lower.EndsWith("_r")) lower = lower.Substring(0, lower.Length - 2) + "right";
            var sb = new System.Text.StringBuilder(lower.Length);
            foreach (char c in lower) if (c != '_' && c != '-' && c != ' ') sb.Append(c);
            return sb.ToString();
        }

        /// <summary>
        /// Which blendshapes of <paramref name="mesh"/> follow which of <paramref name="channels"/>: pairs
        /// (blendshape index, channel index), overrides first, then names matched by <see cref="NormalizeName"/>.
        /// The head pose channels drive no blendshape.
        /// </summary>
        public static void MapBlendShapes(string[] channels, Mesh mesh, NameOverride[] overrides,
                                          List<int> shapeIndex, List<int> shapeChannel)
        {
            shapeIndex.Clear();
            shapeChannel.Clear();
            var byName = new Dictionary<string, int>();
            for (int c = 0; c < channels.Length; c++)
                if (!IsHeadChannel(channels[c])) byName[NormalizeName(channels[c])] = c;
            int shapes = mesh == null ? 0 : mesh.blendShapeCount;
            for (int i = 0; i < shapes; i++)
            {
                string shape = mesh.GetBlendShapeName(i);
                int c = -1;
                if (overrides != null)
                    foreach (NameOverride o in overrides)
                        if (o.blendShape == shape)
                            for (int k = 0; k < channels.Length; k++) if (channels[k] == o.channel) c = k;
                if (c < 0 && !byName.TryGetValue(NormalizeName(shape), out c)) c = -1;
                if (c < 0) continue;
                shapeIndex.Add(i);
                shapeChannel.Add(c);
            }
        }

        /// <summary>headYaw, headPitch, headRoll, headX, headY.</summary>
        public static bool IsHeadChannel(string name)
        {
            return name == "headYaw" || name == "headPitch" || name == "headRoll" || name == "headX" || name == "headY";
        }

        /// <summary>The face mesh and name overrides (for the inspector's preview of the map).</summary>
        public SkinnedMeshRenderer Target { get { return target; } }
        public NameOverride[] Overrides { get { return overrides; } }

        private void BuildMap(string[] channels, Mesh mesh)
        {
            _channels = channels;
            _mesh = mesh;
            _yaw = Array.IndexOf(channels, "headYaw");
            _pitch = Array.IndexOf(channels, "headPitch");
            _roll = Array.IndexOf(channels, "headRoll");
            _x = Array.IndexOf(channels, "headX");
            _y = Array.IndexOf(channels, "headY");
            var idx = new List<int>();
            var chan = new List<int>();
            MapBlendShapes(channels, mesh, overrides, idx, chan);
            _shapeIndex = idx.ToArray();
            _shapeChannel = chan.ToArray();
        }

        private void LateUpdate()
        {
            AvatarStreamCore core = client != null ? client.Core : null;
            if (core == null) return;
            string[] channels = core.MotionChannels;
            if (channels == null || channels.Length == 0) return;   // this model publishes no motion
            Mesh mesh = target != null ? target.sharedMesh : null;
            if (!ReferenceEquals(channels, _channels) || !ReferenceEquals(mesh, _mesh)) BuildMap(channels, mesh);

            long clock = audioOutput != null ? audioOutput.ClockPts : core.Audio.Clock.Pts;
            if (clock < 0) return;   // nothing played yet: keep the pose
            float delayMs = motionOffsetMs + (audioOutput != null ? audioOutput.OutputLatencyMs : 0f);
            long due = clock - (long)(delayMs * ProtocolV1.SampleRate / 1000f);
            int count;
            long pts;
            if (!core.Motion.TryGetDue(due, _values, out count, out pts)) return;   // starved: hold the pose
            if (interpolate)
            {
                int nextCount;
                long nextPts;
                if (core.Motion.TryGetNext(pts, _next, out nextCount, out nextPts) && nextPts > pts && nextCount == count)
                {
                    float t = Mathf.Clamp01((float)(due - pts) / (nextPts - pts));
                    for (int i = 0; i < count; i++) _values[i] += (_next[i] - _values[i]) * t;
                }
            }
            Apply(count);
            AppliedPts = pts;
            FramesApplied++;
        }

        private void Apply(int count)
        {
            if (target != null)
                for (int k = 0; k < _shapeIndex.Length; k++)
                {
                    int c = _shapeChannel[k];
                    if (c < count) target.SetBlendShapeWeight(_shapeIndex[k], Mathf.Clamp01(_values[c]) * weightScale);
                }
            if (head == null) return;
            if (!_headCaptured)
            {
                _headRotation = head.localRotation;
                _headPosition = head.localPosition;
                _headCaptured = true;
            }
            // Protocol: yaw > 0 turns the face to the viewer's left, pitch > 0 tilts it down, roll > 0 turns
            // it clockwise as the viewer sees it. For a head whose forward (+Z) faces the viewer these are
            // positive rotations about its local Y, X and Z axes; headX/headY (right/down as seen) move it
            // along -X/-Y.
            float yaw = Value(_yaw, count), pitch = Value(_pitch, count), roll = Value(_roll, count);
            head.localRotation = _headRotation * Quaternion.Euler(pitch * headRotationScale, yaw * headRotationScale, roll * headRotationScale);
            if (headTranslationMeters != 0f)
                head.localPosition = _headPosition + new Vector3(-Value(_x, count), -Value(_y, count), 0f) * headTranslationMeters;
        }

        private float Value(int channel, int count) { return channel >= 0 && channel < count ? _values[channel] : 0f; }

        private void OnDisable()
        {
            if (head != null && _headCaptured)
            {
                head.localRotation = _headRotation;
                head.localPosition = _headPosition;
                _headCaptured = false;
            }
        }
    }
}
