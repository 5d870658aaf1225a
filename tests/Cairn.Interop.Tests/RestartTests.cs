using System.Diagnostics;
using System.Text;
using System.Text.Json;
using Cairn.Interop.Tests.Clients;
using Cairn.Interop.Tests.Infrastructure;

namespace Cairn.Interop.Tests;

/// <summary>Durability across a SIGKILL mid-stream and across graceful restarts.</summary>
public sealed class RestartTests
{
    [Fact]
    public async Task Acknowledged_records_survive_SIGKILL_mid_stream()
    {
        await using var broker = await BrokerProcess.StartAsync(new BrokerOptions { FlushOnAck = true, DefaultPartitions = 1 });
        await broker.WithBrokerLogAsync(async () =>
        {
            var b = broker.Bootstrap;
            var topic = Topics.Unique("crash");

            // A bounded stream (<= 20000 records, <= 25 s, ~2000/s) with acks=all; each ack is
            // printed as {"o":offset,"v":value} the moment its delivery callback runs.
            await using var producer = ChildProcess.Start(Paths.Python,
            [
                Path.Combine(Paths.DriversDir, "python", "ck_client.py"), "crash-produce", "--bootstrap", b, "--topic", topic,
                "--max", "20000", "--max-seconds", "25", "--rate", "2000", "--pad", "100",
            ]);
            var clock = Stopwatch.StartNew();
            while (producer.StdoutLineCount < 1500)
            {
                if (producer.HasExited) throw new InteropFailureException($"crash producer exited early. {producer.Describe("exited")}");
                if (clock.Elapsed > TimeSpan.FromSeconds(40))
                    throw new TimeoutException($"only {producer.StdoutLineCount} acks after 40s. {producer.Describe()}");
                await Task.Delay(20);
            }

            broker.Kill(); // SIGKILL mid-stream
            await Task.Delay(500);
            producer.Kill();
            await producer.WaitForExitAsync(TimeSpan.FromSeconds(15));

            var acks = new Dictionary<long, string>();
            foreach (var e in JsonLines.Parse(producer.StdoutLinesSnapshot()))
            {
                if (!e.TryGetProperty("o", out var o)) continue;
                var offset = o.GetInt64();
                var value = e.GetProperty("v").GetString()!;
                if (acks.TryGetValue(offset, out var other))
                    throw new InteropFailureException($"offset {offset} acknowledged twice: '{other}' and '{value}'");
                acks[offset] = value;
            }
            Assert.True(acks.Count >= 1500, $"{acks.Count} acks parsed");

            await broker.RestartAsync();

            var high = (await KafkaClients.Confluent.CommandAsync("offsets", b, "--topic", topic, "--partitions", "0"))
                .GetProperty("partitions").EnumerateArray().Single().GetProperty("high").GetInt64();
            Assert.True(high >= acks.Count && high > acks.Keys.Max(),
                $"after restart the high watermark is {high}, but {acks.Count} records were acknowledged up to offset {acks.Keys.Max()}");

            var got = await KafkaClients.Confluent.ConsumeAsync(b, topic, (int)high, StartAt.Earliest, partitions: [0],
                timeout: TimeSpan.FromSeconds(60));
            var problems = new List<string>();
            for (var i = 0; i < got.Records.Count && problems.Count < 10; i++)
                if (got.Records[i].Offset != i)
                    problems.Add($"record #{i} has offset {got.Records[i].Offset} (offsets must be 0..{high - 1} with no gap or duplicate)");
            if (got.Records.Count != high) problems.Add($"consumed {got.Records.Count} records, high watermark {high}");
            var byOffset = got.Records.GroupBy(r => r.Offset).ToDictionary(g => g.Key, g => g.First());
            foreach (var (offset, value) in acks.OrderBy(kv => kv.Key))
            {
                if (problems.Count >= 20) break;
                if (!byOffset.TryGetValue(offset, out var r))
                    problems.Add($"acknowledged offset {offset} ('{value}') is missing");
                else if (Encoding.ASCII.GetString(r.Value ?? []) != value)
                    problems.Add($"offset {offset}: acknowledged '{value}', found '{Encoding.ASCII.GetString(r.Value ?? [])}'");
            }
            RecordAssert.NoProblems(problems, $"{acks.Count} acks, high watermark {high}\n{got.Diagnostics[..Math.Min(2000, got.Diagnostics.Length)]}");

            // Producing continues at the next offset.
            var more = TestData.Numbered("after-crash", 10, partition: 0);
            var produced = await KafkaClients.Confluent.ProduceAsync(b, topic, more);
            var expected = RecordAssert.Expect(more, produced, firstOffset: high);
            var tail = await KafkaClients.KafkaPython.ConsumeAsync(b, topic, 10, StartAt.Offset(high), partitions: [0]);
            RecordAssert.NoProblems(RecordAssert.Compare("after crash restart", expected, tail, KafkaClients.KafkaPython));
        });
    }

    [Fact]
    public async Task Records_survive_graceful_restarts_and_offsets_continue()
    {
        await using var broker = await BrokerProcess.StartAsync(new BrokerOptions { DefaultPartitions = 1 });
        await broker.WithBrokerLogAsync(async () =>
        {
            var b = broker.Bootstrap;
            var topic = Topics.Unique("restart");
            var baseTs = TestData.RecentBaseTimestamp();
            var exitCodes = new List<int>();

            var first = TestData.Mixed(KafkaClients.Confluent.Caps, 200, seed: 42, partition: 0, baseTimestamp: baseTs);
            var expected = RecordAssert.Expect(first, await KafkaClients.Confluent.ProduceAsync(b, topic, first, "lz4"));
            var second = TestData.Mixed(KafkaClients.KafkaPython.Caps, 100, seed: 43, partition: 0, baseTimestamp: baseTs + 10_000);
            expected.AddRange(RecordAssert.Expect(second, await KafkaClients.KafkaPython.ProduceAsync(b, topic, second, "gzip"), firstOffset: 200));

            exitCodes.Add(await broker.StopAsync());
            await broker.RestartAsync();

            var got = await KafkaClients.Confluent.ConsumeAsync(b, topic, expected.Count, StartAt.Earliest, partitions: [0]);
            RecordAssert.NoProblems(RecordAssert.Compare("after graceful restart", expected, got, KafkaClients.Confluent));

            var third = TestData.Mixed(KafkaClients.Kafkajs.Caps, 50, seed: 44, partition: 0, baseTimestamp: baseTs + 20_000);
            expected.AddRange(RecordAssert.Expect(third, await KafkaClients.Kafkajs.ProduceAsync(b, topic, third, "snappy"), firstOffset: 300));

            exitCodes.Add(await broker.StopAsync());
            await broker.RestartAsync();

            var problems = new List<string>();
            // (not kafkajs: it cannot decompress the lz4 batch)
            foreach (var consumer in new IKafkaClient[] { KafkaClients.KafkaPython, KafkaClients.Kcat })
            {
                got = await consumer.ConsumeAsync(b, topic, expected.Count, StartAt.Earliest, partitions: [0]);
                problems.AddRange(RecordAssert.Compare("after second restart", expected, got, consumer));
            }
            RecordAssert.NoProblems(problems);

            Assert.True(exitCodes.All(c => c == 0), $"broker exit codes after SIGTERM: {string.Join(", ", exitCodes)} (expected 0)");
        });
    }
}
