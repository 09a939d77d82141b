using System.ComponentModel.DataAnnotations;
using Microsoft.Extensions.Options;

namespace MmapQueues.Extensions;

/// <summary>
/// Source-generated validator: runs the data-annotation attributes and <see cref="IValidatableObject"/> rules
/// of <see cref="MmapQueueOptions"/> (the same rules the queue constructor enforces) once, at host start-up.
/// </summary>
[OptionsValidator]
internal sealed partial class MmapQueueOptionsValidator : IValidateOptions<MmapQueueOptions>;

/// <summary>Where a registered queue lives; bound from the same configuration section as its options (key <c>Path</c>).</summary>
internal sealed class QueueLocation
{
    /// <summary>The queue directory; relative paths resolve against the host's content root.</summary>
    [Required(ErrorMessage = "Path is required: the directory of the queue (relative paths resolve against the content root).")]
    public string? Path { get; set; }
}

[OptionsValidator]
internal sealed partial class QueueLocationValidator : IValidateOptions<QueueLocation>;
