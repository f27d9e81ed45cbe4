// Allocations per video frame on the core's receive path: the network thread (decode, jitter buffer,
// frame queue) and the transport's reader threads, measured with GC.GetAllocatedBytesForCurrentThread on
// each of those threads (AvatarStreamOptions.AllocationProbe). A consumer thread plays the audio and takes
// the frames as the Unity components do. Prints "ALLOC {json}".
// Usage: mono AllocCheck.exe CONTROL_ENDPOINT WARMUP_FRAMES MEASURED_FRAMES
using System;
using System.Diagnostics;
using System.Threading;
using Xstreamer.Avatar.Core;

namespace Xstreamer.Avatar.Tests
{
    internal static class AllocCheck
    {
        private static int Main(string[] args)
        {
            int warmup = int.Parse(args[1]), measured = int.Parse(args[2]);
            var opt = new AvatarStreamOptions
            {
                ControlEndpoint = args[0], JitterTargetMs = 80, OpenTimeoutMs = 30000,
                AllocationProbe = GC.GetAllocatedBytesForCurrentThread,
            };
            var core = new AvatarStreamCore(opt);
            bool stop = false;
            long consumerBytes = 0;
            var consumer = new Thread(() =>
            {
                var buf = new float[960 * 2];
                var motion = new float[64];
                int n;
                long mpts;
                long start = GC.GetAllocatedBytesForCurrentThread();
                while (!Volatile.Read(ref stop))
                {
                    core.Audio.Read(buf, 0, 960, 2);
                    core.Video.TakeDue(long.MaxValue);
                    core.Motion.TryGetDue(long.MaxValue, motion, out n, out mpts);
                    AvatarEvent e;
                    while (core.TryDequeueEvent(out e)) { }
                    Thread.Sleep(1);
                }
                consumerBytes = GC.GetAllocatedBytesForCurrentThread() - start;
            }) { IsBackground = true };
            core.Start();
            consumer.Start();
            var sw = Stopwatch.StartNew();
            while (core.VideoFrames < warmup && sw.ElapsedMilliseconds < 60000) Thread.Sleep(2);
            long net0 = core.NetworkThreadAllocatedBytes, tr0 = core.TransportAllocatedBytes;
            int f0 = core.VideoFrames, a0 = core.AudioPackets, m0 = core.MotionFrames;
            // per-window figures too: a window where a pool grew (the queues ran deeper for a moment on a busy
            // machine) shows that one-off growth; the median window is the steady state
            var windows = new System.Collections.Generic.List<double>();
            long wb = net0 + tr0;
            int wf = f0;
            while (core.VideoFrames < warmup + measured && sw.ElapsedMilliseconds < 120000)
            {
                Thread.Sleep(2);
                int f = core.VideoFrames;
                if (f - wf < 50) continue;
                long b = core.NetworkThreadAllocatedBytes + core.TransportAllocatedBytes;
                windows.Add((double)(b - wb) / (f - wf));
                wb = b;
                wf = f;
            }
            windows.Sort();
            double median = windows.Count > 0 ? windows[windows.Count / 2] : -1;
            long net1 = core.NetworkThreadAllocatedBytes, tr1 = core.TransportAllocatedBytes;
            int f1 = core.VideoFrames, a1 = core.AudioPackets, m1 = core.MotionFrames;
            Volatile.Write(ref stop, true);
            consumer.Join(2000);
            int frames = f1 - f0;
            Console.WriteLine("ALLOC {\"frames\": " + frames + ", \"audio\": " + (a1 - a0) + ", \"motion\": " + (m1 - m0) + ", \"channels\": " + core.MotionChannels.Length +
                              ", \"network_bytes\": " + (net1 - net0) + ", \"transport_bytes\": " + (tr1 - tr0) +
                              ", \"per_frame\": " + (frames > 0 ? (double)(net1 - net0 + tr1 - tr0) / frames : -1).ToString(System.Globalization.CultureInfo.InvariantCulture) +
                              ", \"median_window_per_frame\": " + median.ToString(System.Globalization.CultureInfo.InvariantCulture) +
                              ", \"windows\": " + windows.Count + ", \"frame_pool\": " + core.Video.FramesAllocated + ", \"lost\": " + core.PacketsLost +
                              ", \"consumer_bytes\": " + consumerBytes + "}");
            core.Dispose();
            return 0;
        }
    }
}
