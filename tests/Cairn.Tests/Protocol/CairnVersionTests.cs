using System.Reflection;
using System.Text.RegularExpressions;
using Cairn.Client;
using Cairn.Protocol;
using Cairn.Protocol.Messages;
using Cairn.Protocol.Schema;
using Cairn.Tests.Client;

namespace Cairn.Tests.Protocol;

/// <summary>One version, derived from the build, in every assembly and in what Cairn tells Kafka brokers about itself.</summary>
public sealed class CairnVersionTests
{
    // Kafka's rule for ApiVersions' ClientSoftwareName and ClientSoftwareVersion (brokers reject other values).
    private static readonly Regex KafkaSoftwareField = new("^[a-zA-Z0-9](?:[a-zA-Z0-9\\-.]*[a-zA-Z0-9])?$");

    [Fact]
    public void Every_Cairn_assembly_carries_the_same_build_version()
    {
        Assert.Matches(@"^\d+\.\d+\.\d+([-.][0-9A-Za-z.-]+)?(\+[0-9a-f]{7,40}(\.dirty)?)?$", CairnVersion.Value);
        foreach (var type in new[] { typeof(Cairn.Broker.KafkaBroker), typeof(KafkaAdminClient), typeof(Cairn.Storage.LogConfig), typeof(Cairn.Offsets.Offset) })
            Assert.Equal(CairnVersion.Value, type.Assembly.GetCustomAttribute<AssemblyInformationalVersionAttribute>()?.InformationalVersion);
    }

    [Theory]
    [InlineData("0.1.0+ce3b2f9", "0.1.0-ce3b2f9")]
    [InlineData("1.2.0-rc.1+ce3b2f9.dirty", "1.2.0-rc.1-ce3b2f9.dirty")]
    [InlineData("0.1.0-dev", "0.1.0-dev")]
    [InlineData("+", "unknown")]
    public void The_software_version_follows_Kafkas_pattern(string version, string expected)
    {
        Assert.Equal(expected, CairnVersion.ToSoftwareVersion(version));
        Assert.Matches(KafkaSoftwareField, CairnVersion.ToSoftwareVersion(version));
    }

    [Fact]
    public async Task The_client_names_itself_cairn_with_the_build_version_in_ApiVersions()
    {
        await using var fake = new FakeBroker();
        fake.On<ListGroupsRequest, ListGroupsResponse>(new VersionRange(0, 4), (_, _) => new());
        await using var admin = new KafkaAdminClient(new KafkaClientOptions { BootstrapServers = $"127.0.0.1:{fake.Port}", RequestTimeout = TimeSpan.FromSeconds(5) });
        await admin.ListGroupsAsync();
        var (_, version, request) = fake.Received.First(r => r.Key == ApiKey.ApiVersions);
        Assert.True(version >= 3, $"ApiVersions v{version} has no software fields");
        var apiVersions = (ApiVersionsRequest)request;
        Assert.Equal(("cairn", CairnVersion.SoftwareVersion), (apiVersions.ClientSoftwareName, apiVersions.ClientSoftwareVersion));
        Assert.Equal(CairnVersion.Value.Replace('+', '-'), apiVersions.ClientSoftwareVersion);
        Assert.Matches(KafkaSoftwareField, apiVersions.ClientSoftwareVersion);
    }
}
