// Stand-in of the few UnityEngine / UnityEditor types Runtime/Unity uses, so those files compile with mono's
// mcs outside Unity (a typo cannot ship) and can be DRIVEN by a mono program (Tests~/Programs/UnityComponents.cs).
// Public members keep Unity 2021.3's signatures exactly; add one only when the runtime code needs it.
// The minimal behaviour behind them (components on a GameObject, RequireComponent, Awake/OnEnable/OnDisable
// messages, UnityEvent listeners, Texture2D pixel storage, AudioClip callbacks, AudioSource play state) uses
// internal state. The test-only controls (`StubHarness`) exist only with -define:STUB_HARNESS, so the
// compile check (built without it) fails if runtime code ever touches them.
#pragma warning disable 67, 414, 649
using System;
using System.Collections.Generic;
using System.Reflection;

namespace UnityEngine
{
    /// <summary>Internal state of the stand-in (invisible to the runtime assembly).</summary>
    internal static class StubState
    {
        public static int OutputSampleRate = 48000;
        public static int DspBufferLength = 1024, DspBufferCount = 4;
        public static double DspTime;
        public static string StreamingAssetsPath = "";
        public static readonly List<string> Log = new List<string>();

        public static void Send(object target, string message, params object[] args)
        {
            for (Type t = target.GetType(); t != null && t != typeof(object); t = t.BaseType)
            {
                MethodInfo m = t.GetMethod(message, BindingFlags.Instance | BindingFlags.Public | BindingFlags.NonPublic | BindingFlags.DeclaredOnly);
                if (m == null) continue;
                try { m.Invoke(target, args); }
                catch (TargetInvocationException e) { throw new Exception(message + " of " + target.GetType().Name + " threw", e.InnerException); }
                return;
            }
        }
    }

    public class Object
    {
        internal bool destroyed;
        public string name { get; set; }
        public static void Destroy(Object obj)
        {
            if (ReferenceEquals(obj, null) || obj.destroyed) return;
            var b = obj as Behaviour;
            if (b != null && b.enabled && b.awake) StubState.Send(b, "OnDisable");
            obj.destroyed = true;
            if (obj is Component) StubState.Send(obj, "OnDestroy");
        }
        public static implicit operator bool(Object o) { return !ReferenceEquals(o, null) && !o.destroyed; }
        public static T FindObjectOfType<T>() where T : Object { return null; }
    }

    public class Component : Object
    {
        internal GameObject go;
        public GameObject gameObject { get { return go; } }
        public Transform transform { get { return go == null ? null : go.transform; } }
        public T GetComponent<T>() { return go == null ? default(T) : go.GetComponent<T>(); }
        // No transform hierarchy in the stand-in: the parent chain is the object itself.
        public T GetComponentInParent<T>() { return GetComponent<T>(); }
    }

    public class Behaviour : Component
    {
        private bool _enabled = true;
        internal bool awake;
        public bool enabled
        {
            get { return _enabled; }
            set
            {
                if (_enabled == value) return;
                _enabled = value;
                if (awake && !destroyed) StubState.Send(this, value ? "OnEnable" : "OnDisable");
            }
        }
        public bool isActiveAndEnabled { get { return _enabled && awake && !destroyed; } }
    }

    public class MonoBehaviour : Behaviour { }

    public sealed class GameObject : Object
    {
        private readonly List<Component> _components = new List<Component>();
        private Transform _transform;
        public GameObject() { }
        public GameObject(string name) { this.name = name; }
        public GameObject(string name, params Type[] components) { this.name = name; foreach (Type t in components) Add(t, null); }
        public T GetComponentInChildren<T>() { return GetComponent<T>(); }
        public Transform transform
        {
            get
            {
                if (_transform == null) { _transform = new Transform(); _transform.go = this; _components.Add(_transform); }
                return _transform;
            }
        }

        /// <summary>Adds T (and what its [RequireComponent]s name first), then sends Awake and OnEnable.</summary>
        public T AddComponent<T>() where T : Component { return (T)Add(typeof(T), null); }

