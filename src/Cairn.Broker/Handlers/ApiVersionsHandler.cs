using Cairn.Protocol;
using Cairn.Protocol.Messages;
using Cairn.Protocol.Schema;

namespace Cairn.Broker.Handlers;

/// <summary>Advertises exactly the handlers that exist and the versions they declare.</summary>
public sealed class ApiVersionsHandler(Func<HandlerRegistry> registry) : ApiHandler<ApiVersionsRequest, ApiVersionsResponse>
{
    public override VersionRange Versions => new(0, 4);

    protected override ValueTask<ApiVersionsResponse?> HandleAsync(RequestContext context, ApiVersionsRequest request, CancellationToken cancellationToken)
    {
        var response = Build(registry());
        return ValueTask.FromResult<ApiVersionsResponse?>(response);
    }

    public static ApiVersionsResponse UnsupportedVersionResponse(HandlerRegistry handlers)
    {
        var response = Build(handlers);
        response.ErrorCode = (short)ErrorCode.UnsupportedVersion;
        return response;
    }

    private static ApiVersionsResponse Build(HandlerRegistry handlers) => new()
    {
        ApiKeys = handlers.All
            .OrderBy(h => h.ApiKey)
            .Select(h => new ApiVersionsResponse.ApiVersion { ApiKey = (short)h.ApiKey, MinVersion = h.Versions.Min, MaxVersion = h.Versions.Max })
            .ToList(),
    };
}
