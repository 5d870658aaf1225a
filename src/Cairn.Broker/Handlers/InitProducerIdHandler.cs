using Cairn.Protocol;
using Cairn.Protocol.Messages;
using Cairn.Protocol.Schema;

namespace Cairn.Broker.Handlers;

/// <summary>
/// InitProducerId for idempotent producers: a fresh id with epoch 0, or (v3+, KIP-360) the same id with
/// the next epoch when the producer presents its current one. Transactions are not offered.
/// </summary>
internal sealed class InitProducerIdHandler(ProducerIdAllocator producerIds) : ApiHandler<InitProducerIdRequest, InitProducerIdResponse>
{
    public override VersionRange Versions => new(0, 5);

    protected override ValueTask<InitProducerIdResponse?> HandleAsync(RequestContext context, InitProducerIdRequest request, CancellationToken cancellationToken)
    {
        var response = new InitProducerIdResponse();
        if (request.TransactionalId is not null)
        {
            response.ErrorCode = (short)ErrorCode.TransactionalIdAuthorizationFailed;
            return ValueTask.FromResult<InitProducerIdResponse?>(response);
        }
        if (request.ProducerId >= 0 && request.ProducerEpoch >= 0 && request.ProducerEpoch < short.MaxValue - 1)
        {
            response.ProducerId = request.ProducerId;
            response.ProducerEpoch = (short)(request.ProducerEpoch + 1);
        }
        else
        {
            response.ProducerId = producerIds.Allocate();
            response.ProducerEpoch = 0;
        }
        return ValueTask.FromResult<InitProducerIdResponse?>(response);
    }
}
