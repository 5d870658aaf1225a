using System.Diagnostics;
using Cairn.Client;
using Cairn.Protocol;
using Cairn.Testing;
using Xunit.Abstractions;
using ProcessOptions = Cairn.Testing.BrokerOptions;

namespace Cairn.Tests.Broker;

/// <summary>
/// Issue 10: a broker process whose fd limit is 1024 takes three CreateTopics of 100 partitions (which used to need
/// 900 descriptors for the partitions alone), produces to and fetches from every partition and keeps serving, within
/// log.max.open.files; a CreateTopics of 100000 partitions is refused by max.partitions and creates nothing.
/// </summary>
public sealed class FileLimitProcessTests(ITestOutputHelper output)
{
    private const int FdLimit = 1024;
    private const int OpenFilesBudget = 256;

    private static int CountFds(int pid) => Directory.EnumerateFileSystemEntries($"/proc/{pid}/fd").Count();

    [Fact]
    public async Task Three_hundred_partitions_under_ulimit_1024_serve_and_100000_partitions_are_refused()
    {
        if (!OperatingSystem.IsLinux()) return; // /proc and prlimit
        await using var broker = await BrokerProcess.StartAsync(new ProcessOptions
        {
            AdminListen = "none",
            Settings = new Dictionary<string, string> { ["log.max.open.files"] = OpenFilesBudget.ToString(System.Globalization.CultureInfo.InvariantCulture) },
        });
        int pid = broker.Pid!.Value;
        await ChildProcess.RunCheckedAsync("prlimit", ["--pid", pid.ToString(System.Globalization.CultureInfo.InvariantCulture), $"--nofile={FdLimit}:{FdLimit}"]);
        int before = CountFds(pid);

        var client = new KafkaClientOptions { BootstrapServers = broker.Bootstrap };
        await using var admin = new KafkaAdminClient(client);
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(120));
        string[] topics = ["fd-a", "fd-b", "fd-c"];
        foreach (var t in topics)
            await admin.CreateTopicsAsync([new NewTopic(t, 100, 1)], cancellationToken: cts.Token);
        int afterCreate = CountFds(pid);

        var all = topics.SelectMany(t => Enumerable.Range(0, 100).Select(p => new TopicPartition(t, p))).ToList();
        await using (var producer = new KafkaProducer(client, new ProducerOptions { Linger = TimeSpan.FromMilliseconds(5) }))
        {
            var sends = all.Select(tp => producer.ProduceAsync(tp, Message.FromStrings("k", $"{tp.Topic}/{tp.Partition}"), cts.Token)).ToList();
            var delivered = await Task.WhenAll(sends).WaitAsync(cts.Token);
            Assert.All(delivered, d => Assert.Equal(0, d.Offset));
        }
        int afterProduce = CountFds(pid);

        var seen = new HashSet<string>(StringComparer.Ordinal);
        await using (var consumer = new KafkaConsumer(client, new ConsumerOptions { MaxWait = TimeSpan.FromMilliseconds(100) }))
        {
            consumer.Assign(all);
            foreach (var tp in all) await consumer.SeekAsync(tp, Cairn.Offsets.Offset.Sequence(0), cts.Token);
            var clock = Stopwatch.StartNew();
            while (seen.Count < all.Count && clock.Elapsed < TimeSpan.FromSeconds(60))
            {
                var r = await consumer.ConsumeAsync(TimeSpan.FromSeconds(5), cts.Token);
                if (r is null) continue;
                Assert.Equal($"{r.Topic}/{r.Partition}", r.ValueAsString());
                seen.Add(r.ValueAsString()!);
            }
        }
        Assert.Equal(all.Count, seen.Count);
        int afterFetch = CountFds(pid);

        // max.partitions (default 10000): refused with POLICY_VIOLATION naming the limit, validate-only alike; nothing created.
        foreach (bool validateOnly in new[] { true, false })
        {
            var e = await Assert.ThrowsAsync<KafkaOperationException>(() =>
                admin.CreateTopicsAsync([new NewTopic("big", 100_000, 1)], validateOnly, cts.Token));
            Assert.Equal(ErrorCode.PolicyViolation, e.Failures["big"].Error);
            Assert.Contains("max.partitions", e.Failures["big"].Message);
        }
        var listed = await admin.ListTopicsAsync(cancellationToken: cts.Token);
        Assert.DoesNotContain(listed, t => t.Name == "big");
        Assert.False(Directory.Exists(Path.Combine(broker.DataDir, "big-0")));
        Assert.Equal(300, listed.Where(t => topics.Contains(t.Name)).Sum(t => t.PartitionCount));

        // Still serving, and still within the limit.
        Assert.True(broker.IsRunning);
        var more = await admin.CreateTopicsAsync([new NewTopic("fd-after", 1, 1)], cancellationToken: cts.Token);
        Assert.Single(more);
        int end = CountFds(pid);
        output.WriteLine($"fds: at start {before}, after 3x100 partitions {afterCreate}, after produce {afterProduce}, after fetch {afterFetch}, " +
                         $"at end {end}; log.max.open.files={OpenFilesBudget}, limit {FdLimit}");
        Assert.All(new[] { afterCreate, afterProduce, afterFetch, end }, n => Assert.InRange(n, 1, FdLimit - 1));
        // The segment files are bounded by the budget: 300 partitions would hold 900 descriptors otherwise.
        Assert.InRange(Math.Max(afterProduce, afterFetch), 1, before + OpenFilesBudget + 64);
    }
}