        internal Component Add(Type t, Action<Component> beforeAwake)
        {
            foreach (RequireComponent r in t.GetCustomAttributes(typeof(RequireComponent), true))
            {
                bool have = false;
                foreach (Component c in _components) if (r.type.IsInstanceOfType(c)) have = true;
                if (!have) Add(r.type, null);
            }
            var comp = (Component)Activator.CreateInstance(t, true);
            comp.go = this;
            _components.Add(comp);
            if (beforeAwake != null) beforeAwake(comp);   // what Unity's deserialisation does before Awake
            var b = comp as Behaviour;
            if (b != null) b.awake = true;
            StubState.Send(comp, "Awake");
            if (b != null && b.enabled) StubState.Send(comp, "OnEnable");
            return comp;
        }

        public T GetComponent<T>()
        {
            foreach (Component c in _components) if (c is T && !c.destroyed) return (T)(object)c;
            return default(T);
        }
    }

    public class TextAsset : Object
    {
        internal byte[] data = new byte[0];
        public byte[] bytes { get { return data; } }
        public string text { get { return System.Text.Encoding.UTF8.GetString(data); } }
    }

    public class Texture : Object
    {
        public virtual int width { get { return 0; } set { } }
        public virtual int height { get { return 0; } set { } }
        public TextureWrapMode wrapMode { get; set; }
        public FilterMode filterMode { get; set; }
    }

    public enum TextureFormat { Alpha8 = 1, RGB24 = 3, RGBA32 = 4 }
    public enum TextureWrapMode { Repeat, Clamp, Mirror, MirrorOnce }
    public enum FilterMode { Point, Bilinear, Trilinear }

    public sealed class Texture2D : Texture
    {
        private readonly int _w, _h;
        private readonly TextureFormat _format;
        internal byte[] raw;
        internal int applied;
        public Texture2D(int width, int height, TextureFormat textureFormat, bool mipChain)
        {
            _w = width; _h = height; _format = textureFormat;
            raw = new byte[width * height * (textureFormat == TextureFormat.RGB24 ? 3 : textureFormat == TextureFormat.RGBA32 ? 4 : 1)];
        }
        public override int width { get { return _w; } set { } }
        public override int height { get { return _h; } set { } }
        public TextureFormat format { get { return _format; } }
        public void LoadRawTextureData(byte[] data)
        {
            if (data == null || data.Length < raw.Length) throw new UnityException("LoadRawTextureData: not enough data provided (will result in overread).");
            raw = (byte[])data.Clone();
        }
        public byte[] GetRawTextureData() { return (byte[])raw.Clone(); }
        public void Apply(bool updateMipmaps) { applied++; }
        public void Apply() { applied++; }
    }

    public class UnityException : Exception { public UnityException(string message) : base(message) { } }

    public class Material : Object
    {
        private readonly Dictionary<string, Texture> _tex = new Dictionary<string, Texture>();
        internal HashSet<string> properties = new HashSet<string> { "_MainTex" };   // the built-in Standard shader's
        internal string mainProperty = "_MainTex";                                   // the [MainTexture] property
        public void SetTexture(string name, Texture value) { _tex[name] = value; }
        public Texture GetTexture(string name) { Texture t; return _tex.TryGetValue(name, out t) ? t : null; }
        public bool HasProperty(string name) { return properties.Contains(name); }
        public Texture mainTexture { get { return GetTexture(mainProperty); } set { SetTexture(mainProperty, value); } }
    }
    public class Renderer : Component { public Material material { get; set; } public Material sharedMaterial { get; set; } }

    public sealed class Mesh : Object
    {
        internal string[] shapes = new string[0];
        public int blendShapeCount { get { return shapes.Length; } }
        public string GetBlendShapeName(int shapeIndex) { return shapes[shapeIndex]; }
    }

    public class SkinnedMeshRenderer : Renderer
    {
        internal readonly Dictionary<int, float> weights = new Dictionary<int, float>();
        public Mesh sharedMesh { get; set; }
        public void SetBlendShapeWeight(int index, float value)
        {
            if (sharedMesh == null || index < 0 || index >= sharedMesh.blendShapeCount) throw new ArgumentException("blendshape index out of range");
            weights[index] = value;
        }
        public float GetBlendShapeWeight(int index) { float w; return weights.TryGetValue(index, out w) ? w : 0f; }
    }

