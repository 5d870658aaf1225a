using Cairn.Protocol;
using Cairn.Protocol.Messages;
using Cairn.Protocol.Schema;

namespace Cairn.Broker.Handlers;

/// <summary>Advertises exactly the handlers that exist (<paramref name="others"/> and itself) and the versions they declare.</summary>
internal sealed class ApiVersionsHandler(IReadOnlyList<IApiHandler> others) : ApiHandler<ApiVersionsRequest, ApiVersionsResponse>
{
    public override VersionRange Versions => new(0, 4);

    protected override ValueTask<ApiVersionsResponse?> HandleAsync(RequestContext context, ApiVersionsRequest request, CancellationToken cancellationToken)
    {
        var response = Build(others.Append(this));
        return ValueTask.FromResult<ApiVersionsResponse?>(response);
    }

    public static ApiVersionsResponse UnsupportedVersionResponse(HandlerRegistry handlers)
    {
        var response = Build(handlers.All);
        response.ErrorCode = (short)ErrorCode.UnsupportedVersion;
        return response;
    }

    private static ApiVersionsResponse Build(IEnumerable<IApiHandler> handlers) => new()
    {
        ApiKeys = handlers
            .OrderBy(h => h.ApiKey)
            .Select(h => new ApiVersionsResponse.ApiVersion { ApiKey = (short)h.ApiKey, MinVersion = h.Versions.Min, MaxVersion = h.Versions.Max })
            .ToList(),
    };
}
