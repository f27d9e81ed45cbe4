// Inspectors: the client shows its live state in play mode (connection, session, buffered audio, losses,
// motion channels) with Say / Chat / Interrupt buttons; the blendshape output previews which blendshapes of
// its mesh follow which motion channel, before any session exists.
using System.Collections.Generic;
using UnityEditor;
using UnityEngine;
using Xstreamer.Avatar.Core;

namespace Xstreamer.Avatar.Editor
{
    [CustomEditor(typeof(AvatarStreamClient))]
    internal sealed class AvatarStreamClientEditor : UnityEditor.Editor
    {
        private string _line = "Hello! I am your new co-host.";

        public override void OnInspectorGUI()
        {
            DrawDefaultInspector();
            var client = (AvatarStreamClient)target;
            if (!Application.isPlaying)
            {
                EditorGUILayout.HelpBox("Start the daemon on this machine (`xstreamer serve`), set Control Endpoint to the " +
                                        "control= address it prints, then press Play.", MessageType.Info);
                return;
            }
            AvatarStreamCore core = client.Core;
            EditorGUILayout.LabelField("State", client.State.ToString());
            if (core == null) return;
            EditorGUILayout.LabelField("Session", core.Session ?? "-");
            EditorGUILayout.LabelField("Daemon", core.DaemonState);
            EditorGUILayout.LabelField("Audio buffered", core.Audio.BufferedMs.ToString("0") + " ms (underruns " + core.Audio.Underruns + ")");
            EditorGUILayout.LabelField("Packets lost / discarded", core.PacketsLost + " / " + core.PacketsDiscarded);
            EditorGUILayout.LabelField("Reconnects (resumed / opened again)", core.Reconnects + " (" + core.Resumes + " / " + core.Reopens + ")");
            EditorGUILayout.LabelField("Motion channels", core.MotionChannels.Length.ToString());
            _line = EditorGUILayout.TextField("Line", _line);
            EditorGUILayout.BeginHorizontal();
            if (GUILayout.Button("Say")) client.Say(_line);
            if (GUILayout.Button("Chat")) client.Chat(_line);
            if (GUILayout.Button("Interrupt")) client.Interrupt();
            EditorGUILayout.EndHorizontal();
            Repaint();
        }
    }

    [CustomEditor(typeof(AvatarBlendshapeOutput))]
    internal sealed class AvatarBlendshapeOutputEditor : UnityEditor.Editor
    {
        private readonly List<int> _shapes = new List<int>(), _channels = new List<int>();

        public override void OnInspectorGUI()
        {
            DrawDefaultInspector();
            var output = (AvatarBlendshapeOutput)target;
            SkinnedMeshRenderer face = output.Target != null ? output.Target : output.GetComponent<SkinnedMeshRenderer>();
            Mesh mesh = face != null ? face.sharedMesh : null;
            if (mesh == null)
            {
                EditorGUILayout.HelpBox("Set Target to the face's SkinnedMeshRenderer (one with ARKit-named blendshapes).", MessageType.Warning);
                return;
            }
            AvatarStreamClient client = output.GetComponentInParent<AvatarStreamClient>();
            string[] channels = client != null && client.Core != null && client.Core.MotionChannels.Length > 0
                ? client.Core.MotionChannels : ProtocolV1.MotionChannels;
            AvatarBlendshapeOutput.MapBlendShapes(channels, mesh, output.Overrides, _shapes, _channels);
            EditorGUILayout.LabelField("Blendshapes driven", _shapes.Count + " of " + mesh.blendShapeCount);
            if (_shapes.Count == 0)
                EditorGUILayout.HelpBox("No blendshape matches a motion channel: add Overrides (channel → blendshape).", MessageType.Warning);
            for (int k = 0; k < _shapes.Count; k++)
                EditorGUILayout.LabelField("  " + channels[_channels[k]], mesh.GetBlendShapeName(_shapes[k]));
        }
    }
}
