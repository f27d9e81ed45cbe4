// GameObject → Xstreamer → Avatar NPC: puts the package's prefab into the scene (under the selected object),
// ready to press Play against a daemon on this machine.
using UnityEditor;
using UnityEngine;

namespace Xstreamer.Avatar.Editor
{
    internal static class AvatarMenu
    {
        /// <summary>The package's prefab: a client, its voice (AudioSource) and its face on a world-space canvas.</summary>
        public const string PrefabPath = "Packages/com.xstreamer.avatar/Runtime/Prefabs/Avatar NPC.prefab";

        [MenuItem("GameObject/Xstreamer/Avatar NPC", false, 10)]
        private static void CreateNpc(MenuCommand command)
        {
            var prefab = AssetDatabase.LoadAssetAtPath<GameObject>(PrefabPath);
            GameObject go;
            if (prefab != null) go = (GameObject)PrefabUtility.InstantiatePrefab(prefab);
            else
            {
                // the package was copied somewhere else: build the same components without the prefab
                go = new GameObject("Avatar NPC");
                go.AddComponent<AvatarStreamClient>();
                go.AddComponent<AvatarAudioOutput>();
                go.AddComponent<AvatarVideoOutput>();
                Debug.LogWarning("[xstreamer] prefab not found at " + PrefabPath + ": created the components without it");
            }
            GameObjectUtility.SetParentAndAlign(go, command.context as GameObject);
            Undo.RegisterCreatedObjectUndo(go, "Create Avatar NPC");
            Selection.activeObject = go;
        }
    }
}
