using System.CommandLine;
using System.Text.Json;
using Cairn.Cli;
using Cairn.Protocol;
using Cairn.Tests.Broker;

namespace Cairn.Tests.Cli;

/// <summary>
/// `cairn storage check|repair` on a broker's data directory with a gap: refused while the broker runs, the check finds
/// the gap, the repair moves the later segments aside, and the restarted broker serves the partition again with the
/// records before the gap byte for byte.
/// </summary>
public sealed class StorageCommandTests
{
    private static async Task<(int Code, string Out, string Err)> CairnAsync(params string[] args)
    {
        var root = new RootCommand { StorageCommand.Create() };
        var output = new StringWriter();
        var error = new StringWriter();
        int code = await root.Parse(args).InvokeAsync(new InvocationConfiguration { Output = output, Error = error });
        return (code, output.ToString(), error.ToString());
    }

    [Fact]
    public async Task Check_finds_the_gap_repair_truncates_at_it_and_the_broker_serves_the_partition_again_byte_identical()
    {
        using var data = await GappedDataDirectory.CreateAsync();
        var kept = File.ReadAllBytes(data.SegmentFile(0, 0));
        data.RemoveSegment(0, 30);

        var running = await OfflinePartitionBrokerTests.StartAsync(data.Path);
        var (code, _, err) = await CairnAsync("storage", "check", "--data-dir", data.Path);
        Assert.Equal(1, code);
        Assert.Contains("in use", err, StringComparison.Ordinal);
        (code, _, err) = await CairnAsync("storage", "repair", "--truncate-at-gap", "--data-dir", data.Path);
        Assert.Equal(1, code);
        Assert.Contains("stop the broker first", err, StringComparison.Ordinal);
        Assert.False(File.Exists(data.SegmentFile(0, 30)));
        Assert.True(File.Exists(data.SegmentFile(0, 60))); // the refused repair touched nothing
        await running.Broker.DisposeAsync();

        (code, var output, _) = await CairnAsync("storage", "check", "--data-dir", data.Path);
        Assert.Equal(1, code);
        Assert.Contains("t-0: OFFLINE, 4 segment(s), log start 0, log end 120, consistent up to 30", output, StringComparison.Ordinal);
        Assert.Contains("t-1: ok, 5 segment(s), log start 0, log end 120", output, StringComparison.Ordinal);
        Assert.Contains("problem: t-0: gap: segment 0 ends at offset 30 but the next segment starts at 60", output, StringComparison.Ordinal);

        (code, output, _) = await CairnAsync("storage", "check", "--data-dir", data.Path, "--json");
        Assert.Equal(1, code);
        using (var doc = JsonDocument.Parse(output))
        {
            Assert.False(doc.RootElement.GetProperty("healthy").GetBoolean());
            Assert.False(doc.RootElement.GetProperty("report").TryGetProperty("offlinePartitions", out _)); // listed once, in partitions
            var p0 = doc.RootElement.GetProperty("report").GetProperty("partitions")[0];
            Assert.True(p0.GetProperty("offline").GetBoolean());
            var gap = Assert.Single(p0.GetProperty("gaps").EnumerateArray());
            Assert.Equal((0, 30, 60), (gap.GetProperty("segmentBaseOffset").GetInt64(), gap.GetProperty("endsAt").GetInt64(), gap.GetProperty("nextSegmentBaseOffset").GetInt64()));
        }

        (code, output, err) = await CairnAsync("storage", "repair", "--data-dir", data.Path);
        Assert.Equal(2, code);
        Assert.Contains("--truncate-at-gap", err, StringComparison.Ordinal);

        (code, output, err) = await CairnAsync("storage", "repair", "--truncate-at-gap", "--data-dir", data.Path, "--topic", "t", "--partition", "0");
        Assert.True(code == 0, err);
        foreach (var b in new[] { 60L, 90, 120 })
            Assert.Contains($"{data.SegmentFile(0, b)} -> ", output, StringComparison.Ordinal);
        Assert.Contains("t-0: log end offset 120 -> 30", output, StringComparison.Ordinal);
        Assert.Single(Directory.GetDirectories(Path.Combine(data.Path, "t-0"), ".truncated-*"));

        (code, output, _) = await CairnAsync("storage", "check", "--data-dir", data.Path);
        Assert.True(code == 0, output);
        Assert.Contains("Healthy.", output, StringComparison.Ordinal);

        await using var broker = await OfflinePartitionBrokerTests.StartAsync(data.Path);
        using var client = await broker.ConnectAsync();
        var p = (await OfflinePartitionBrokerTests.MetadataAsync(client)).Topics[0].Partitions.Single(x => x.PartitionIndex == 0);
        Assert.Equal(((short)ErrorCode.None, broker.Broker.Cluster.NodeId), (p.ErrorCode, p.LeaderId));
        var latest = await OfflinePartitionBrokerTests.LatestAsync(client);
        Assert.Equal(((short)ErrorCode.None, 30L), (latest[0].ErrorCode, latest[0].Offset));
        var read = new List<byte>();
        for (int i = 0; i < 10 && read.Count < kept.Length; i++)
        {
            var fetched = await OfflinePartitionBrokerTests.FetchAsync(client, 0, Batches.ReadAll(new Cairn.Protocol.Records.MemoryRecords(read.ToArray())).Count);
            Assert.Equal((short)ErrorCode.None, fetched.ErrorCode);
            read.AddRange(OfflinePartitionBrokerTests.Bytes(fetched.Records));
        }
        Assert.Equal(kept, read.ToArray());
        Assert.Equal((short)ErrorCode.None, await OfflinePartitionBrokerTests.ProduceAsync(client, 0));
        Assert.Equal(31L, (await OfflinePartitionBrokerTests.LatestAsync(client))[0].Offset);
    }

    [Fact]
    public async Task Usage_errors_exit_2_and_a_missing_directory_is_named()
    {
        var missing = Path.Combine(Path.GetTempPath(), "cairn-no-such-" + Guid.NewGuid().ToString("N"));
        var (code, _, err) = await CairnAsync("storage", "check", "--data-dir", missing);
        Assert.Equal(2, code);
        Assert.Contains("no such data directory", err, StringComparison.Ordinal);
        (code, _, err) = await CairnAsync("storage", "repair", "--truncate-at-gap", "--partition", "0", "--data-dir", missing);
        Assert.Equal(2, code);
        Assert.Contains("--partition needs --topic", err, StringComparison.Ordinal);
        Assert.False(Directory.Exists(missing));
    }
}
