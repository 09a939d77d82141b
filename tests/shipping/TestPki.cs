using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using MmapQueues.Shipping;

namespace MmapQueues.Tests.Shipping;

/// <summary>
/// A certificate authority made at run time (no private key is checked in): issues leaf certificates
/// for both TLS roles, and writes them as PEM files for the CLI.
/// </summary>
internal sealed class TestPki : IDisposable
{
    private readonly ECDsa _caKey = ECDsa.Create(ECCurve.NamedCurves.nistP256);

    public TestPki(string name = "mmapq test CA")
    {
        var req = new CertificateRequest($"CN={name}", _caKey, HashAlgorithmName.SHA256);
        req.CertificateExtensions.Add(new X509BasicConstraintsExtension(true, false, 0, true));
        req.CertificateExtensions.Add(new X509KeyUsageExtension(X509KeyUsageFlags.KeyCertSign | X509KeyUsageFlags.CrlSign, true));
        req.CertificateExtensions.Add(new X509SubjectKeyIdentifierExtension(req.PublicKey, false));
        Authority = req.CreateSelfSigned(DateTimeOffset.UtcNow.AddMinutes(-5), DateTimeOffset.UtcNow.AddHours(2));
    }

    /// <summary>The CA certificate (with its key, which only this object uses to sign).</summary>
    public X509Certificate2 Authority { get; }

    /// <summary>A certificate signed by this CA, good for TLS client and server, with its private key.</summary>
    public X509Certificate2 Issue(string cn, out ECDsa key)
    {
        key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var req = new CertificateRequest($"CN={cn}", key, HashAlgorithmName.SHA256);
        req.CertificateExtensions.Add(new X509BasicConstraintsExtension(false, false, 0, false));
        req.CertificateExtensions.Add(new X509KeyUsageExtension(X509KeyUsageFlags.DigitalSignature, false));
        req.CertificateExtensions.Add(new X509EnhancedKeyUsageExtension([new Oid("1.3.6.1.5.5.7.3.1"), new Oid("1.3.6.1.5.5.7.3.2")], false));
        var san = new SubjectAlternativeNameBuilder();
        san.AddDnsName("mmapq-replica");
        san.AddIpAddress(System.Net.IPAddress.Loopback);
        req.CertificateExtensions.Add(san.Build());
        byte[] serial = RandomNumberGenerator.GetBytes(12);
        using X509Certificate2 signed = req.Create(Authority, DateTimeOffset.UtcNow.AddMinutes(-5), DateTimeOffset.UtcNow.AddHours(1), serial);
        using X509Certificate2 withKey = signed.CopyWithPrivateKey(key);
        return X509CertificateLoader.LoadPkcs12(withKey.Export(X509ContentType.Pkcs12), null); // a persisted key, as TLS servers want
    }

    /// <summary>A leaf for <paramref name="cn"/> as the authentication of one shipping side.</summary>
    public ShippingAuthentication Side(string cn) => ShippingAuthentication.MutualTls(Issue(cn, out _), AuthorityOnly());

    /// <summary>The CA certificate without its key, as a peer would know it.</summary>
    public X509Certificate2 AuthorityOnly() => X509CertificateLoader.LoadCertificate(Authority.RawData);

    /// <summary>Writes a leaf (cert and key) and the CA as PEM files into <paramref name="dir"/>; returns their paths.</summary>
    public (string Cert, string Key, string Ca) WritePem(string dir, string cn)
    {
        Directory.CreateDirectory(dir);
        using X509Certificate2 leaf = Issue(cn, out ECDsa key);
        string cert = Path.Combine(dir, cn + ".crt"), keyPath = Path.Combine(dir, cn + ".key"), ca = Path.Combine(dir, "ca.crt");
        File.WriteAllText(cert, leaf.ExportCertificatePem());
        File.WriteAllText(keyPath, key.ExportPkcs8PrivateKeyPem());
        File.WriteAllText(ca, Authority.ExportCertificatePem());
        key.Dispose();
        return (cert, keyPath, ca);
    }

    public void Dispose()
    {
        Authority.Dispose();
        _caKey.Dispose();
    }
}