    public class Transform : Component
    {
        public void SetParent(Transform parent, bool worldPositionStays) { }
        public Vector3 localPosition { get; set; }
        private Quaternion _rot = Quaternion.identity;
        public Quaternion localRotation { get { return _rot; } set { _rot = value; } }
    }

    public struct Vector3
    {
        public float x, y, z;
        public Vector3(float x, float y, float z) { this.x = x; this.y = y; this.z = z; }
        public static Vector3 zero { get { return new Vector3(0, 0, 0); } }
        public static Vector3 operator +(Vector3 a, Vector3 b) { return new Vector3(a.x + b.x, a.y + b.y, a.z + b.z); }
        public static Vector3 operator *(Vector3 a, float d) { return new Vector3(a.x * d, a.y * d, a.z * d); }
    }

    public struct Quaternion
    {
        public float x, y, z, w;
        public Quaternion(float x, float y, float z, float w) { this.x = x; this.y = y; this.z = z; this.w = w; }
        public static Quaternion identity { get { return new Quaternion(0, 0, 0, 1); } }
        private static Quaternion Axis(float deg, float ax, float ay, float az)
        {
            double h = deg * Math.PI / 360.0;
            float s = (float)Math.Sin(h);
            return new Quaternion(ax * s, ay * s, az * s, (float)Math.Cos(h));
        }
        /// <summary>Unity's order: z, then x, then y (in world axes): q = y * x * z.</summary>
        public static Quaternion Euler(float x, float y, float z) { return Axis(y, 0, 1, 0) * Axis(x, 1, 0, 0) * Axis(z, 0, 0, 1); }
        public static Quaternion operator *(Quaternion a, Quaternion b)
        {
            return new Quaternion(a.w * b.x + a.x * b.w + a.y * b.z - a.z * b.y,
                                  a.w * b.y - a.x * b.z + a.y * b.w + a.z * b.x,
                                  a.w * b.z + a.x * b.y - a.y * b.x + a.z * b.w,
                                  a.w * b.w - a.x * b.x - a.y * b.y - a.z * b.z);
        }
    }

    public class ScriptableObject : Object { }

    public sealed class Sprite : Object { }

    public struct Vector2
    {
        public float x, y;
        public Vector2(float x, float y) { this.x = x; this.y = y; }
        public static Vector2 zero { get { return new Vector2(0, 0); } }
    }

    public sealed class RectTransform : Transform
    {
        public Vector2 anchorMin { get; set; }
        public Vector2 anchorMax { get; set; }
        public Vector2 offsetMin { get; set; }
        public Vector2 offsetMax { get; set; }
    }

    public enum RenderMode { ScreenSpaceOverlay, ScreenSpaceCamera, WorldSpace }

    public sealed class Canvas : Behaviour { public RenderMode renderMode { get; set; } }

    public sealed class GUILayoutOption { }

    public struct Rect { public float x, y, width, height; }

    public static class GUILayout
    {
        public static bool Button(string text, params GUILayoutOption[] options) { return false; }
    }

    public static class Mathf
    {
        public static float Clamp01(float value) { return value < 0f ? 0f : value > 1f ? 1f : value; }
    }

    public sealed class AudioClip : Object
    {
        public delegate void PCMReaderCallback(float[] data);
        public delegate void PCMSetPositionCallback(int position);
        internal int lengthSamples, channelCount, freq;
        internal bool stream;
        internal PCMReaderCallback reader;
        internal PCMSetPositionCallback setPosition;
        public static AudioClip Create(string name, int lengthSamples, int channels, int frequency, bool stream)
        { return Create(name, lengthSamples, channels, frequency, stream, null, null); }
        public static AudioClip Create(string name, int lengthSamples, int channels, int frequency, bool stream,
                                       PCMReaderCallback pcmreadercallback)
        { return Create(name, lengthSamples, channels, frequency, stream, pcmreadercallback, null); }
        public static AudioClip Create(string name, int lengthSamples, int channels, int frequency, bool stream,
                                       PCMReaderCallback pcmreadercallback, PCMSetPositionCallback pcmsetpositioncallback)
        {
            return new AudioClip
            {
                name = name, lengthSamples = lengthSamples, channelCount = channels, freq = frequency, stream = stream,
                reader = pcmreadercallback, setPosition = pcmsetpositioncallback,
            };
        }
        public int frequency { get { return freq; } }
        public int channels { get { return channelCount; } }
        public int samples { get { return lengthSamples; } }
    }

