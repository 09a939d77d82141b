using System.Net;
using System.Net.Sockets;
using MmapQueues.Format;

namespace MmapQueues.Tests.Shipping;

/// <summary>
/// Mutual TLS and the shared-secret handshake: genuine peers ship, every other peer is refused before the
/// replica is created or touched, and learns nothing but a short code.
/// </summary>
public sealed class AuthenticatedShippingTests : IDisposable
{
    private static readonly byte[] Secret = "correct horse battery staple 42"u8.ToArray();
    private readonly TempDir _dir = new();
    private readonly string _source, _replica;

    public AuthenticatedShippingTests()
    {
        _source = _dir.Sub("source");
        _replica = _dir.Sub("replica");
        using var q = new MmapQueue(_source, new MmapQueueOptions { SegmentSizeBytes = 64 << 10 });
        for (int i = 0; i < 300; i++) q.Enqueue(Enumerable.Range(0, i * 13 % 3000).Select(x => (byte)(x ^ i)).ToArray());
    }

    public void Dispose() => _dir.Dispose();

    /// <summary>One session with the given authentication on each side; returns each side's outcome.</summary>
    private async Task<(long? Sent, Exception? ExportError, long? Received, Exception? ReceiveError)> Ship(ShippingAuthentication? exporter, ShippingAuthentication? receiver)
    {
        using var q = new MmapQueue(_source);
        (Socket s, Socket r) = Loopback.Pair();
        using (s)
        using (r)
        {
            Task<long> received = Loopback.Receive(_replica, r, new ReceiverOptions { Authentication = receiver, HandshakeTimeout = TimeSpan.FromSeconds(20) });
            Task<long> sent = new QueueExporter(q, new ExportOptions { Authentication = exporter }).ExportAsync(s);
            Exception? se = await Record.ExceptionAsync(() => sent.WaitAsync(TimeSpan.FromSeconds(60)));
            if (se is not null) s.Shutdown(SocketShutdown.Both); // as a real exporter's process would, on failure
            Exception? re = await Record.ExceptionAsync(() => received.WaitAsync(TimeSpan.FromSeconds(60)));
            return (se is null ? sent.Result : null, se, re is null ? received.Result : null, re);
        }
    }

    private void AssertNoReplica() =>
        Assert.False(File.Exists(Path.Combine(_replica, "queue.meta")), "an unauthenticated peer must not create a replica");

    private async Task AssertShipsWhole(ShippingAuthentication exporter, ShippingAuthentication receiver)
    {
        var (sent, se, received, re) = await Ship(exporter, receiver);
        Assert.Null(se);
        Assert.Null(re);
        Assert.Equal(sent, received);
        Loopback.AssertSameSegments(_source, _replica);
    }

    [Fact]
    public async Task MutualTlsShipsAByteIdenticalReplica()
    {
        using var pki = new TestPki();
        await AssertShipsWhole(pki.Side("source"), pki.Side("replica"));
    }

    [Fact]
    public async Task AnExporterWithACertificateFromAnotherAuthorityIsRefusedAndCreatesNothing()
    {
        using var pki = new TestPki();
        using var rogue = new TestPki("rogue CA");
        var (_, se, _, re) = await Ship(rogue.Side("intruder"), pki.Side("replica"));
        Assert.NotNull(se);
        Assert.IsAssignableFrom<IOException>(re);
        AssertNoReplica();
    }

    [Fact]
    public async Task AReceiverWithACertificateFromAnotherAuthorityIsRefusedByTheExporter()
    {
        using var pki = new TestPki();
        using var rogue = new TestPki("rogue CA");
        var (_, se, _, re) = await Ship(pki.Side("source"), rogue.Side("fake replica"));
        var e = Assert.IsType<ShippingProtocolException>(se);
        Assert.Equal("auth", e.Code);
        Assert.NotNull(re);
        AssertNoReplica();
    }

    [Fact]
    public Task SharedSecretShipsAByteIdenticalReplica() =>
        AssertShipsWhole(ShippingAuthentication.SharedSecret(Secret), ShippingAuthentication.SharedSecret(Secret));

    [Fact]
    public async Task AWrongSecretIsRefusedOnBothSidesAndCreatesNothing()
    {
        var (_, se, _, re) = await Ship(ShippingAuthentication.SharedSecret("a different secret, 16+ bytes"u8), ShippingAuthentication.SharedSecret(Secret));
        Assert.Equal("auth", Assert.IsType<ShippingProtocolException>(se).Code); // the exporter checks the receiver's MAC first
        Assert.Equal("auth", Assert.IsType<ShippingProtocolException>(re).Code); // and tells it so
        AssertNoReplica();
    }

