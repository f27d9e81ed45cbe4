// The one component a scene needs to talk to the xstreamer daemon: owns an AvatarStreamCore (network
// thread + buffers), raises UnityEvents on the main thread, and shuts the core down on disable, on quit and
// when the editor leaves play mode (no editor freeze, no hang on the next play).
using System;
using System.Collections.Generic;
using System.IO;
using UnityEngine;
using UnityEngine.Events;
using Xstreamer.Avatar.Core;

namespace Xstreamer.Avatar
{
    /// <summary>Connects to the daemon, opens a session for a persona + portrait, and streams the avatar.</summary>
    [DisallowMultipleComponent]
    [AddComponentMenu("Xstreamer/Avatar Stream Client")]
    public sealed class AvatarStreamClient : MonoBehaviour
    {
        [Header("Daemon")]
        [Tooltip("Control endpoint printed by `xstreamer serve` (ROUTER socket).")]
        [SerializeField] private string controlEndpoint = "tcp://127.0.0.1:7570";
        [Tooltip("Audio buffered before playback: Low 80 ms, Balanced 160 ms, Safe 320 ms.")]
        [SerializeField] private LatencyPreset latency = LatencyPreset.Balanced;
        [SerializeField] private bool connectOnEnable = true;
        [Tooltip("Only for a daemon served off loopback with CURVE: its public certificate (e.g. server.key), absolute or " +
                 "relative to StreamingAssets. Empty: no encryption (a daemon on this machine).")]
        [SerializeField] private string serverKeyFile = "";
        [Tooltip("With Server Key File: this client's secret certificate (e.g. client.key_secret), whose public key the " +
                 "daemon lists among its authorized clients.")]
        [SerializeField] private string clientSecretKeyFile = "";

        [Header("Persona")]
        [Tooltip("Optional: a persona file written by the studio, a library persona <config>/personas/<slug>.json or an " +
                 "\"Export to Unity\" <slug>.unity.json (absolute, or relative to StreamingAssets). When set, its persona and " +
                 "portrait replace the fields below.")]
        [SerializeField] private string settingsFile = "";
        [Tooltip("With a Unity export file: also take its control endpoint, client name and jitter target (off: persona + portrait only).")]
        [SerializeField] private bool useFileConnection = true;
        [SerializeField] private string personaName = "Avatar";
        [TextArea] [SerializeField] private string systemPrompt = "You are a friendly, concise assistant.";
        [SerializeField] private string greeting = "";
        [SerializeField] private string voice = "joe";
        [Tooltip("Model preset name (tiny / default / paper).")]
        [SerializeField] private string model = "default";
        [Tooltip("A reply stops after this many sentences (0: no cap but the model's own).")]
        [Range(0, ProtocolV1.MaxReplySentences)] [SerializeField] private int maxReplySentences = 0;
        [Tooltip("Built-in gallery character id (empty: use the portrait).")]
        [SerializeField] private string character = "";
        [Tooltip("Portrait image (PNG/JPEG) imported as a TextAsset: rename the file to .bytes.")]
        [SerializeField] private TextAsset portrait;
        [Tooltip("Or a portrait file path (absolute, or relative to StreamingAssets).")]
        [SerializeField] private string portraitPath = "";
        [Tooltip("Only for a portrait in which no face is found (a drawing, a mascot; the daemon refuses it with invalid_portrait " +
                 "otherwise): five points in the picture's pixels, x right and y down from its top-left corner: left eye centre, " +
                 "right eye centre, nose tip, left mouth corner, right mouth corner (left as the picture shows it). Empty: none. " +
                 "The studio's Place face points… writes them into an exported settings file.")]
        [SerializeField] private Vector2[] facePoints = new Vector2[0];

        [Header("Events (main thread)")]
        public UnityEvent<string> onConnectionState = new UnityEvent<string>();
        public UnityEvent<string> onSessionOpened = new UnityEvent<string>();
        public UnityEvent<int> onUtteranceStart = new UnityEvent<int>();
        public UnityEvent<int> onUtteranceEnd = new UnityEvent<int>();
        public UnityEvent<int> onInterrupted = new UnityEvent<int>();
        [Tooltip("A reply that was running when the daemon restarted: it ends here instead of with onUtteranceEnd.")]
        public UnityEvent<int> onUtteranceLost = new UnityEvent<int>();
        public UnityEvent<string> onAssistantText = new UnityEvent<string>();
        public UnityEvent<string> onUserTranscript = new UnityEvent<string>();
        public UnityEvent<string> onError = new UnityEvent<string>();

        private static readonly List<AvatarStreamCore> Live = new List<AvatarStreamCore>();
        private AvatarStreamCore _core;

