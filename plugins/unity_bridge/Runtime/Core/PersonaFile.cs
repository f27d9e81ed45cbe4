// Loads the persona files the studio writes, so a scene can use the persona (and portrait) edited there:
//   * a library persona, <config>/personas/<slug>.json (format: sdk/persona_file.py): the Persona fields at the
//     top level plus "portrait" (an image path, or null) and "face_points" (five [x, y] points or null);
//   * a Unity export, <slug>.unity.json (studio_gui/export.py, "format": "xstreamer-unity", "version": 1):
//     "persona": {...}, "portrait_base64", "portrait_path", "face_points", "control_endpoint", "client_name",
//     "jitter_target_ms", "output_sample_rate".
// The portrait comes from portrait_base64 when present, else from the path: relative paths resolve against
// the JSON file's folder, absolute ones are used as they are. Every failure is a PersonaFileException whose
// Error says what went wrong. Keys this version does not know are ignored (newer studio files still load).
using System;
using System.IO;

namespace Xstreamer.Avatar.Core
{
    /// <summary>Why a persona / settings file could not be used.</summary>
    public enum PersonaFileError
    {
        /// <summary>The JSON file does not exist.</summary>
        NotFound,
        /// <summary>The file exists but cannot be read (permissions, I/O error, too large).</summary>
        Unreadable,
        /// <summary>Not valid UTF-8 JSON, or not a JSON object.</summary>
        Malformed,
        /// <summary>Valid JSON, but a field has the wrong type or value, or the format/version is unknown.</summary>
        Invalid,
        /// <summary>The portrait path points at no file.</summary>
        PortraitNotFound,
        /// <summary>The portrait cannot be used: bad base64, empty, unreadable or over 16 MiB.</summary>
        PortraitInvalid,
    }

    /// <summary>A persona / settings file could not be loaded; <see cref="Error"/> says why.</summary>
    public sealed class PersonaFileException : Exception
    {
        public readonly PersonaFileError Error;
        /// <summary>The file concerned (the JSON file, or the portrait for Portrait* errors); may be null.</summary>
        public readonly string FilePath;

        public PersonaFileException(PersonaFileError error, string filePath, string message, Exception inner = null)
            : base(message, inner)
        {
            Error = error;
            FilePath = filePath;
        }
    }

    /// <summary>A decoded persona file: the persona, its portrait bytes and, for Unity exports, connection settings.</summary>
    public sealed class PersonaFile
    {
        /// <summary>The "format" value of a Unity export.</summary>
        public const string UnityFormat = "xstreamer-unity";
        /// <summary>The Unity export version this reader understands.</summary>
        public const int UnityVersion = 1;
        private const long MaxFileBytes = 32L * 1024 * 1024;   // a 16 MiB portrait in base64 is ~21.4 MiB

        private static readonly string[] PersonaKeys = { "name", "system_prompt", "greeting", "voice", "model", "character", "max_reply_sentences" };

        /// <summary>The JSON file read (null when parsed from text).</summary>
        public string SourcePath { get; private set; }
        /// <summary>True for a Unity export (<c>"format": "xstreamer-unity"</c>), false for a library persona.</summary>
        public bool IsUnityExport { get; private set; }
        /// <summary>The persona (defaults filled in for absent fields, as the daemon does).</summary>
        public Persona Persona { get; private set; }
        /// <summary>Portrait image bytes, or null when the file names none.</summary>
        public byte[] Portrait { get; private set; }
        /// <summary>Where the portrait came from: "base64", the resolved absolute path, or null.</summary>
        public string PortraitSource { get; private set; }
        /// <summary>Five points placing the face in the portrait (where the daemon finds none), or null.</summary>
        public FacePoint[] FacePoints { get; private set; }
        /// <summary>Unity exports only (else null / 0): the daemon's control endpoint and client name.</summary>
        public string ControlEndpoint { get; private set; }
        public string ClientName { get; private set; }
        /// <summary>Unity exports only: jitter target and output rate (0 when the file has none).</summary>
        public int JitterTargetMs { get; private set; }
        public int OutputSampleRate { get; private set; }

