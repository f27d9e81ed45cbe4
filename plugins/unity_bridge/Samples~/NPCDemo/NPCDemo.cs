// Sample: a talking NPC driven from a TextMeshPro UI: a text field + Say / Chat / Interrupt buttons,
// subtitles from the assistant's text events, and a status line from the connection state. The scene
// (NPCDemo.unity) holds the camera, the package's "Avatar NPC" prefab and this script; the script builds
// its UI in code when its fields are empty (drag your own widgets into them to use those instead).
using TMPro;
using UnityEngine;
using UnityEngine.EventSystems;
using UnityEngine.UI;
using Xstreamer.Avatar;

namespace Xstreamer.Avatar.Samples
{
    public sealed class NPCDemo : MonoBehaviour
    {
        [SerializeField] private AvatarStreamClient client;
        [SerializeField] private TMP_InputField input;
        [SerializeField] private Button sayButton;
        [SerializeField] private Button chatButton;
        [SerializeField] private Button interruptButton;
        [SerializeField] private TMP_Text subtitles;
        [SerializeField] private TMP_Text status;
        [Tooltip("Said once when the session opens (empty: nothing).")]
        [SerializeField] private string openingLine = "Welcome, traveller! Ask me anything.";

        private void Awake()
        {
            if (client == null) client = FindObjectOfType<AvatarStreamClient>();
            if (client == null) { Debug.LogError("[NPCDemo] no AvatarStreamClient in the scene"); return; }
            if (input == null) BuildUi();
            sayButton.onClick.AddListener(() => Send(false));
            chatButton.onClick.AddListener(() => Send(true));
            interruptButton.onClick.AddListener(() => client.Interrupt());
            input.onSubmit.AddListener(_ => Send(true));
            client.onConnectionState.AddListener(s => status.text = s);
            client.onError.AddListener(e => status.text = e);
            client.onSessionOpened.AddListener(_ => { if (openingLine.Length > 0) client.Say(openingLine); });
            client.onUtteranceStart.AddListener(_ => subtitles.text = "");
            client.onAssistantText.AddListener(t => subtitles.text += t);
            client.onUserTranscript.AddListener(t => status.text = "you: " + t);
        }

        private void Send(bool chat)
        {
            string text = input.text.Trim();
            if (text.Length == 0) return;
            if (chat) client.Chat(text); else client.Say(text);
            input.text = "";
        }

        /// <summary>A screen-space canvas: subtitles at the top, the status line, a text field and three buttons at the bottom.</summary>
        private void BuildUi()
        {
            if (FindObjectOfType<EventSystem>() == null)
                new GameObject("EventSystem", typeof(EventSystem), typeof(StandaloneInputModule));
            var canvasObject = new GameObject("NPC Demo UI", typeof(Canvas), typeof(CanvasScaler), typeof(GraphicRaycaster));
            canvasObject.GetComponent<Canvas>().renderMode = RenderMode.ScreenSpaceOverlay;
            Transform canvas = canvasObject.transform;
            var res = new TMP_DefaultControls.Resources();

            subtitles = Place(TMP_DefaultControls.CreateText(res), canvas, 0.05f, 0.80f, 0.95f, 0.97f).GetComponent<TMP_Text>();
            subtitles.text = "";
            subtitles.fontSize = 28;
            status = Place(TMP_DefaultControls.CreateText(res), canvas, 0.05f, 0.12f, 0.95f, 0.17f).GetComponent<TMP_Text>();
            status.text = "Connecting";
            status.fontSize = 18;
            input = Place(TMP_DefaultControls.CreateInputField(res), canvas, 0.05f, 0.03f, 0.55f, 0.10f).GetComponent<TMP_InputField>();
            sayButton = NewButton(res, canvas, "Say", 0.57f);
            chatButton = NewButton(res, canvas, "Chat", 0.70f);
            interruptButton = NewButton(res, canvas, "Interrupt", 0.83f);
        }

        private static Button NewButton(TMP_DefaultControls.Resources res, Transform canvas, string label, float left)
        {
            GameObject go = Place(TMP_DefaultControls.CreateButton(res), canvas, left, 0.03f, left + 0.12f, 0.10f);
            go.GetComponentInChildren<TMP_Text>().text = label;
            return go.GetComponent<Button>();
        }

        private static GameObject Place(GameObject go, Transform parent, float xMin, float yMin, float xMax, float yMax)
        {
            var rt = go.GetComponent<RectTransform>();
            rt.SetParent(parent, false);
            rt.anchorMin = new Vector2(xMin, yMin);
            rt.anchorMax = new Vector2(xMax, yMax);
            rt.offsetMin = Vector2.zero;
            rt.offsetMax = Vector2.zero;
            return go;
        }
    }
}
