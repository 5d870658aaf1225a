using Cairn.Offsets;
using FsCheck;
using FsCheck.Fluent;

namespace Cairn.Tests.Offsets;

/// <summary>
/// Random interleavings of Begin and Complete over records with random gaps between their offsets: after every step
/// the committed position is exactly the one after the longest completed prefix of begun records (so never past an
/// unfinished one), and once everything completes it is the one after the last record.
/// </summary>
public sealed class OffsetTrackerPropertyTests
{
    private static readonly Gen<(int[] Gaps, int[] Choices)> Scenario =
        from gaps in Gen.Choose(1, 3).ArrayOf().Resize(40)
        from choices in Gen.Choose(0, 1000).ArrayOf().Resize(120)
        select (gaps, choices);

    [Fact]
    public void Random_completion_orders_never_commit_past_an_unfinished_record()
    {
        var property = Prop.ForAll(Scenario.ToArbitrary(), input =>
        {
            var (gaps, choices) = input;
            var offsets = new List<long>();
            long next = 0;
            foreach (var g in gaps) { next += g; offsets.Add(next); }
            Run(offsets, choices).GetAwaiter().GetResult();
        });
        Check.One(Config.QuickThrowOnFailure.WithMaxTest(300), property);
    }

    private static async Task Run(List<long> offsets, int[] choices)
    {
        var store = new InMemoryOffsetStore();
        await using var tracker = new OffsetTracker(store);
        var begun = new List<long>();            // in begin order (= offset order)
        var done = new HashSet<long>();
        var inFlight = new List<OffsetHandle>();
        int nextToBegin = 0, step = 0;
        var random = new Random(choices.Length == 0 ? 0 : choices.Aggregate(17, (h, c) => h * 31 + c));

        while (nextToBegin < offsets.Count || inFlight.Count > 0)
        {
            int c = step < choices.Length ? choices[step] : random.Next(1000);
            step++;
            if (nextToBegin < offsets.Count && (inFlight.Count == 0 || c % 3 == 0))
            {
                var offset = offsets[nextToBegin++];
                inFlight.Add(tracker.Begin("p", Offset.Sequence(offset)));
                begun.Add(offset);
            }
            else
            {
                var handle = inFlight[c % inFlight.Count];
                inFlight.Remove(handle);
                await handle.CompleteAsync();
                done.Add(handle.Offset.SequenceValue);

                // The model: the position after the longest completed prefix of begun records.
                long? expected = null;
                foreach (var o in begun)
                {
                    if (!done.Contains(o)) break;
                    expected = o + 1;
                }
                var stored = await store.GetAsync("p");
                Assert.Equal(expected, stored?.SequenceValue);
                var unfinished = begun.Where(o => !done.Contains(o)).ToList();
                if (stored is { } s && unfinished.Count > 0) Assert.True(s.SequenceValue <= unfinished.Min());
            }
        }
        if (offsets.Count > 0) Assert.Equal(Offset.Sequence(offsets[^1] + 1), await store.GetAsync("p"));
        Assert.Empty(tracker.Pending);
    }
}
