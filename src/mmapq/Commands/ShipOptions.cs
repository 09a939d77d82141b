using System.CommandLine;
using System.Net;
using System.Security.Cryptography.X509Certificates;
using System.Text;
using MmapQueues.Shipping;

namespace MmapQueues.Cli.Commands;

/// <summary>
/// The options 'mmapq export' and 'mmapq receive' share. Authentication: mutual TLS from PEM files, a
/// shared secret from a file or MMAPQ_SHIPPING_SECRET, or --insecure; none of them means loopback only.
/// Timeouts and TCP keepalive, in seconds (unset: the library's defaults).
/// </summary>
internal sealed class ShipOptions
{
    public const string SecretVariable = "MMAPQ_SHIPPING_SECRET";

    public readonly Option<string?> Cert = new("--cert") { Description = "This side's certificate (PEM) for mutual TLS; needs --key and --ca." };
    public readonly Option<string?> Key = new("--key") { Description = "The private key (PEM) of --cert." };
    public readonly Option<string?> Ca = new("--ca") { Description = "The certificate authority (PEM) the peer's certificate must chain to." };
    public readonly Option<string?> SecretFile = new("--secret-file") { Description = $"A file holding the shared secret (at least 16 bytes; trailing whitespace ignored); or set {SecretVariable}." };
    public readonly Option<bool> Insecure = new("--insecure") { Description = "Allow plain, unauthenticated TCP with a non-loopback peer." };
    public readonly Option<double?> HandshakeTimeout = new("--handshake-timeout") { Description = "Seconds each handshake step may take (default 10)." };
    public readonly Option<double?> IdleTimeout = new("--idle-timeout") { Description = "Seconds the peer may stay silent during a session (default: export 60, receive 120)." };
    public readonly Option<double?> KeepAlive = new("--keepalive") { Description = "Seconds of idle before TCP keepalive probes the peer; 0 turns it off (default 30)." };

    public void AddTo(Command c)
    {
        foreach (Option o in new Option[] { Cert, Key, Ca, SecretFile, Insecure, HandshakeTimeout, IdleTimeout, KeepAlive }) c.Add(o);
    }

    /// <summary>The timeouts asked for, or an error message; each one not given keeps the value passed in.</summary>
    public (TimeSpan Handshake, TimeSpan Idle, TimeSpan KeepAlive, string? Error) Timeouts(ParseResult p, TimeSpan handshake, TimeSpan idle, TimeSpan keepAlive)
    {
        double? h = p.GetValue(HandshakeTimeout), i = p.GetValue(IdleTimeout), k = p.GetValue(KeepAlive);
        if (h is <= 0 || i is <= 0 || k is < 0)
            return (default, default, default, "--handshake-timeout and --idle-timeout must be positive, --keepalive zero or more (seconds)");
        return (h is { } hs ? TimeSpan.FromSeconds(hs) : handshake, i is { } s ? TimeSpan.FromSeconds(s) : idle, k is { } ks ? TimeSpan.FromSeconds(ks) : keepAlive, null);
    }

    private const UnixFileMode OthersAccess = UnixFileMode.GroupRead | UnixFileMode.GroupWrite | UnixFileMode.GroupExecute
                                              | UnixFileMode.OtherRead | UnixFileMode.OtherWrite | UnixFileMode.OtherExecute;

    private static string Octal(UnixFileMode mode) => "0" + Convert.ToString((int)mode & 0x1FF, 8);

    /// <summary>The authentication the options ask for, or an error message. Null authentication: plain TCP, loopback only.</summary>
    public (ShippingAuthentication? Auth, string? Error) Resolve(ParseResult p, IPAddress address)
    {
        string? cert = p.GetValue(Cert), key = p.GetValue(Key), ca = p.GetValue(Ca), secretFile = p.GetValue(SecretFile);
        string? secretEnv = Environment.GetEnvironmentVariable(SecretVariable);
        bool tls = cert is not null || key is not null || ca is not null;
        bool secret = secretFile is not null || !string.IsNullOrEmpty(secretEnv);
        try
        {
            if (tls && secretFile is not null) return (null, "choose one of mutual TLS (--cert/--key/--ca) and --secret-file");
            if (tls)
            {
                if (cert is null || key is null || ca is null) return (null, "mutual TLS needs all of --cert, --key and --ca");
                var mine = X509Certificate2.CreateFromPemFile(cert, key);
                var authority = X509Certificate2.CreateFromPem(File.ReadAllText(ca));
                return (ShippingAuthentication.MutualTls(mine, authority), null);
            }
            if (secret)
            {
                if (secretFile is not null && !OperatingSystem.IsWindows() && File.GetUnixFileMode(secretFile) is var mode && (mode & OthersAccess) != 0)
                    return (null, $"the secret file {secretFile} may be read or written by others (mode {Octal(mode)}); " +
                                  $"expected the owner only (chmod 600 {secretFile})");
                byte[] bytes = secretFile is not null ? File.ReadAllBytes(secretFile) : Encoding.UTF8.GetBytes(secretEnv!);
                int n = bytes.Length;
                while (n > 0 && bytes[n - 1] is (byte)'\n' or (byte)'\r' or (byte)' ' or (byte)'\t') n--;
                return (ShippingAuthentication.SharedSecret(bytes.AsSpan(0, n)), null);
            }
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or System.Security.Cryptography.CryptographicException or ArgumentException)
        {
            return (null, e.Message);
        }
        if (p.GetValue(Insecure)) return (ShippingAuthentication.Insecure, null);
        if (!IPAddress.IsLoopback(address))
            return (null, $"{address} is not a loopback address and no authentication was given: use --cert/--key/--ca (mutual TLS), " +
                          $"--secret-file or {SecretVariable} (shared secret), or --insecure to send plain TCP anyway");
        return (null, null);
    }
}
