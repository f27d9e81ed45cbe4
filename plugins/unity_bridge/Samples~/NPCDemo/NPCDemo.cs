// Sample: a talking NPC driven from a UI: a text field + Say / Chat / Interrupt buttons, subtitles from
// the assistant's text events, and a status label from the connection state. See README.md for the
// scene set-up.
using UnityEngine;
using UnityEngine.UI;
using Xstreamer.Avatar;

namespace Xstreamer.Avatar.Samples
{
    public sealed class NPCDemo : MonoBehaviour
    {
        [SerializeField] private AvatarStreamClient client;
        [SerializeField] private InputField input;
        [SerializeField] private Button sayButton;
        [SerializeField] private Button chatButton;
        [SerializeField] private Button interruptButton;
        [SerializeField] private Text subtitles;
        [SerializeField] private Text status;
        [Tooltip("Said once when the session opens (empty: nothing).")]
        [SerializeField] private string openingLine = "Welcome, traveller! Ask me anything.";

        private void Awake()
        {
            if (client == null) client = GetComponent<AvatarStreamClient>();
            sayButton.onClick.AddListener(() => Send(false));
            chatButton.onClick.AddListener(() => Send(true));
            interruptButton.onClick.AddListener(() => client.Interrupt());
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
    }
}
