using Cairn.Broker.Handlers;

namespace Cairn.Tests.Broker;

/// <summary>The small identity files next to the logs (cluster-id, producer-ids) survive restarts and are never silently replaced.</summary>
public sealed class BrokerIdentityFilesTests
{
    [Fact]
    public async Task Cluster_id_is_written_once_and_kept_across_restarts()
    {
        var dataDir = Path.Combine(Path.GetTempPath(), "cairn-test-" + Guid.NewGuid().ToString("N"));
        var h1 = await BrokerHarness.StartAsync(dataDir: dataDir);
        await h1.Broker.DisposeAsync(); // stop, keeping the data directory
        var first = await File.ReadAllTextAsync(Path.Combine(dataDir, "cluster-id"));
        Assert.Matches("^[A-Za-z0-9_-]{22}$", first);
        Assert.Empty(Directory.GetFiles(dataDir, "*.tmp"));
        await using var h2 = await BrokerHarness.StartAsync(dataDir: dataDir);
        Assert.Equal(first, await File.ReadAllTextAsync(Path.Combine(dataDir, "cluster-id")));
    }

    [Fact]
    public async Task An_empty_cluster_id_file_is_refused_with_a_clear_error_not_replaced()
    {
        var dataDir = Path.Combine(Path.GetTempPath(), "cairn-test-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(dataDir);
        var path = Path.Combine(dataDir, "cluster-id");
        await File.WriteAllTextAsync(path, "");
        try
        {
            var e = await Assert.ThrowsAsync<InvalidDataException>(async () => { await using var _ = await BrokerHarness.StartAsync(dataDir: dataDir); });
            Assert.Contains("cluster-id is empty", e.Message);
            Assert.Equal("", await File.ReadAllTextAsync(path));
        }
        finally
        {
            Directory.Delete(dataDir, recursive: true);
        }
    }

    [Fact]
    public void Producer_ids_are_not_handed_out_again_after_a_restart()
    {
        var dataDir = Path.Combine(Path.GetTempPath(), "cairn-test-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(dataDir);
        try
        {
            var first = new ProducerIdAllocator(dataDir);
            var a = Enumerable.Range(0, 3).Select(_ => first.Allocate()).ToList();
            var second = new ProducerIdAllocator(dataDir);
            var b = second.Allocate();
            Assert.True(b > a.Max(), $"after a restart id {b} was handed out, but {string.Join(",", a)} were before");
            Assert.Equal(["producer-ids"], Directory.GetFiles(dataDir).Select(Path.GetFileName));
        }
        finally
        {
            Directory.Delete(dataDir, recursive: true);
        }
    }
}
