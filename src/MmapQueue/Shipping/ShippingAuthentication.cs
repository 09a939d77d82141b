using System.Net.Security;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;

namespace MmapQueues.Shipping;

/// <summary>
/// How the two ends of a shipping session prove who they are. Both sides must use the same mode.
/// Without one (null), plain TCP is allowed only between loopback addresses; <see cref="Insecure"/>
/// allows it anywhere, on purpose.
/// </summary>
/// <remarks>
/// <list type="bullet">
/// <item>TLS (<see cref="MutualTls"/>, or <see cref="Tls(SslClientAuthenticationOptions)"/> /
/// <see cref="Tls(SslServerAuthenticationOptions)"/>): authenticates both peers and encrypts and
/// integrity-protects the whole stream. Segment bytes then pass through user space (no sendfile).</item>
/// <item><see cref="SharedSecret"/>: an HMAC-SHA256 challenge and response in the handshake, both ways,
/// over both sides' nonces and the whole handshake. It authenticates the handshake only: the records then
/// go by sendfile on plain TCP, unencrypted, protected by their CRC32C alone (which stops accidents, not
/// an attacker on the path).</item>
/// </list>
/// </remarks>
public sealed class ShippingAuthentication
{
    internal WireProtocol.Auth Mode { get; }
    internal byte[]? Key { get; }
    internal SslClientAuthenticationOptions? Client { get; }
    internal SslServerAuthenticationOptions? Server { get; }

    /// <summary>Shortest accepted shared secret, in bytes.</summary>
    public const int MinSecretBytes = 16;

    private ShippingAuthentication(WireProtocol.Auth mode, byte[]? key = null, SslClientAuthenticationOptions? client = null, SslServerAuthenticationOptions? server = null)
    {
        Mode = mode;
        Key = key;
        Client = client;
        Server = server;
    }

    /// <summary>Plain TCP, no authentication, to or from any address: anyone who can connect can read or write the replica.</summary>
    public static ShippingAuthentication Insecure { get; } = new(WireProtocol.Auth.None);

    /// <summary>True for <see cref="Insecure"/>.</summary>
    public bool IsInsecure => Mode == WireProtocol.Auth.None;

    /// <summary>A shared secret of at least <see cref="MinSecretBytes"/> bytes; both sides prove they hold it (HMAC-SHA256).</summary>
    public static ShippingAuthentication SharedSecret(ReadOnlySpan<byte> key)
    {
        if (key.Length < MinSecretBytes)
            throw new ArgumentException($"A shipping secret needs at least {MinSecretBytes} bytes; found {key.Length}.", nameof(key));
        return new(WireProtocol.Auth.SharedSecret, key.ToArray());
    }

    /// <summary>TLS for the exporting side, with the caller's options (certificates, validation).</summary>
    public static ShippingAuthentication Tls(SslClientAuthenticationOptions client) =>
        new(WireProtocol.Auth.Tls, client: client ?? throw new ArgumentNullException(nameof(client)));

    /// <summary>TLS for the receiving side, with the caller's options (set <c>ClientCertificateRequired</c> for mutual TLS).</summary>
    public static ShippingAuthentication Tls(SslServerAuthenticationOptions server) =>
        new(WireProtocol.Auth.Tls, server: server ?? throw new ArgumentNullException(nameof(server)));

    /// <summary>
    /// Mutual TLS on either side: this side presents <paramref name="certificate"/> (with its private key)
    /// and accepts a peer only if its certificate chains to <paramref name="authority"/> (the peer's host
    /// name is not checked: every certificate the authority issued is trusted). The receiver requires a
    /// client certificate.
    /// </summary>
    public static ShippingAuthentication MutualTls(X509Certificate2 certificate, X509Certificate2 authority)
    {
        ArgumentNullException.ThrowIfNull(certificate);
        ArgumentNullException.ThrowIfNull(authority);
        if (!certificate.HasPrivateKey) throw new ArgumentException("The certificate has no private key.", nameof(certificate));
        RemoteCertificateValidationCallback validate = (_, cert, _, _) => ChainsTo(cert, authority);
        return new(WireProtocol.Auth.Tls,
            client: new SslClientAuthenticationOptions
            {
                TargetHost = "mmapq-replica",
                ClientCertificates = [certificate],
                LocalCertificateSelectionCallback = (_, _, _, _, _) => certificate,
                RemoteCertificateValidationCallback = validate,
                CertificateRevocationCheckMode = X509RevocationMode.NoCheck,
            },
            server: new SslServerAuthenticationOptions
            {
                ServerCertificate = certificate,
                ClientCertificateRequired = true,
                RemoteCertificateValidationCallback = validate,
                CertificateRevocationCheckMode = X509RevocationMode.NoCheck,
            });
    }

    /// <summary>True when <paramref name="cert"/> chains to <paramref name="authority"/> alone (a custom root, no system store).</summary>
    private static bool ChainsTo(X509Certificate? cert, X509Certificate2 authority)
    {
        if (cert is null) return false;
        using var chain = new X509Chain();
        chain.ChainPolicy.TrustMode = X509ChainTrustMode.CustomRootTrust;
        chain.ChainPolicy.CustomTrustStore.Add(authority);
        chain.ChainPolicy.RevocationMode = X509RevocationMode.NoCheck;
        using var leaf = new X509Certificate2(cert);
        if (!chain.Build(leaf)) return false;
        X509Certificate2 root = chain.ChainElements[^1].Certificate;
        return root.RawDataMemory.Span.SequenceEqual(authority.RawDataMemory.Span);
    }

    /// <summary>The MAC the receiver sends in CHALLENGE: over HELLO and the first 48 bytes of CHALLENGE.</summary>
    internal byte[] ReceiverMac(ReadOnlySpan<byte> hello, ReadOnlySpan<byte> challengeHead) =>
        Mac("mmapq shipping v2 receiver"u8, hello, challengeHead);

    /// <summary>The MAC the sender sends in PROOF: over HELLO and the whole CHALLENGE.</summary>
    internal byte[] SenderMac(ReadOnlySpan<byte> hello, ReadOnlySpan<byte> challenge) =>
        Mac("mmapq shipping v2 sender"u8, hello, challenge);

    private byte[] Mac(ReadOnlySpan<byte> label, ReadOnlySpan<byte> a, ReadOnlySpan<byte> b)
    {
        using var h = IncrementalHash.CreateHMAC(HashAlgorithmName.SHA256, Key!);
        h.AppendData(label);
        h.AppendData(a);
        h.AppendData(b);
        return h.GetHashAndReset();
    }

    /// <summary>Constant-time comparison of a received MAC with the expected one.</summary>
    internal static bool MacEquals(ReadOnlySpan<byte> expected, ReadOnlySpan<byte> found) =>
        CryptographicOperations.FixedTimeEquals(expected, found);
}
