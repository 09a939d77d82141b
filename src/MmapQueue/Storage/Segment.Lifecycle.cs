using MmapQueues.Format;
using MmapQueues.Native;

namespace MmapQueues.Storage;

internal sealed partial class Segment
{
    private SegmentIndex? _index;

    /// <summary>The side-file path of this segment's sparse index.</summary>
    public string IndexPath => System.IO.Path.ChangeExtension(Path, IndexLayout.Extension);

    /// <summary>The sparse index, once someone loaded or built it (set once; racing setters keep the first).</summary>
    public SegmentIndex? Index => Volatile.Read(ref _index);

    /// <summary>Installs <paramref name="index"/> unless another is already there; returns the one in use.</summary>
    public SegmentIndex SetIndex(SegmentIndex index) => Interlocked.CompareExchange(ref _index, index, null) ?? index;

    /// <summary>Forgets the index (its file proved wrong); the next seek rebuilds it.</summary>
    public void DropIndex(SegmentIndex wrong) => Interlocked.CompareExchange(ref _index, null, wrong);

    /// <summary>
    /// Like <see cref="Acquire"/>, but returns false instead of throwing when retention deleted the
    /// segment: the caller looks the sequence up again.
    /// </summary>
    public bool TryAcquire()
    {
        lock (_mapLock)
        {
            if (_deleted || _vanished) return false;
            if (_readerOf is not null && _map is null && !TryMapForReaderUnderMapLock())
            {
                _deleted = true; // vanished (retention deleted or recycled it): never mapped again
                return false;
            }
            Acquire(); // re-enters _mapLock: the check and the reference are one step
            return true;
        }
    }

    /// <summary>
    /// Deletes the file now if nobody holds a reference (no reader is on it, no view is live); otherwise
    /// leaves it alone and returns false. Atomic with <see cref="Acquire"/> through <c>_mapLock</c>: a
    /// reader either got its reference first (and the segment stays) or finds it deleted.
    /// </summary>
    public bool TryDeleteUnreferenced()
    {
        lock (_mapLock)
        {
            if (_refs > 0 || _deleted) return false;
            _deleted = true;
            UnmapUnderMapLock(); // a parked mapping (KeepMappingWhenIdle)
            QueueFiles.Delete(Path);
            return true;
        }
    }

    /// <summary>
    /// Retires the segment for recycling if nobody holds a reference: as <see cref="TryDeleteUnreferenced"/>
    /// (a reader either got its reference first, or finds it deleted), except that the file stays, for the
    /// allocator to rename and clean into the next spare, and a parked mapping (<see cref="KeepMappingWhenIdle"/>)
    /// goes with it in <paramref name="map"/>. Returns false, changing nothing, when it is held.
    /// </summary>
    public bool TryRetireForRecycling(out MappedRegion? map)
    {
        lock (_mapLock)
        {
            map = null;
            if (_refs > 0 || _deleted) return false;
            _deleted = true; // the file now belongs to the allocator: nothing here deletes or maps it again
            map = _map;
            _map = null;
            return true;
        }
    }

    public bool IsDeleted { get { lock (_mapLock) return _deleted; } }
}
