using System.Security.Cryptography;

namespace MmapQueues.Shipping;

internal sealed partial class Exporter
{
    /// <summary>
    /// HELLO out; in shared-secret mode CHALLENGE in (the receiver's MAC checked) and PROOF out; then
    /// RESUME (or ERROR) in. Each read waits at most the handshake timeout.
    /// </summary>
    private async ValueTask<WireProtocol.Resume> HandshakeAsync(long startBase)
    {
        TimeSpan timeout = _options.HandshakeTimeout;
        WireProtocol.Auth auth = _conn.Auth;
        var hello = new byte[WireProtocol.HelloSize];
        var nonce = new byte[WireProtocol.NonceSize];
        if (auth == WireProtocol.Auth.SharedSecret) RandomNumberGenerator.Fill(nonce);
        WireProtocol.WriteHello(hello, new WireProtocol.Hello(_queue.SegmentSize, _queue.QueueId, startBase), auth, nonce);
        await _conn.WriteAsync(hello, timeout, _sync, _cancel, "HELLO").ConfigureAwait(false);

        if (auth == WireProtocol.Auth.SharedSecret)
        {
            byte[] challenge = await ReadHandshakeAsync(WireProtocol.Message.Challenge).ConfigureAwait(false);
            ShippingAuthentication key = _options.Authentication!;
            byte[] expected = key.ReceiverMac(hello, challenge.AsSpan(0, WireProtocol.HandshakeField.ChallengeMac));
            if (!ShippingAuthentication.MacEquals(expected, challenge.AsSpan(WireProtocol.HandshakeField.ChallengeMac, WireProtocol.MacSize)))
                throw Refuse(new ShippingProtocolException($"Shipping {_queue.Path} to {_conn.Peer}: the receiver's CHALLENGE carries a wrong MAC: " +
                                                           "it does not hold the shared secret.", ShippingErrorCode.Auth));
            var proof = new byte[WireProtocol.ProofSize];
            WireProtocol.WritePrefix(proof, WireProtocol.Message.Proof, auth);
            key.SenderMac(hello, challenge).CopyTo(proof.AsSpan(WireProtocol.HandshakeField.ProofMac));
            await _conn.WriteAsync(proof, timeout, _sync, _cancel, "PROOF").ConfigureAwait(false);
        }

        byte[] b = await ReadHandshakeAsync(WireProtocol.Message.Resume).ConfigureAwait(false);
        WireProtocol.Resume r;
        try
        {
            r = WireProtocol.ReadResume(b, _queue.SegmentSize);
        }
        catch (ShippingProtocolException e)
        {
            throw Refuse(e);
        }
        if (r.QueueId != _queue.QueueId)
            throw Refuse(ShippingProtocolException.Field("RESUME", WireProtocol.HandshakeField.ResumeQueueId, $"queue id {_queue.QueueId} (the source)", $"{r.QueueId}", ShippingErrorCode.Source));
        return r;
    }

    /// <summary>Reads a handshake message of the expected type; a bad one is refused to the peer, its ERROR thrown.</summary>
    private async ValueTask<byte[]> ReadHandshakeAsync(WireProtocol.Message expected)
    {
        try
        {
            return await _conn.ReadHandshakeAsync(expected, _queue.SegmentSize, _options.HandshakeTimeout, _sync, _cancel, $"Shipping {_queue.Path}").ConfigureAwait(false);
        }
        catch (ShippingProtocolException e) when (!e.FromPeer)
        {
            throw Refuse(e);
        }
    }

    /// <summary>Tells the peer the code of <paramref name="e"/> (never its details) and returns it to throw.</summary>
    private ShippingProtocolException Refuse(ShippingProtocolException e)
    {
        _conn.TrySendError(e.Code);
        return e;
    }
}
