// Loads persona / settings files with the core's PersonaFile and prints one JSON line per file: the decoded
// persona, where the portrait came from, its length and sha256, and the AvatarStreamOptions that ApplyTo
// fills; or the typed error. tests/test_unity_persona.py compares them with what the studio's Python wrote.
// Usage: mono PersonaLoad.exe FILE...   ("text:PATH": PersonaFile.Parse of the text, no folder;
//                                       "PATH::DIR": PersonaFile.Load with DIR as a portrait search folder)
using System;
using System.IO;
using System.Security.Cryptography;
using Xstreamer.Avatar.Core;

namespace Xstreamer.Avatar.Tests
{
    internal static class PersonaLoad
    {
        private static string Sha256(byte[] b)
        {
            using (var h = SHA256.Create()) return JsonOut.Hex(h.ComputeHash(b));
        }

        private static string PersonaJson(Persona p)
        {
            return "{\"name\": " + JsonOut.Str(p.Name) + ", \"system_prompt\": " + JsonOut.Str(p.SystemPrompt) +
                   ", \"greeting\": " + JsonOut.Str(p.Greeting) + ", \"voice\": " + JsonOut.Str(p.Voice) +
                   ", \"model\": " + JsonOut.Str(p.Model) + ", \"character\": " + JsonOut.Value(p.Character) +
                   ", \"max_reply_sentences\": " + p.MaxReplySentences + "}";
        }

        private static string Points(FacePoint[] pts)
        {
            if (pts == null) return "null";
            var parts = new string[pts.Length];
            for (int i = 0; i < pts.Length; i++) parts[i] = "[" + JsonOut.Value(pts[i].X) + ", " + JsonOut.Value(pts[i].Y) + "]";
            return "[" + string.Join(", ", parts) + "]";
        }

        private static int Main(string[] args)
        {
            foreach (string arg in args)
            {
                string head = "{\"file\": " + JsonOut.Str(arg);
                try
                {
                    int sep = arg.IndexOf("::", StringComparison.Ordinal);
                    PersonaFile f = arg.StartsWith("text:")
                        ? PersonaFile.Parse(File.ReadAllText(arg.Substring(5)), null, arg.Substring(5))
                        : sep > 0 ? PersonaFile.Load(arg.Substring(0, sep), arg.Substring(sep + 2)) : PersonaFile.Load(arg);
                    var o = new AvatarStreamOptions { ControlEndpoint = "tcp://unset:1", ClientName = "unset", JitterTargetMs = 1, OutputSampleRate = 1 };
                    f.ApplyTo(o);
                    Console.WriteLine(head + ", \"ok\": true, \"unity_export\": " + (f.IsUnityExport ? "true" : "false") +
                        ", \"persona\": " + PersonaJson(f.Persona) +
                        ", \"portrait_source\": " + JsonOut.Value(f.PortraitSource) +
                        ", \"face_points\": " + Points(f.FacePoints) +
                        ", \"portrait_len\": " + (f.Portrait == null ? -1 : f.Portrait.Length) +
                        ", \"portrait_sha256\": " + (f.Portrait == null ? "null" : JsonOut.Str(Sha256(f.Portrait))) +
                        ", \"options\": {\"persona\": " + PersonaJson(o.Persona) +
                        ", \"portrait_sha256\": " + (o.Portrait == null ? "null" : JsonOut.Str(Sha256(o.Portrait))) +
                        ", \"face_points\": " + Points(o.FacePoints) +
                        ", \"control_endpoint\": " + JsonOut.Str(o.ControlEndpoint) + ", \"client_name\": " + JsonOut.Str(o.ClientName) +
                        ", \"jitter_target_ms\": " + o.JitterTargetMs + ", \"output_sample_rate\": " + o.OutputSampleRate + "}}");
                }
                catch (PersonaFileException e)
                {
                    Console.WriteLine(head + ", \"ok\": false, \"error\": " + JsonOut.Str(e.Error.ToString()) +
                                      ", \"path\": " + JsonOut.Value(e.FilePath) + ", \"message\": " + JsonOut.Str(e.Message) + "}");
                }
            }
            return 0;
        }
    }
}