        /// <summary>
        /// Read and decode the file at <paramref name="path"/>. A relative portrait path resolves against the
        /// file's folder; when no file is there, against each of <paramref name="portraitSearchDirs"/> in turn
        /// (the Unity client passes StreamingAssets).
        /// </summary>
        public static PersonaFile Load(string path, params string[] portraitSearchDirs)
        {
            if (string.IsNullOrEmpty(path)) throw new PersonaFileException(PersonaFileError.NotFound, path, "no persona file given");
            string full;
            try { full = Path.GetFullPath(path); }
            catch (Exception e) { throw new PersonaFileException(PersonaFileError.NotFound, path, "invalid persona file path '" + path + "': " + e.Message, e); }
            if (Directory.Exists(full)) throw new PersonaFileException(PersonaFileError.NotFound, full, "'" + full + "' is a folder, not a persona file");
            if (!File.Exists(full)) throw new PersonaFileException(PersonaFileError.NotFound, full, "persona file '" + full + "' does not exist");
            byte[] data;
            try
            {
                if (new FileInfo(full).Length > MaxFileBytes)
                    throw new PersonaFileException(PersonaFileError.Unreadable, full, "persona file '" + full + "' is larger than 32 MiB");
                data = File.ReadAllBytes(full);
            }
            catch (PersonaFileException) { throw; }
            catch (Exception e) when (e is IOException || e is UnauthorizedAccessException || e is NotSupportedException)
            {
                throw new PersonaFileException(PersonaFileError.Unreadable, full, "cannot read persona file '" + full + "': " + e.Message, e);
            }
            object root;
            try { root = JsonReader.Parse(data); }
            catch (JsonException e) { throw new PersonaFileException(PersonaFileError.Malformed, full, "persona file '" + full + "' is not valid JSON: " + e.Message, e); }
            return FromValue(root, Prepend(Path.GetDirectoryName(full), portraitSearchDirs), full);
        }

        /// <summary>
        /// Decode JSON text (e.g. a TextAsset's). Relative portrait paths resolve against
        /// <paramref name="baseDirectory"/>, then <paramref name="portraitSearchDirs"/> (none: a relative path
        /// is a PortraitNotFound error). <paramref name="sourceName"/> is used in messages.
        /// </summary>
        public static PersonaFile Parse(string json, string baseDirectory, string sourceName = null, params string[] portraitSearchDirs)
        {
            object root;
            try { root = JsonReader.Parse(json); }
            catch (JsonException e) { throw new PersonaFileException(PersonaFileError.Malformed, sourceName, Name(sourceName) + " is not valid JSON: " + e.Message, e); }
            return FromValue(root, Prepend(baseDirectory, portraitSearchDirs), sourceName);
        }

        private static string[] Prepend(string first, string[] rest)
        {
            int n = (first != null ? 1 : 0) + (rest != null ? rest.Length : 0);
            var all = new string[n];
            int k = 0;
            if (first != null) all[k++] = first;
            if (rest != null) foreach (string d in rest) all[k++] = d;
            return all;
        }

        /// <summary>
        /// Fill <paramref name="options"/> with what the file defines: the persona, the portrait with its face
        /// points (when it has one: points belong to their picture, so a file without a portrait leaves the
        /// options' portrait and points alone) and, when <paramref name="connection"/> is true, a Unity export's
        /// endpoint, client name, jitter target and output rate.
        /// </summary>
        public void ApplyTo(AvatarStreamOptions options, bool connection = true)
        {
            if (options == null) throw new ArgumentNullException("options");
            options.Persona = Persona;
            if (Portrait != null)
            {
                options.Portrait = Portrait;
                options.FacePoints = FacePoints;
            }
            if (!connection) return;
            if (ControlEndpoint != null) options.ControlEndpoint = ControlEndpoint;
            if (ClientName != null) options.ClientName = ClientName;
            if (JitterTargetMs > 0) options.JitterTargetMs = JitterTargetMs;
            if (OutputSampleRate > 0) options.OutputSampleRate = OutputSampleRate;
        }

        private static string Name(string source) { return source == null ? "persona text" : "persona file '" + source + "'"; }

        private static PersonaFileException Invalid(string source, string message)
        {
            return new PersonaFileException(PersonaFileError.Invalid, source, Name(source) + ": " + message);
        }

