using Cairn.Protocol;
using Cairn.Protocol.Primitives;
using Cairn.Protocol.Schema;

namespace Cairn.Broker.Handlers;

/// <summary>Serves one Kafka API. The versions a handler declares are exactly what ApiVersions advertises.</summary>
internal interface IApiHandler
{
    ApiKey ApiKey { get; }
    VersionRange Versions { get; }

    /// <summary>Decodes and handles the request body; returns the response, or null when none is sent (acks=0).</summary>
    ValueTask<object?> HandleAsync(RequestContext context, KafkaReader body, CancellationToken cancellationToken);

    void WriteResponse(KafkaWriter writer, object response, short version);

    /// <summary>
    /// The response for a request whose handling failed: <paramref name="error"/> in every error code it has (see
    /// <see cref="ErrorResponses"/>); null when the request takes no response. The body is decoded again: failures
    /// are rare, and this keeps the one decode on the normal path inside <see cref="HandleAsync"/>.
    /// </summary>
    object? ErrorResponse(RequestContext context, KafkaReader body, ErrorCode error);
}

/// <summary>Typed base: the request and response types carry the wire description; the handler only does the work.</summary>
internal abstract class ApiHandler<TRequest, TResponse> : IApiHandler
    where TRequest : class, new()
    where TResponse : class, new()
{
    public ApiKey ApiKey { get; } = MessageCatalog.Of<TRequest>().ApiKey;

    /// <summary>The versions this handler serves; must lie within the message's declared versions.</summary>
    public abstract VersionRange Versions { get; }

    protected abstract ValueTask<TResponse?> HandleAsync(RequestContext context, TRequest request, CancellationToken cancellationToken);

    /// <summary>Handles an already decoded request, as the connection does after decoding: the entry point of handler tests.</summary>
    internal ValueTask<TResponse?> HandleDecodedAsync(RequestContext context, TRequest request, CancellationToken cancellationToken) =>
        HandleAsync(context, request, cancellationToken);

    async ValueTask<object?> IApiHandler.HandleAsync(RequestContext context, KafkaReader body, CancellationToken cancellationToken)
    {
        var request = MessageSerializer.Read<TRequest>(body, context.Header.ApiVersion);
        return await HandleAsync(context, request, cancellationToken);
    }

    void IApiHandler.WriteResponse(KafkaWriter writer, object response, short version) =>
        MessageSerializer.Write(writer, (TResponse)response, version);

    /// <summary>The response reporting <paramref name="error"/> for every part of the request; null when the request takes none.</summary>
    protected virtual TResponse? ErrorResponse(RequestContext context, TRequest request, ErrorCode error) =>
        ErrorResponses.For<TRequest, TResponse>(request, context.Version, error);

    object? IApiHandler.ErrorResponse(RequestContext context, KafkaReader body, ErrorCode error) =>
        ErrorResponse(context, MessageSerializer.Read<TRequest>(body, context.Version), error);
}

/// <summary>What a handler knows about the request it serves.</summary>
internal sealed record RequestContext(RequestHeader Header, ConnectionInfo Connection)
{
    public short Version => Header.ApiVersion;
}

/// <summary>The client connection a request came on; RemoteHost is formatted as Kafka reports client hosts ("/127.0.0.1").</summary>
internal sealed record ConnectionInfo(long Id, string RemoteEndPoint, string RemoteHost);
