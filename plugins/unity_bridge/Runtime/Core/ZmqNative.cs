// P/Invoke binding of the few libzmq C functions the transport needs (libzmq >= 4.1).
// Library name: "libzmq" everywhere except iOS/WebGL players ("__Internal", statically linked).
// Windows: libzmq.dll next to the player or in Assets/Plugins (vcpkg `zeromq`, or an official build
// renamed to libzmq.dll). macOS: libzmq.dylib (brew/vcpkg). Linux: libzmq.so; Debian's `libzmq5`
// only ships libzmq.so.5, so either install libzmq3-dev (adds the libzmq.so link), copy/link the file
// into Assets/Plugins as libzmq.so, or (plain mono) use the dllmap in Xstreamer.Avatar.Core.dll.config.
using System;
using System.Runtime.InteropServices;

namespace Xstreamer.Avatar.Core
{
    internal static class ZmqNative
    {
#if (UNITY_IOS || UNITY_WEBGL) && !UNITY_EDITOR
        internal const string Lib = "__Internal";
#else
        internal const string Lib = "libzmq";
#endif
        internal const int PUB = 1, SUB = 2, DEALER = 5, ROUTER = 6;
        internal const int SUBSCRIBE = 6, UNSUBSCRIBE = 7, LINGER = 17, RECONNECT_IVL = 18,
                           RECONNECT_IVL_MAX = 21, SNDHWM = 23, RCVHWM = 24;
        internal const int DONTWAIT = 1, SNDMORE = 2;
        internal const short POLLIN = 1;
        internal const int ETERM = 156384712 + 53;
        internal const int EINTR = 4;
        internal const int MsgSize = 64;   // sizeof(zmq_msg_t)

        [StructLayout(LayoutKind.Sequential)]
        internal struct PollItemPosix { public IntPtr socket; public int fd; public short events; public short revents; }

        [StructLayout(LayoutKind.Sequential)]
        internal struct PollItemWindows { public IntPtr socket; public IntPtr fd; public short events; public short revents; }

        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)] internal static extern IntPtr zmq_ctx_new();
        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)] internal static extern int zmq_ctx_shutdown(IntPtr ctx);
        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)] internal static extern int zmq_ctx_term(IntPtr ctx);
        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)] internal static extern IntPtr zmq_socket(IntPtr ctx, int type);
        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)] internal static extern int zmq_close(IntPtr socket);
        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)]
        internal static extern int zmq_setsockopt(IntPtr socket, int option, byte[] value, UIntPtr size);
        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)]
        internal static extern int zmq_connect(IntPtr socket, byte[] endpointUtf8Z);
        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)]
        internal static extern int zmq_send(IntPtr socket, byte[] buf, UIntPtr len, int flags);
        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)] internal static extern int zmq_msg_init(IntPtr msg);
        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)]
        internal static extern int zmq_msg_recv(IntPtr msg, IntPtr socket, int flags);
        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)] internal static extern IntPtr zmq_msg_data(IntPtr msg);
        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)] internal static extern UIntPtr zmq_msg_size(IntPtr msg);
        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)] internal static extern int zmq_msg_more(IntPtr msg);
        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)] internal static extern int zmq_msg_close(IntPtr msg);
        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl, EntryPoint = "zmq_poll")]
        internal static extern int zmq_poll_posix([In, Out] PollItemPosix[] items, int count, long timeoutMs);
        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl, EntryPoint = "zmq_poll")]
        internal static extern int zmq_poll_windows([In, Out] PollItemWindows[] items, int count, long timeoutMs);
        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)] internal static extern int zmq_errno();
        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)] internal static extern IntPtr zmq_strerror(int errnum);
        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)]
        internal static extern void zmq_version(out int major, out int minor, out int patch);

        internal static readonly bool IsWindows = Environment.OSVersion.Platform == PlatformID.Win32NT;

        internal static string LastError()
        {
            int e = zmq_errno();
            IntPtr p = zmq_strerror(e);
            return (p == IntPtr.Zero ? "error" : Marshal.PtrToStringAnsi(p)) + " (errno " + e + ")";
        }

        internal static byte[] Int32Bytes(int v) { return BitConverter.GetBytes(v); }
    }
}