        private static PersonaFile FromValue(object root, string[] dirs, string source)
        {
            var top = root as MsgMap;
            if (top == null) throw new PersonaFileException(PersonaFileError.Malformed, source, Name(source) + " must hold a JSON object");
            var f = new PersonaFile { SourcePath = source };
            object format;
            MsgMap personaMap;
            string portraitPath = null, portraitBase64 = null;
            if (top.TryGetValue("format", out format))
            {
                if (!(format is string) || (string)format != UnityFormat)
                    throw Invalid(source, "unsupported format " + Describe(format) + " (expected \"" + UnityFormat + "\" or a library persona)");
                long version = Int(top, "version", source, 1, int.MaxValue, -1);
                if (version != UnityVersion)
                    throw Invalid(source, "unsupported " + UnityFormat + " version " + version + " (this bridge reads version " + UnityVersion + ")");
                f.IsUnityExport = true;
                object p;
                if (!top.TryGetValue("persona", out p) || p == null) personaMap = new MsgMap();
                else
                {
                    personaMap = p as MsgMap;
                    if (personaMap == null) throw Invalid(source, "persona: Input should be a valid dictionary");
                }
                f.ControlEndpoint = Str(top, "control_endpoint", source, 512);
                if (f.ControlEndpoint != null && f.ControlEndpoint.IndexOf("://", StringComparison.Ordinal) < 1)
                    throw Invalid(source, "control_endpoint '" + f.ControlEndpoint + "' is not an endpoint like tcp://127.0.0.1:7570");
                f.ClientName = Str(top, "client_name", source, 120);
                f.JitterTargetMs = (int)Int(top, "jitter_target_ms", source, 0, 10000, 0);
                f.OutputSampleRate = (int)Int(top, "output_sample_rate", source, 8000, 192000, 0);
                portraitBase64 = Str(top, "portrait_base64", source, int.MaxValue);
                portraitPath = Str(top, "portrait_path", source, 4096) ?? Str(top, "portrait", source, 4096);
            }
            else
            {
                personaMap = top;   // a library persona: Persona fields + "portrait"
                portraitPath = Str(top, "portrait", source, 4096);
                portraitBase64 = Str(top, "portrait_base64", source, int.MaxValue);
            }
            f.Persona = ReadPersona(personaMap, source);
            f.FacePoints = ReadFacePoints(top, source);
            if (!string.IsNullOrEmpty(portraitBase64))
            {
                try { f.Portrait = Convert.FromBase64String(portraitBase64); }
                catch (FormatException e)
                {
                    throw new PersonaFileException(PersonaFileError.PortraitInvalid, source, Name(source) + ": portrait_base64 is not valid base64", e);
                }
                f.PortraitSource = "base64";
                CheckPortrait(f.Portrait, source, "portrait_base64 of " + Name(source));
            }
            else if (!string.IsNullOrEmpty(portraitPath))
            {
                string full = ResolvePortrait(portraitPath, dirs, source);
                f.Portrait = ReadPortrait(full);
                f.PortraitSource = full;
            }
            return f;
        }

        private static Persona ReadPersona(MsgMap raw, string source)
        {
            var picked = new MsgMap();
            foreach (string k in PersonaKeys)
            {
                object v;
                if (raw.TryGetValue(k, out v)) picked.AddOrdered(k, v);
            }
            MsgMap norm;
            try { norm = ProtocolSchema.ValidateFields("persona", ProtocolSchema.Persona, picked); }
            catch (ProtocolException e) { throw Invalid(source, e.Detail); }
            Persona p = Persona.FromMap(norm);
            if (p.Name.Trim().Length == 0) throw Invalid(source, "persona.name: must not be blank");
            if (p.SystemPrompt.Trim().Length == 0) throw Invalid(source, "persona.system_prompt: must not be blank");
            return p;
        }

        /// <summary>"face_points": null/absent, or five [x, y] pairs of finite numbers.</summary>
        private static FacePoint[] ReadFacePoints(MsgMap m, string source)
        {
            object v;
            if (!m.TryGetValue("face_points", out v) || v == null) return null;
            var list = v as System.Collections.Generic.List<object>;
            if (list == null || list.Count != ProtocolV1.FacePointCount)
                throw Invalid(source, "face_points: should be " + ProtocolV1.FacePointCount + " [x, y] points (eye centres, nose tip, mouth corners) or null");
            var points = new FacePoint[list.Count];
            for (int i = 0; i < list.Count; i++)
            {
                var xy = list[i] as System.Collections.Generic.List<object>;
                double x, y;
                if (xy == null || xy.Count != 2 || !Number(xy[0], out x) || !Number(xy[1], out y))
                    throw Invalid(source, "face_points." + i + ": should be an [x, y] pair of numbers");
                points[i] = new FacePoint(x, y);
            }
            return points;
        }

        private static bool Number(object v, out double d)
        {
            d = 0;
            if (v is long) d = (long)v;
            else if (v is double) d = (double)v;
            else return false;
            return !double.IsNaN(d) && !double.IsInfinity(d);
        }

