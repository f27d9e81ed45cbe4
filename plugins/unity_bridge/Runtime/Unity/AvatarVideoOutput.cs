// Shows the avatar's video: each frame, the newest decoded frame whose pts ≤ the audio clock (the samples
// played, from AvatarAudioOutput.ClockPts, minus the DSP output latency) is uploaded to a Texture2D (RGB24,
// or RGBA32 for a portrait with alpha; rows flipped: Unity textures are bottom-up); late frames are dropped,
// the last frame is held while starved. Targets a RawImage and/or a Renderer's material (URP's _BaseMap,
// HDRP's _BaseColorMap or built-in _MainTex, whichever the material has). Allocates nothing per frame.
using UnityEngine;
using UnityEngine.UI;
using Xstreamer.Avatar.Core;

namespace Xstreamer.Avatar
{
    /// <summary>Uploads audio-clock-synchronized frames to a texture.</summary>
    [AddComponentMenu("Xstreamer/Avatar Video Output")]
    public sealed class AvatarVideoOutput : MonoBehaviour
    {
        [SerializeField] private AvatarStreamClient client;
        [Tooltip("Optional: used to delay video by the audio output latency (DSP buffers).")]
        [SerializeField] private AvatarAudioOutput audioOutput;
        [SerializeField] private RawImage rawImage;
        [SerializeField] private Renderer targetRenderer;
        [Tooltip("Texture property of the renderer's material. Empty: the first the material has of _BaseMap (URP), " +
                 "_BaseColorMap (HDRP), _MainTex (built-in), else its main texture.")]
        [SerializeField] private string textureProperty = "";
        [Tooltip("Extra video delay in ms (positive: video later).")]
        [Range(-200f, 200f)] [SerializeField] private float videoOffsetMs = 0f;

        private Texture2D _texture;
        private byte[] _flipped;
        private int _bpp;

        /// <summary>Where the texture goes on a material: textureProperty if it has it, else the render pipeline's
        /// base map (_BaseMap in URP, _BaseColorMap in HDRP), else _MainTex; null: use material.mainTexture.</summary>
        public static string PickTextureProperty(Material m, string preferred)
        {
            if (m == null) return null;
            if (!string.IsNullOrEmpty(preferred) && m.HasProperty(preferred)) return preferred;
            foreach (string p in PipelineProperties) if (m.HasProperty(p)) return p;
            return null;
        }

        private static readonly string[] PipelineProperties = { "_BaseMap", "_BaseColorMap", "_MainTex" };

        /// <summary>The material property the frames were bound to (null: the material's main texture).</summary>
        public string BoundProperty { get; private set; }

        /// <summary>The texture frames are uploaded to (null before the first frame).</summary>
        public Texture2D Texture { get { return _texture; } }
        public int FramesShown { get; private set; }
        /// <summary>pts of the frame on screen (-1 before the first).</summary>
        public long ShownPts { get; private set; }

        private void Awake()
        {
            ShownPts = -1;
            if (client == null) client = GetComponentInParent<AvatarStreamClient>();
            if (audioOutput == null) audioOutput = GetComponentInParent<AvatarAudioOutput>();
        }

        private void LateUpdate()
        {
            AvatarStreamCore core = client != null ? client.Core : null;
            if (core == null) return;
            // The audio output's clock counts the samples played (StreamingClip: minus Unity's read-ahead).
            long clock = audioOutput != null ? audioOutput.ClockPts : core.Audio.Clock.Pts;
            if (clock < 0) return;   // nothing played yet: keep the last frame
            float delayMs = videoOffsetMs + (audioOutput != null ? audioOutput.OutputLatencyMs : 0f);
            long due = clock - (long)(delayMs * ProtocolV1.SampleRate / 1000f);
            VideoFrame f = core.Video.TakeDue(due);
            if (f == null) return;   // starved: hold the last frame
            Upload(f);
        }

        private void Upload(VideoFrame f)
        {
            if (_texture == null || _texture.width != f.Width || _texture.height != f.Height || _bpp != f.BytesPerPixel)
            {
                if (_texture != null) Destroy(_texture);
                _bpp = f.BytesPerPixel;
                // rgba32 (a portrait with alpha) keeps its alpha: a RawImage or a transparent material shows it
                _texture = new Texture2D(f.Width, f.Height, _bpp == 4 ? TextureFormat.RGBA32 : TextureFormat.RGB24, false);
                _texture.wrapMode = TextureWrapMode.Clamp;
                _texture.filterMode = FilterMode.Bilinear;
                _flipped = new byte[f.Width * f.Height * _bpp];
                if (rawImage != null) rawImage.texture = _texture;
                if (targetRenderer != null)
                {
                    Material m = targetRenderer.material;
                    BoundProperty = PickTextureProperty(m, textureProperty);
                    if (BoundProperty != null) m.SetTexture(BoundProperty, _texture);
                    else m.mainTexture = _texture;
                }
            }
            int row = f.Width * _bpp;
            for (int y = 0; y < f.Height; y++)
                System.Buffer.BlockCopy(f.Rgb, y * row, _flipped, (f.Height - 1 - y) * row, row);
            _texture.LoadRawTextureData(_flipped);
            _texture.Apply(false);
            FramesShown++;
            ShownPts = f.Pts;
        }

        private void OnDestroy()
        {
            if (_texture != null) Destroy(_texture);
        }
    }
}
