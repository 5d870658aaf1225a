namespace Cairn.Broker.Services;

/// <summary>Who this broker is to its clients: node id, the address it advertises, and the cluster it belongs to.</summary>
internal sealed record ClusterIdentity(int NodeId, string ClusterId, string AdvertisedHost, int AdvertisedPort);