        /// <summary>
        /// Creates the transport of the next Connect() (null: the default ZmtpTransport, managed ZeroMQ). Set it before the
        /// client is enabled, e.g. for another ITransport binding or a test double.
        /// </summary>
        public Func<ITransport> TransportFactory { get; set; }

        /// <summary>The settings file path (see the inspector tooltip); takes effect at the next Connect().</summary>
        public string SettingsFile { get { return settingsFile; } set { settingsFile = value ?? ""; } }

        /// <summary>The persona file loaded by the last Connect()/BuildOptions() (null when none is set).</summary>
        public PersonaFile LoadedSettings { get; private set; }

        /// <summary>The running core (null while disabled). Audio/video outputs read its buffers.</summary>
        public AvatarStreamCore Core { get { return _core; } }
        public ConnectionState State { get { return _core == null ? ConnectionState.Closed : _core.State; } }
        public LatencyPreset Latency
        {
            get { return latency; }
            set { latency = value; if (_core != null) _core.Audio.TargetMs = LatencyPresets.TargetMs(value); }
        }

        /// <summary>The persona described by the inspector fields.</summary>
        public Persona BuildPersona()
        {
            return new Persona
            {
                Name = personaName, SystemPrompt = systemPrompt, Greeting = greeting ?? "", Voice = voice,
                Model = model, Character = string.IsNullOrEmpty(character) ? null : character,
                MaxReplySentences = maxReplySentences,
            };
        }

        private byte[] LoadPortrait()
        {
            if (portrait != null) return portrait.bytes;
            if (string.IsNullOrEmpty(portraitPath)) return null;
            string path = Path.IsPathRooted(portraitPath) ? portraitPath : Path.Combine(Application.streamingAssetsPath, portraitPath);
            try { return File.ReadAllBytes(path); }
            catch (Exception e) { Debug.LogError("[xstreamer] cannot read portrait " + path + ": " + e.Message); return null; }
        }

        /// <summary>The inspector's face points (null when none are set); throws FacePointsException unless five.</summary>
        public FacePoint[] BuildFacePoints()
        {
            if (facePoints == null || facePoints.Length == 0) return null;
            var points = new FacePoint[facePoints.Length];
            for (int i = 0; i < points.Length; i++) points[i] = new FacePoint(facePoints[i].x, facePoints[i].y);
            string problem = FacePoints.Problem(points);
            if (problem != null) throw new FacePointsException(problem);
            return points;
        }

        /// <summary>The inspector's Face Points cannot be sent (not five finite points).</summary>
        public sealed class FacePointsException : ArgumentException
        {
            public FacePointsException(string message) : base(message) { }
        }

        private static string Resolve(string path)
        {
            if (string.IsNullOrEmpty(path)) throw new ArgumentException("Client Secret Key File is empty (CURVE needs both key files)");
            return Path.IsPathRooted(path) ? path : Path.Combine(Application.streamingAssetsPath, path);
        }

        /// <summary>The settings file's full path (relative paths are under StreamingAssets), or null when none is set.</summary>
        public string ResolveSettingsPath()
        {
            if (string.IsNullOrEmpty(settingsFile)) return null;
            return Path.IsPathRooted(settingsFile) ? settingsFile : Path.Combine(Application.streamingAssetsPath, settingsFile);
        }

        /// <summary>
        /// The options the next Connect() uses: the inspector fields, overridden by the settings file when one
        /// is set. Throws PersonaFileException (typed: NotFound, Malformed, Invalid, PortraitNotFound, ...) when
        /// that file cannot be used, FacePointsException when the inspector's Face Points are not five points, and
        /// ArgumentException for unusable CURVE key files.
        /// </summary>
        public AvatarStreamOptions BuildOptions()
        {
            var options = new AvatarStreamOptions
            {
                ControlEndpoint = controlEndpoint, Persona = BuildPersona(), Portrait = null,
                JitterTargetMs = LatencyPresets.TargetMs(latency),
                ClientName = "xstreamer-unity/0.1.0 (" + Application.unityVersion + ")",
                TransportFactory = TransportFactory,
            };
            string path = ResolveSettingsPath();
            LoadedSettings = null;
            if (path != null)
            {
                // relative portrait paths: beside the file first, then under StreamingAssets
                PersonaFile file = PersonaFile.Load(path, Application.streamingAssetsPath);
                file.ApplyTo(options, useFileConnection);
                LoadedSettings = file;
            }
            if (options.Portrait == null)
            {
                // the inspector's portrait, with the inspector's face points (a file's portrait brings its own)
                options.Portrait = LoadPortrait();
                options.FacePoints = BuildFacePoints();
            }
            if (!string.IsNullOrEmpty(serverKeyFile))
            {
                // throws ArgumentException (a missing or malformed certificate): Connect() reports it
                options.Curve = CurveKeys.FromCertificates(Resolve(serverKeyFile), Resolve(clientSecretKeyFile));
            }
            options.OutputSampleRate = AudioSettings.outputSampleRate;   // the mixer's rate, whatever the file says
            return options;
        }