    [Fact]
    public async Task AnUnauthenticatedHelloCannotInjectRecordsAndLearnsNothing()
    {
        Assert.Null((await Ship(ShippingAuthentication.SharedSecret(Secret), ShippingAuthentication.SharedSecret(Secret))).ExportError);
        long before;
        using (var rq = new MmapQueue(_replica)) before = rq.NextSequence;
        Guid id = RawPeer.QueueIdOf(_source);

        // The attacker knows the queue id and the replica's position, and speaks the protocol without the key.
        (Socket s, Socket r) = Loopback.Pair();
        using var attacker = new RawPeer(s);
        using (r)
        {
            Task<long> received = Loopback.Receive(_replica, r, new ReceiverOptions { Authentication = ShippingAuthentication.SharedSecret(Secret) });
            attacker.Send(RawPeer.Hello(64 << 10, id, 0));
            attacker.Send(RawPeer.Chunk(before, SegmentLayout.FirstRecordOffset, RawPeer.Record(before, "injected"u8)));
            (Exception? error, string answer) = await attacker.OutcomeOf(received, r);
            Assert.Contains("auth-mode:", answer);
            Assert.DoesNotContain(id.ToString(), answer);
            Assert.DoesNotContain(_replica, answer);
            Assert.Equal("auth-mode", Assert.IsType<ShippingProtocolException>(error).Code);
        }
        using (var rq = new MmapQueue(_replica)) Assert.Equal(before, rq.NextSequence);
    }

    /// <summary>Runs a keyed handshake as a sender holding the key; returns its HELLO and PROOF (a recording an attacker may later replay).</summary>
    private static (byte[] Hello, byte[] Proof) GenuineHandshake(RawPeer p, Guid id, ShippingAuthentication key)
    {
        byte[] hello = RawPeer.Hello(64 << 10, id, 0, WireProtocol.Auth.SharedSecret, System.Security.Cryptography.RandomNumberGenerator.GetBytes(32));
        p.Send(hello);
        byte[] challenge = p.Read(WireProtocol.ChallengeSize);
        var proof = new byte[WireProtocol.ProofSize];
        WireProtocol.WritePrefix(proof, WireProtocol.Message.Proof, WireProtocol.Auth.SharedSecret);
        key.SenderMac(hello, challenge).CopyTo(proof.AsSpan(WireProtocol.HandshakeField.ProofMac));
        p.Send(proof);
        return (hello, proof);
    }

    [Fact]
    public async Task AReplayedProofAndAReflectedReceiverMacAreRefused()
    {
        var key = ShippingAuthentication.SharedSecret(Secret);
        Guid id = RawPeer.QueueIdOf(_source);
        var options = new ReceiverOptions { Authentication = key };

        // A genuine handshake, recorded: the receiver answers it with RESUME.
        byte[] hello, proof;
        (Socket s1, Socket r1) = Loopback.Pair();
        using (var genuine = new RawPeer(s1))
        using (r1)
        {
            Task<long> received = Loopback.Receive(_replica, r1, options);
            (hello, proof) = GenuineHandshake(genuine, id, key);
            byte[] resume = genuine.Read(WireProtocol.ResumeSize);
            WireProtocol.CheckPrefix(resume, WireProtocol.Message.Resume, WireProtocol.Auth.SharedSecret);
            genuine.Send(RawPeer.Header(WireProtocol.Kind.End, 0, 0, 0));
            Assert.Equal(0, await received.WaitAsync(TimeSpan.FromSeconds(30)));
        }

        // Replay: the same HELLO and PROOF into a new session (the receiver's nonce is new).
        (Socket s2, Socket r2) = Loopback.Pair();
        using (var replay = new RawPeer(s2))
        using (r2)
        {
            Task<long> received = Loopback.Receive(_replica, r2, options);
            replay.Send(hello);
            Assert.Equal(WireProtocol.ChallengeSize, replay.Read(WireProtocol.ChallengeSize).Length);
            replay.Send(proof);
            (Exception? error, string answer) = await replay.OutcomeOf(received, r2);
            Assert.Contains("auth: authentication failed", answer);
            Assert.Equal("auth", Assert.IsType<ShippingProtocolException>(error).Code);
        }

        // Reflection: the receiver's own MAC sent back as the PROOF.
        (Socket s3, Socket r3) = Loopback.Pair();
        using (var reflect = new RawPeer(s3))
        using (r3)
        {
            Task<long> received = Loopback.Receive(_replica, r3, options);
            reflect.Send(RawPeer.Hello(64 << 10, id, 0, WireProtocol.Auth.SharedSecret, new byte[32]));
            byte[] challenge = reflect.Read(WireProtocol.ChallengeSize);
            var reflected = new byte[WireProtocol.ProofSize];
            WireProtocol.WritePrefix(reflected, WireProtocol.Message.Proof, WireProtocol.Auth.SharedSecret);
            challenge.AsSpan(WireProtocol.HandshakeField.ChallengeMac, WireProtocol.MacSize).CopyTo(reflected.AsSpan(WireProtocol.HandshakeField.ProofMac));
            reflect.Send(reflected);
            (Exception? error, string answer) = await reflect.OutcomeOf(received, r3);
            Assert.Contains("auth: authentication failed", answer);
            Assert.Equal("auth", Assert.IsType<ShippingProtocolException>(error).Code);
        }
    }