        private static string ResolvePortrait(string path, string[] dirs, string source)
        {
            bool posix = Path.DirectorySeparatorChar == '/';
            if (posix && LooksLikeWindowsRoot(path))
                throw new PersonaFileException(PersonaFileError.PortraitNotFound, path, Name(source) + ": the portrait '" + path +
                    "' is a Windows path; export again with the portrait embedded (portrait_base64) or next to the file");
            string p = posix ? path.Replace('\\', '/') : path;   // a relative path written on Windows
            try
            {
                if (Path.IsPathRooted(p)) return Path.GetFullPath(p);
                string first = null;
                foreach (string d in dirs)
                {
                    if (string.IsNullOrEmpty(d)) continue;
                    string full = Path.GetFullPath(Path.Combine(d, p));
                    if (File.Exists(full)) return full;
                    if (first == null) first = full;
                }
                if (first == null)
                    throw new PersonaFileException(PersonaFileError.PortraitNotFound, path, Name(source) + ": the relative portrait path '" +
                        path + "' needs the file's folder (use PersonaFile.Load, or pass baseDirectory)");
                if (dirs.Length > 1)
                    throw new PersonaFileException(PersonaFileError.PortraitNotFound, first, "portrait '" + path + "' of " + Name(source) +
                        " is neither at '" + first + "' nor under " + string.Join(", ", dirs, 1, dirs.Length - 1));
                return first;   // ReadPortrait reports it missing
            }
            catch (PersonaFileException) { throw; }
            catch (Exception e) when (e is ArgumentException || e is NotSupportedException || e is PathTooLongException)
            {
                throw new PersonaFileException(PersonaFileError.PortraitNotFound, path, Name(source) + ": invalid portrait path '" + path + "': " + e.Message, e);
            }
        }

        private static bool LooksLikeWindowsRoot(string p)
        {
            return p.Length >= 3 && char.IsLetter(p[0]) && p[1] == ':' && (p[2] == '\\' || p[2] == '/');
        }

        private static byte[] ReadPortrait(string full)
        {
            if (!File.Exists(full))
                throw new PersonaFileException(PersonaFileError.PortraitNotFound, full, "portrait '" + full + "' does not exist");
            byte[] b;
            try
            {
                if (new FileInfo(full).Length > ProtocolV1.MaxPortraitBytes)
                    throw new PersonaFileException(PersonaFileError.PortraitInvalid, full, "portrait '" + full + "' is larger than 16 MiB");
                b = File.ReadAllBytes(full);
            }
            catch (PersonaFileException) { throw; }
            catch (Exception e) when (e is IOException || e is UnauthorizedAccessException || e is NotSupportedException)
            {
                throw new PersonaFileException(PersonaFileError.PortraitInvalid, full, "cannot read portrait '" + full + "': " + e.Message, e);
            }
            CheckPortrait(b, full, "portrait '" + full + "'");
            return b;
        }

        private static void CheckPortrait(byte[] b, string where, string what)
        {
            if (b.Length == 0) throw new PersonaFileException(PersonaFileError.PortraitInvalid, where, what + " is empty");
            if (b.Length > ProtocolV1.MaxPortraitBytes)
                throw new PersonaFileException(PersonaFileError.PortraitInvalid, where, what + " is larger than 16 MiB");
        }

        private static string Describe(object v) { return v is string ? "\"" + v + "\"" : v == null ? "null" : v.GetType().Name; }

        /// <summary>An optional string field (null when absent or null).</summary>
        private static string Str(MsgMap m, string key, string source, int maxChars)
        {
            object v;
            if (!m.TryGetValue(key, out v) || v == null) return null;
            var s = v as string;
            if (s == null) throw Invalid(source, key + ": Input should be a valid string or null");
            if (s.Length > maxChars) throw Invalid(source, key + ": String length out of range");
            return s;
        }

        /// <summary>An optional integer field in [min, max] (<paramref name="absent"/> when absent or null).</summary>
        private static long Int(MsgMap m, string key, string source, long min, long max, long absent)
        {
            object v;
            if (!m.TryGetValue(key, out v) || v == null) return absent;
            long x;
            if (v is bool || v is string || !ProtocolSchema.LaxInt(v, out x)) throw Invalid(source, key + ": Input should be a valid integer");
            if (x < min || x > max) throw Invalid(source, key + ": " + x + " is out of range [" + min + ", " + max + "]");
            return x;
        }
    }
}