    public sealed class AudioSource : Behaviour
    {
        internal int playCount, readPos, position;
        internal bool playing;
        public AudioClip clip { get; set; }
        public bool loop { get; set; }
        public bool isPlaying { get { return playing; } }
        public float spatialBlend { get; set; }
        public float volume { get; set; }
        /// <summary>Play position in the clip, in samples (the stand-in's value is set by the harness).</summary>
        public int timeSamples { get { return position; } set { position = value; } }
        public void Play()
        {
            playing = true;
            playCount++;
            position = 0;
            readPos = 0;
            if (clip != null && clip.setPosition != null) clip.setPosition(0);   // a (re)started stream reads from 0
        }
        public void Stop() { playing = false; }
    }

    public sealed class AudioSettings
    {
        public delegate void AudioConfigurationChangeHandler(bool deviceWasChanged);
        public static event AudioConfigurationChangeHandler OnAudioConfigurationChanged;
        public static int outputSampleRate { get { return StubState.OutputSampleRate; } }
        public static double dspTime { get { return StubState.DspTime; } }
        public static void GetDSPBufferSize(out int bufferLength, out int numBuffers)
        {
            bufferLength = StubState.DspBufferLength;
            numBuffers = StubState.DspBufferCount;
        }
        internal static void RaiseConfigurationChanged(bool deviceWasChanged)
        {
            if (OnAudioConfigurationChanged != null) OnAudioConfigurationChanged(deviceWasChanged);
        }
    }

    public static class Debug
    {
        public static void Log(object message) { StubState.Log.Add("log: " + message); }
        public static void LogWarning(object message) { StubState.Log.Add("warning: " + message); }
        public static void LogError(object message) { StubState.Log.Add("error: " + message); }
    }

    public static class Application
    {
        public static bool isPlaying { get { return true; } }
        public static string streamingAssetsPath { get { return StubState.StreamingAssetsPath; } }
        public static string unityVersion { get { return "2021.3.0f1-stub"; } }
        public static event Action quitting;
    }

    public enum RuntimeInitializeLoadType { AfterSceneLoad, BeforeSceneLoad, AfterAssembliesLoaded, BeforeSplashScreen, SubsystemRegistration }

    [AttributeUsage(AttributeTargets.Method)]
    public sealed class RuntimeInitializeOnLoadMethodAttribute : Attribute
    {
        public RuntimeInitializeOnLoadMethodAttribute() { }
        public RuntimeInitializeOnLoadMethodAttribute(RuntimeInitializeLoadType loadType) { }
    }

    [AttributeUsage(AttributeTargets.Class, AllowMultiple = true)]
    public sealed class RequireComponent : Attribute
    {
        internal readonly Type type;
        public RequireComponent(Type requiredComponent) { type = requiredComponent; }
    }
    [AttributeUsage(AttributeTargets.Class)]
    public sealed class DisallowMultipleComponent : Attribute { }
    [AttributeUsage(AttributeTargets.Class)]
    public sealed class AddComponentMenu : Attribute { public AddComponentMenu(string menuName) { } }
    [AttributeUsage(AttributeTargets.Field)]
    public sealed class SerializeField : Attribute { }
    public class PropertyAttribute : Attribute { }
    [AttributeUsage(AttributeTargets.Field, AllowMultiple = true)]
    public class HeaderAttribute : PropertyAttribute { public HeaderAttribute(string header) { } }
    [AttributeUsage(AttributeTargets.Field)]
    public class TooltipAttribute : PropertyAttribute { public TooltipAttribute(string tooltip) { } }
    [AttributeUsage(AttributeTargets.Field)]
    public sealed class RangeAttribute : PropertyAttribute { public RangeAttribute(float min, float max) { } }
    [AttributeUsage(AttributeTargets.Field)]
    public sealed class TextAreaAttribute : PropertyAttribute { public TextAreaAttribute() { } }

#if STUB_HARNESS
    /// <summary>Test-only controls of the stand-in (compiled with -define:STUB_HARNESS only).</summary>
    public static class StubHarness
    {
        public static int OutputSampleRate { get { return StubState.OutputSampleRate; } set { StubState.OutputSampleRate = value; } }
        public static void SetDspBuffer(int length, int count) { StubState.DspBufferLength = length; StubState.DspBufferCount = count; }
        public static string StreamingAssetsPath { get { return StubState.StreamingAssetsPath; } set { StubState.StreamingAssetsPath = value; } }
        public static List<string> Log { get { return StubState.Log; } }

