// Signature-level stand-in of the few TextMeshPro (com.unity.textmeshpro 3.0) types the sample uses, so the
// sample compiles with mcs outside Unity. Signatures as in TMP 3.0.6; no behaviour.
#pragma warning disable 67, 414, 649
using UnityEngine;
using UnityEngine.Events;

namespace TMPro
{
    public abstract class TMP_Text : UnityEngine.UI.MaskableGraphic
    {
        public virtual string text { get; set; }
        public float fontSize { get; set; }
    }

    public class TextMeshProUGUI : TMP_Text { }

    public class TMP_InputField : UnityEngine.UI.Selectable
    {
        public class SubmitEvent : UnityEvent<string> { }
        public string text { get; set; }
        public SubmitEvent onSubmit { get; set; }
    }

    public static class TMP_DefaultControls
    {
        public struct Resources
        {
            public Sprite standard, background, inputField, knob, checkmark, dropdown, mask;
        }
        public static GameObject CreateText(Resources resources) { return null; }
        public static GameObject CreateButton(Resources resources) { return null; }
        public static GameObject CreateInputField(Resources resources) { return null; }
    }
}
