// Plays the avatar's voice through an AudioSource. The audio thread pulls resampled samples from the
// core's jitter buffer (zeros on underrun); the samples it consumes advance the audio master clock.
using UnityEngine;
using Xstreamer.Avatar.Core;

namespace Xstreamer.Avatar
{
    /// <summary>Streams the daemon's 22,050 Hz voice into an AudioSource at the output rate.</summary>
    [RequireComponent(typeof(AudioSource))]
    [AddComponentMenu("Xstreamer/Avatar Audio Output")]
    public sealed class AvatarAudioOutput : MonoBehaviour
    {
        /// <summary>FilterRead: OnAudioFilterRead (tightest clock, 2D). StreamingClip: a streamed AudioClip (3D-friendly).</summary>
        public enum Mode { FilterRead, StreamingClip }

        [SerializeField] private AvatarStreamClient client;
        [SerializeField] private Mode mode = Mode.FilterRead;

        private AudioSource _source;
        private volatile AudioJitterBuffer _buffer;
        private int _outputRate;
        private AudioClip _clip;

        /// <summary>Latency between handing samples to Unity and hearing them (DSP buffers), in ms.</summary>
        public float OutputLatencyMs { get; private set; }

        private void Awake()
        {
            _source = GetComponent<AudioSource>();
            if (client == null) client = GetComponentInParent<AvatarStreamClient>();
        }

        private void OnEnable()
        {
            _outputRate = AudioSettings.outputSampleRate;
            int length, count;
            AudioSettings.GetDSPBufferSize(out length, out count);
            OutputLatencyMs = _outputRate > 0 ? 1000f * length * count / _outputRate : 0f;
            AudioSettings.OnAudioConfigurationChanged += OnAudioConfigurationChanged;
            StartSource();
        }

        private void OnDisable()
        {
            AudioSettings.OnAudioConfigurationChanged -= OnAudioConfigurationChanged;
            _buffer = null;
            if (_source != null) _source.Stop();
        }

        private void StartSource()
        {
            // One second of looping clip: FilterRead overwrites it, StreamingClip fills it from the callback.
            bool stream = mode == Mode.StreamingClip;
            _clip = AudioClip.Create("xstreamer-voice", _outputRate, 1, _outputRate, stream, stream ? OnPcmRead : (AudioClip.PCMReaderCallback)null);
            _source.clip = _clip;
            _source.loop = true;
            _source.Play();
        }

        private void OnAudioConfigurationChanged(bool deviceWasChanged)
        {
            _outputRate = AudioSettings.outputSampleRate;
            if (_source != null) { _source.Stop(); StartSource(); }
        }

        private void Update()
        {
            // Main thread: hand the current core's buffer to the audio thread (the core can change on reconnect).
            AvatarStreamCore core = client != null ? client.Core : null;
            AudioJitterBuffer b = core == null ? null : core.Audio;
            if (b != null) b.SetOutputRate(_outputRate);
            _buffer = b;
        }

        private void OnAudioFilterRead(float[] data, int channels)
        {
            if (mode != Mode.FilterRead) return;
            Fill(data, channels);
        }

        private void OnPcmRead(float[] data) { Fill(data, 1); }

        private void Fill(float[] data, int channels)
        {
            AudioJitterBuffer b = _buffer;
            if (b == null) { System.Array.Clear(data, 0, data.Length); return; }
            b.Read(data, 0, data.Length / channels, channels);
        }
    }
}