        /// <summary>AddComponent with the serialised fields set first (as a scene or prefab load does).</summary>
        public static T Add<T>(GameObject go, Action<T> serialise) where T : Component
        {
            return (T)go.Add(typeof(T), c => { if (serialise != null) serialise((T)c); });
        }

        /// <summary>Set a [SerializeField] (private) field, as Unity's serialisation does.</summary>
        public static void Set(object target, string field, object value)
        {
            FieldInfo f = target.GetType().GetField(field, BindingFlags.Instance | BindingFlags.Public | BindingFlags.NonPublic);
            if (f == null) throw new MissingFieldException(target.GetType().Name, field);
            f.SetValue(target, value);
        }

        /// <summary>Send a Unity message (Update, LateUpdate, OnAudioFilterRead, ...) to a component.</summary>
        public static void Send(Component target, string message, params object[] args) { StubState.Send(target, message, args); }

        public static void RaiseAudioConfigurationChanged(bool deviceWasChanged) { AudioSettings.RaiseConfigurationChanged(deviceWasChanged); }

        public static int PlayCount(AudioSource s) { return s.playCount; }
        public static Mesh MakeMesh(params string[] blendShapes) { return new Mesh { shapes = blendShapes }; }
        /// <summary>A material whose shader has these texture properties (the first is its [MainTexture]).</summary>
        public static Material MakeMaterial(params string[] textureProperties)
        {
            return new Material { properties = new HashSet<string>(textureProperties), mainProperty = textureProperties.Length > 0 ? textureProperties[0] : "" };
        }
        public static bool IsStream(AudioClip c) { return c.stream; }
        public static int AppliedCount(Texture2D t) { return t.applied; }
        public static bool IsDestroyed(Object o) { return o.destroyed; }

        /// <summary>
        /// What Unity's stream reader does ahead of playback: pull <paramref name="frames"/> frames of the
        /// source's streamed clip through its PCM reader callback, from the read head, looping at the clip end
        /// (PCMSetPositionCallback(0), then reading on). Returns the samples pulled.
        /// </summary>
        public static float[] PullStream(AudioSource s, int frames)
        {
            AudioClip c = s.clip;
            if (c == null || c.reader == null) throw new InvalidOperationException("the source has no streamed clip");
            var all = new float[frames * c.channels];
            int done = 0;
            while (done < frames)
            {
                if (s.readPos >= c.samples)
                {
                    s.readPos = 0;
                    if (c.setPosition != null) c.setPosition(0);
                }
                int n = Math.Min(Math.Min(frames - done, 4096), c.samples - s.readPos);
                var chunk = new float[n * c.channels];
                c.reader(chunk);
                Array.Copy(chunk, 0, all, done * c.channels, chunk.Length);
                done += n;
                s.readPos += n;
            }
            return all;
        }

        /// <summary>Move the play position (what the mixer has played), without seeking the stream.</summary>
        public static void SetPlayPosition(AudioSource s, int timeSamples) { s.position = timeSamples; }
    }
#endif
}

namespace UnityEngine.Events
{
    public delegate void UnityAction();
    public delegate void UnityAction<T0>(T0 arg0);
    public abstract class UnityEventBase
    {
        public void RemoveAllListeners() { ClearCalls(); }
        internal abstract void ClearCalls();
    }
    public class UnityEvent : UnityEventBase
    {
        private readonly List<UnityAction> _calls = new List<UnityAction>();
        public void AddListener(UnityAction call) { _calls.Add(call); }
        public void RemoveListener(UnityAction call) { _calls.Remove(call); }
        internal override void ClearCalls() { _calls.Clear(); }
        public void Invoke() { foreach (UnityAction c in _calls.ToArray()) c(); }
    }
    public class UnityEvent<T0> : UnityEventBase
    {
        private readonly List<UnityAction<T0>> _calls = new List<UnityAction<T0>>();
        public void AddListener(UnityAction<T0> call) { _calls.Add(call); }
        public void RemoveListener(UnityAction<T0> call) { _calls.Remove(call); }
        internal override void ClearCalls() { _calls.Clear(); }
        public void Invoke(T0 arg0) { foreach (UnityAction<T0> c in _calls.ToArray()) c(arg0); }
    }
}

