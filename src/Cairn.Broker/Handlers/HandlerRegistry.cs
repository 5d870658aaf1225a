using Cairn.Protocol;
using Cairn.Protocol.Schema;

namespace Cairn.Broker.Handlers;

/// <summary>Dispatch table indexed by API key. Checks at start-up that each handler's versions exist in the message declarations.</summary>
internal sealed class HandlerRegistry
{
    private readonly IApiHandler?[] _byKey = new IApiHandler?[128];

    public HandlerRegistry(IEnumerable<IApiHandler> handlers)
    {
        foreach (var h in handlers)
        {
            var declared = MessageCatalog.Request(h.ApiKey)?.Versions ?? throw new InvalidOperationException($"{h.ApiKey} has no declared request");
            if (h.Versions.Intersect(declared) != h.Versions)
                throw new InvalidOperationException($"{h.GetType().Name} serves {h.Versions} but {h.ApiKey} is declared for {declared}");
            var response = MessageCatalog.Response(h.ApiKey);
            if (response is null || response.Versions.Intersect(h.Versions) != h.Versions)
                throw new InvalidOperationException($"{h.ApiKey} response is not declared for {h.Versions}");
            // Error responses are derived from the declarations (EchoesAttribute): a misspelt echo fails here, not at the first failure.
            ErrorResponses.Validate(MessageCatalog.Request(h.ApiKey)!.Type, response.Type);
            _byKey[(int)h.ApiKey] = h;
        }
    }

    public IApiHandler? Get(ApiKey key) => (uint)key < (uint)_byKey.Length ? _byKey[(int)key] : null;

    public IEnumerable<IApiHandler> All => _byKey.Where(h => h is not null)!;
}
