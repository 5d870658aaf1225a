using System.Buffers;
using System.Runtime.InteropServices;

namespace Cairn.Broker.Network;

/// <summary>
/// The buffer of one large request frame, allocated with malloc and freed as soon as the request is done. Not a pooled
/// managed array: ArrayPool keeps every size it has handed out for the life of the process (30 connections sending
/// 96 MiB frames left 2.95 GB resident), and a large managed array goes back to the OS only after a full GC that may
/// never come while the broker is idle. The C library serves such sizes from fresh mappings and unmaps them on free, so
/// the memory is returned at once; its pages become resident only as the body arrives and is written into them, so a
/// frame that is announced but never sent costs almost nothing.
/// The frame's bytes must not be used after <see cref="Dispose"/>: requests are handled and answered before the
/// connection frees their frame, and handlers copy what they keep (as they must for the pooled buffer of small frames).
/// </summary>
internal sealed unsafe class NativeFrameBuffer : MemoryManager<byte>
{
    private byte* _pointer;
    private readonly int _length;

    public NativeFrameBuffer(int length)
    {
        _length = length;
        _pointer = (byte*)NativeMemory.Alloc((nuint)length);
    }

    public override Span<byte> GetSpan() => _pointer is null ? throw new ObjectDisposedException(nameof(NativeFrameBuffer)) : new Span<byte>(_pointer, _length);

    public override MemoryHandle Pin(int elementIndex = 0) => new(_pointer + elementIndex);

    public override void Unpin() { }

    protected override void Dispose(bool disposing)
    {
        if (_pointer is null) return;
        NativeMemory.Free(_pointer);
        _pointer = null;
    }
}