namespace UnityEngine.UI
{
    public class Graphic : MonoBehaviour { }
    public class Selectable : MonoBehaviour { }
    public class CanvasScaler : MonoBehaviour { }
    public class GraphicRaycaster : MonoBehaviour { }
    public class MaskableGraphic : Graphic { }
    public class RawImage : MaskableGraphic { public Texture texture { get; set; } }
    public class Text : MaskableGraphic { public string text { get; set; } }
    public class InputField : MonoBehaviour { public string text { get; set; } }
    public class Button : Selectable
    {
        public class ButtonClickedEvent : UnityEngine.Events.UnityEvent { }
        private ButtonClickedEvent _onClick = new ButtonClickedEvent();
        public ButtonClickedEvent onClick { get { return _onClick; } set { _onClick = value; } }
    }
}

namespace UnityEngine.EventSystems
{
    public class UIBehaviour : UnityEngine.MonoBehaviour { }
    public class EventSystem : UIBehaviour { }
    public class BaseInputModule : UIBehaviour { }
    public class StandaloneInputModule : BaseInputModule { }
}

namespace UnityEditor
{
    public enum PlayModeStateChange { EnteredEditMode, ExitingEditMode, EnteredPlayMode, ExitingPlayMode }

    [AttributeUsage(AttributeTargets.Class)]
    public sealed class InitializeOnLoadAttribute : Attribute { }

    public static class EditorApplication
    {
        public static event Action<PlayModeStateChange> playModeStateChanged;
    }

    public static class AssemblyReloadEvents
    {
        public delegate void AssemblyReloadCallback();
        public static event AssemblyReloadCallback beforeAssemblyReload;
    }

    [AttributeUsage(AttributeTargets.Method, AllowMultiple = true)]
    public sealed class MenuItem : Attribute
    {
        public MenuItem(string itemName) { }
        public MenuItem(string itemName, bool isValidateFunction, int priority) { }
    }

    public sealed class MenuCommand { public UnityEngine.Object context; }

    [AttributeUsage(AttributeTargets.Class)]
    public sealed class CustomEditor : Attribute { public CustomEditor(Type inspectedType) { } }

    public static class AssetDatabase
    {
        public static T LoadAssetAtPath<T>(string assetPath) where T : UnityEngine.Object { return null; }
    }

    public static class PrefabUtility
    {
        public static UnityEngine.Object InstantiatePrefab(UnityEngine.Object assetComponentOrGameObject) { return null; }
    }

    public static class GameObjectUtility
    {
        public static void SetParentAndAlign(UnityEngine.GameObject child, UnityEngine.GameObject parent) { }
    }

    public static class Undo
    {
        public static void RegisterCreatedObjectUndo(UnityEngine.Object objectToUndo, string name) { }
    }

    public static class Selection { public static UnityEngine.Object activeObject { get; set; } }

    public class Editor : UnityEngine.ScriptableObject
    {
        public UnityEngine.Object target { get; set; }
        public virtual void OnInspectorGUI() { }
        public bool DrawDefaultInspector() { return true; }
        public void Repaint() { }
    }

    public enum MessageType { None, Info, Warning, Error }

    public static class EditorGUILayout
    {
        public static void LabelField(string label, string label2, params UnityEngine.GUILayoutOption[] options) { }
        public static void HelpBox(string message, MessageType type) { }
        public static string TextField(string label, string text, params UnityEngine.GUILayoutOption[] options) { return text; }
        public static UnityEngine.Rect BeginHorizontal(params UnityEngine.GUILayoutOption[] options) { return new UnityEngine.Rect(); }
        public static void EndHorizontal() { }
    }
}