    [Fact]
    public async Task APeerOfTheOlderProtocolIsRefusedWithAMessageNamingBothVersionsBothWays()
    {
        Guid id = RawPeer.QueueIdOf(_source);
        // A protocol-2 sender (segment format 1): its HELLO carries protocol 2.
        (Socket s, Socket r) = Loopback.Pair();
        using (var old = new RawPeer(s))
        using (r)
        {
            Task<long> received = Loopback.Receive(_replica, r);
            byte[] v2 = RawPeer.Hello(64 << 10, id, 0)[..48];
            v2[WireProtocol.HandshakeField.Protocol] = 2;
            v2[WireProtocol.HandshakeField.SegmentFormat] = 1;
            v2[WireProtocol.HandshakeField.Message] = 0;
            old.Send(v2);
            (Exception? error, string answer) = await old.OutcomeOf(received, r);
            Assert.Contains("version: protocol version mismatch; this side speaks shipping protocol 3", answer);
            var e = Assert.IsType<ShippingProtocolException>(error);
            Assert.Equal("version", e.Code);
            Assert.Contains("expected protocol version 3, found 2", e.Message);
        }
        AssertNoReplica();

        // A protocol-2 receiver: reads 48 bytes of HELLO and answers with its own (protocol 2) error text.
        using var q = new MmapQueue(_source);
        (Socket s2, Socket r2) = Loopback.Pair();
        using (s2)
        using (var oldReceiver = new RawPeer(r2))
        {
            Task<long> sent = q.ExportToAsync(s2);
            byte[] hello = oldReceiver.Read(48);
            Assert.Equal(3, hello[WireProtocol.HandshakeField.Protocol]);
            byte[] text = "version: protocol version mismatch; this side speaks shipping protocol 2"u8.ToArray();
            oldReceiver.Send([.. RawPeer.Header(WireProtocol.Kind.Error, text.Length, 0, 0), .. text]);
            var e = Assert.IsType<ShippingProtocolException>(await Record.ExceptionAsync(() => sent.WaitAsync(TimeSpan.FromSeconds(30))));
            Assert.Equal("version", e.Code);
            Assert.Contains("refused the session: version: protocol version mismatch; this side speaks shipping protocol 2 " +
                            "(this side speaks shipping protocol 3)", e.Message);
        }
    }

    [Fact]
    public async Task PlainTcpIsRefusedOnANonLoopbackAddressUnlessInsecureOnPurpose()
    {
        using var listener = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        listener.Bind(new IPEndPoint(IPAddress.Any, 0));
        listener.Listen(1);
        var e = await Assert.ThrowsAsync<InvalidOperationException>(() => new QueueReceiver(_replica).ServeAsync(listener));
        Assert.Contains("not a loopback address", e.Message);

        using var cts = new CancellationTokenSource(TimeSpan.FromMilliseconds(300));
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() =>
            new QueueReceiver(_replica, new ReceiverOptions { Authentication = ShippingAuthentication.Insecure }).ServeAsync(listener, cancellationToken: cts.Token));
    }

    [Fact]
    public void ASecretShorterThanSixteenBytesIsRejected() =>
        Assert.Throws<ArgumentException>(() => ShippingAuthentication.SharedSecret("too short"u8));
}