        private void OnEnable() { if (connectOnEnable) Connect(); }
        private void OnDisable() { Shutdown(); }
        private void OnApplicationQuit() { Shutdown(); }
        private void OnDestroy() { Shutdown(); }

        /// <summary>Start (or restart) the connection with the current inspector settings (and settings file).</summary>
        public void Connect()
        {
            Shutdown();
            AvatarStreamOptions options;
            try { options = BuildOptions(); }
            catch (PersonaFileException e)
            {
                // A wrong settings file must not silently connect with the inspector's persona.
                Debug.LogError("[xstreamer] settings file: " + e.Message);
                onError.Invoke("settings_file: " + e.Error + ": " + e.Message);
                return;
            }
            catch (FacePointsException e)
            {
                Debug.LogError("[xstreamer] face points: " + e.Message);
                onError.Invoke("face_points: " + e.Message);
                return;
            }
            catch (ArgumentException e)
            {
                // A wrong key file must not silently connect without encryption.
                Debug.LogError("[xstreamer] CURVE keys: " + e.Message);
                onError.Invoke("curve_keys: " + e.Message);
                return;
            }
            try
            {
                _core = new AvatarStreamCore(options);
                _core.ConnectionChanged += s => onConnectionState.Invoke(s.ToString());
                _core.SessionOpened += s => onSessionOpened.Invoke(s);
                _core.UtteranceStarted += u => onUtteranceStart.Invoke((int)u);
                _core.UtteranceEnded += u => onUtteranceEnd.Invoke((int)u);
                _core.Interrupted += u => onInterrupted.Invoke((int)u);
                _core.UtteranceLost += u => onUtteranceLost.Invoke((int)u);
                _core.TextReceived += (role, text, final, utt) =>
                {
                    if (role == "user") onUserTranscript.Invoke(text); else onAssistantText.Invoke(text);
                };
                _core.ErrorReceived += (code, message) =>
                {
                    Debug.LogWarning("[xstreamer] " + code + ": " + message);
                    onError.Invoke(code + ": " + message);
                };
                lock (Live) Live.Add(_core);
                _core.Start();
            }
            catch (Exception e)
            {
                Debug.LogError("[xstreamer] cannot start: " + e.Message);
                onError.Invoke("transport: " + e.Message);
                _core = null;
            }
        }

        private void Update() { if (_core != null) _core.DispatchEvents(); }

        /// <summary>The avatar says the text verbatim. Returns the request id (-1 when not connected).</summary>
        public long Say(string text) { return _core == null ? -1 : _core.Say(text); }
        /// <summary>A user turn in text: the persona answers it.</summary>
        public long Chat(string text) { return _core == null ? -1 : _core.Chat(text); }
        /// <summary>Barge-in: stop the current reply now.</summary>
        public void Interrupt() { if (_core != null) _core.Interrupt(); }
        /// <summary>Replace the persona of the running session (next turn).</summary>
        public void SetPersona(Persona persona) { if (_core != null) _core.SetPersona(persona); }

        /// <summary>Stop the network thread and close the sockets (bounded: never freezes the editor).</summary>
        public void Shutdown()
        {
            AvatarStreamCore core = _core;
            _core = null;
            if (core == null) return;
            lock (Live) Live.Remove(core);
            core.Dispose();
        }

        /// <summary>Dispose every live core (play-mode exit, domain reload, quit).</summary>
        public static void ShutdownAll()
        {
            AvatarStreamCore[] cores;
            lock (Live) { cores = Live.ToArray(); Live.Clear(); }
            foreach (AvatarStreamCore c in cores) c.Dispose();
        }

        // With "Enter Play Mode Options" (no domain reload) statics survive between plays: reset them.
        [RuntimeInitializeOnLoadMethod(RuntimeInitializeLoadType.SubsystemRegistration)]
        private static void ResetStatics()
        {
            ShutdownAll();
            Application.quitting -= ShutdownAll;
            Application.quitting += ShutdownAll;
        }
    }

#if UNITY_EDITOR
    /// <summary>Editor guard: leaving play mode or reloading scripts disposes every core first.</summary>
    [UnityEditor.InitializeOnLoad]
    internal static class AvatarPlayModeGuard
    {
        static AvatarPlayModeGuard()
        {
            UnityEditor.EditorApplication.playModeStateChanged += state =>
            {
                if (state == UnityEditor.PlayModeStateChange.ExitingPlayMode) AvatarStreamClient.ShutdownAll();
            };
            UnityEditor.AssemblyReloadEvents.beforeAssemblyReload += AvatarStreamClient.ShutdownAll;
        }
    }
#endif
}
