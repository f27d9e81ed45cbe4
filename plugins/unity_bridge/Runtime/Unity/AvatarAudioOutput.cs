// Plays the avatar's voice through an AudioSource. The audio thread pulls resampled samples from the
// core's jitter buffer (a ring buffer; zeros on underrun). Two modes:
//   * FilterRead (default): OnAudioFilterRead writes the samples straight into the mixer's DSP buffer, so
//     the samples consumed are the samples played one DSP buffer later (OutputLatencyMs, which
//     AvatarVideoOutput subtracts). Lowest latency; the source's 3D panning does not shape the voice.
//   * StreamingClip: a looping streamed AudioClip whose PCM reader callback pulls from the ring buffer.
//     Unity reads such a clip AHEAD of playback, so the consumed-samples clock would run early by that
//     read-ahead: ClockPts maps the AudioSource's play position (timeSamples) back to the pts of the sample
//     heard there (StreamPlayoutMap), so the samples actually played define the clock. Works with a 3D
//     Spatial Blend and mixer effects; adds Unity's stream read-ahead (StreamLeadMs) to the latency.
using UnityEngine;
using Xstreamer.Avatar.Core;

namespace Xstreamer.Avatar
{
    /// <summary>Streams the daemon's 22,050 Hz voice into an AudioSource at the output rate.</summary>
    [RequireComponent(typeof(AudioSource))]
    [AddComponentMenu("Xstreamer/Avatar Audio Output")]
    public sealed class AvatarAudioOutput : MonoBehaviour
    {
        /// <summary>FilterRead: OnAudioFilterRead (default; tightest clock, 2D). StreamingClip: a streamed AudioClip (3D-friendly).</summary>
        public enum Mode { FilterRead, StreamingClip }

        /// <summary>Length of the looping streamed clip; must exceed Unity's read-ahead (a fraction of a second).</summary>
        public const int StreamClipSeconds = 4;

        [SerializeField] private AvatarStreamClient client;
        [Tooltip("FilterRead (default): lowest latency, 2D. StreamingClip: a streamed AudioClip that a 3D Spatial Blend and mixer effects apply to.")]
        [SerializeField] private Mode mode = Mode.FilterRead;

        private AudioSource _source;
        private volatile AudioJitterBuffer _buffer;
        private AudioJitterBuffer _lastBuffer;
        private int _lastFlushes;
        private int _outputRate;
        private AudioClip _clip;
        private volatile StreamPlayoutMap _map;

        /// <summary>Latency between handing samples to Unity's mixer and hearing them (DSP buffers), in ms.</summary>
        public float OutputLatencyMs { get; private set; }

        /// <summary>The playout mode (set it in the inspector; changing it at runtime restarts the source).</summary>
        public Mode PlayoutMode
        {
            get { return mode; }
            set { if (mode == value) return; mode = value; if (_source != null && isActiveAndEnabled) { _source.Stop(); StartSource(); } }
        }

        /// <summary>
        /// Main thread: the audio master clock in pts (22,050 Hz), -1 before any audio. FilterRead: the pts
        /// of the next sample handed to the mixer. StreamingClip: the pts of the sample at the AudioSource's
        /// play position (the stream's read-ahead is not counted).
        /// </summary>
        public long ClockPts
        {
            get
            {
                AudioJitterBuffer b = _buffer;
                if (b == null) return -1;
                if (mode != Mode.StreamingClip) return b.Clock.Pts;
                StreamPlayoutMap map = _map;
                return map == null || _source == null ? -1 : map.PtsAt(_source.timeSamples);
            }
        }

        /// <summary>StreamingClip: audio Unity has read from the clip but not yet played, in ms (0 in FilterRead).</summary>
        public float StreamLeadMs
        {
            get
            {
                StreamPlayoutMap map = _map;
                if (mode != Mode.StreamingClip || map == null || _source == null || _outputRate <= 0) return 0f;
                return 1000f * map.LeadFrames(_source.timeSamples) / _outputRate;
            }
        }

        private void Awake()
        {
            _source = GetComponent<AudioSource>();
            if (client == null) client = GetComponentInParent<AvatarStreamClient>();
        }

        private void OnEnable()
        {
            AudioSettings.OnAudioConfigurationChanged += OnAudioConfigurationChanged;
            StartSource();
        }

        private void OnDisable()
        {
            AudioSettings.OnAudioConfigurationChanged -= OnAudioConfigurationChanged;
            _buffer = null;
            _lastBuffer = null;
            if (_source != null) _source.Stop();
        }

        private void StartSource()
        {
            _outputRate = AudioSettings.outputSampleRate;
            int length, count;
            AudioSettings.GetDSPBufferSize(out length, out count);
            OutputLatencyMs = _outputRate > 0 ? 1000f * length * count / _outputRate : 0f;
            if (mode == Mode.StreamingClip)
            {
                int frames = _outputRate * StreamClipSeconds;
                var map = new StreamPlayoutMap(frames, ProtocolV1.SampleRate, _outputRate);
                _map = map;
                _clip = AudioClip.Create("xstreamer-voice", frames, 1, _outputRate, true, OnPcmRead, OnPcmSetPosition);
            }
            else
            {
                // A silent one-second loop keeps the source playing; OnAudioFilterRead overwrites its signal.
                _map = null;
                _clip = AudioClip.Create("xstreamer-voice", _outputRate, 1, _outputRate, false);
            }
            _source.clip = _clip;
            _source.loop = true;
            _source.Play();
        }

        private void OnAudioConfigurationChanged(bool deviceWasChanged)
        {
            if (_source != null) { _source.Stop(); StartSource(); }
        }

        private void Update()
        {
            // Main thread: hand the current core's buffer to the audio thread (the core changes on Connect()).
            AvatarStreamCore core = client != null ? client.Core : null;
            AudioJitterBuffer b = core == null ? null : core.Audio;
            if (b != null) b.SetOutputRate(_outputRate);
            _buffer = b;
            if (mode != Mode.StreamingClip || b == null) { _lastBuffer = b; return; }
            // StreamingClip: Unity holds a read-ahead of samples already pulled from the buffer. After a flush
            // (interrupt, new session) or a buffer change, restart the source so that stale audio is not heard.
            int flushes = b.Flushes;
            if (b == _lastBuffer && flushes == _lastFlushes) return;
            _lastBuffer = b;
            _lastFlushes = flushes;
            _source.Stop();
            StreamPlayoutMap map = _map;
            if (map != null) map.Reset();
            _source.Play();
        }

        private void OnAudioFilterRead(float[] data, int channels)
        {
            if (mode != Mode.FilterRead) return;   // StreamingClip: pass the clip's signal through
            Fill(_buffer, data, channels);
        }

        private void OnPcmRead(float[] data)
        {
            AudioJitterBuffer b = _buffer;
            int produced = Fill(b, data, 1);
            StreamPlayoutMap map = _map;
            if (map != null) map.Record(data.Length, produced, b != null ? b.Clock.Pts : -1);
        }

        private void OnPcmSetPosition(int position)
        {
            StreamPlayoutMap map = _map;
            if (map != null) map.SetPosition(position);
        }

        /// <summary>Audio thread: fill with the voice (zeros when there is none); returns the frames of real audio.</summary>
        private static int Fill(AudioJitterBuffer b, float[] data, int channels)
        {
            if (b == null || channels <= 0) { System.Array.Clear(data, 0, data.Length); return 0; }
            int frames = data.Length / channels;
            int produced = b.Read(data, 0, frames, channels);
            if (frames * channels < data.Length) System.Array.Clear(data, frames * channels, data.Length - frames * channels);
            return produced;
        }
    }
}
