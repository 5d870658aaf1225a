using Microsoft.Extensions.Logging;

namespace Cairn.Storage;

/// <summary>
/// Start-up check of the data directory against the topic metadata: deletes only directories Cairn itself marked as
/// deleted, rebuilds the metadata of topics whose <c>.topics/&lt;name&gt;.json</c> is missing or unreadable from their
/// partition directories, and leaves everything else in place with a warning.
/// </summary>
internal static class DataDirectoryScan
{
    /// <summary>
    /// Returns the metadata of the topics rebuilt from their partition directories (already written to disk).
    /// <paramref name="known"/> holds the topics whose metadata file was read.
    /// </summary>
    public static List<TopicMetadata> Run(string dataDir, IReadOnlyDictionary<string, TopicMetadata> known,
        Func<string, string> metadataPath, ILogger logger)
    {
        var candidates = new Dictionary<string, List<(int Partition, PartitionIdentity? Identity, string Dir)>>(StringComparer.Ordinal);
        foreach (var dir in Directory.EnumerateDirectories(dataDir))
        {
            if (!PartitionIdentity.TryParseDirectoryName(Path.GetFileName(dir), out var topic, out var partition)) continue;
            bool owned = known.TryGetValue(topic, out var meta) && partition < meta.Partitions;
            if (PartitionIdentity.IsMarkedDeleted(dir))
            {
                if (owned)
                {
                    // The deletion never reached the metadata file, so it was not confirmed: keep the data.
                    logger.LogWarning("{Directory} is marked deleted but its topic still exists; keeping it", dir);
                    FileIO.TryDelete(Path.Combine(dir, PartitionIdentity.DeletedMarkerFile));
                    continue;
                }
                logger.LogInformation("Finishing the deletion of {Directory}", dir);
                try { Directory.Delete(dir, recursive: true); }
                catch (Exception e) when (e is IOException or UnauthorizedAccessException)
                {
                    logger.LogWarning(e, "Could not delete {Directory}", dir);
                }
                continue;
            }
            if (owned) continue;
            var identity = PartitionIdentity.TryRead(dir);
            if (meta is not null)
            {
                logger.LogWarning("{Directory} is not a partition of topic {Topic} ({Partitions} partition(s)); leaving it in place",
                    dir, topic, meta.Partitions);
                continue;
            }
            if (identity is not null ? identity.Topic != topic || identity.Partition != partition : !PartitionIdentity.HasSegmentFile(dir))
            {
                logger.LogWarning("{Directory} does not look like a Cairn partition directory; leaving it in place", dir);
                continue;
            }
            if (!candidates.TryGetValue(topic, out var list)) candidates[topic] = list = [];
            list.Add((partition, identity, dir));
        }

        var rebuilt = new List<TopicMetadata>();
        foreach (var (topic, dirs) in candidates)
        {
            var ids = dirs.Where(d => d.Identity is not null).Select(d => d.Identity!.TopicId).Distinct().ToList();
            var topicId = ids.Count == 1 ? ids[0] : Guid.NewGuid();
            if (ids.Count > 1)
                logger.LogWarning("Topic {Topic}: partition directories disagree on the topic id ({Ids}); using a new id {TopicId}",
                    topic, string.Join(", ", ids), topicId);
            if (ids.Count == 1 && known.Values.Any(m => m.TopicId == topicId)) topicId = Guid.NewGuid();
            int partitions = dirs.Max(d => d.Partition) + 1;
            var meta = new TopicMetadata { Name = topic, TopicId = topicId, Partitions = partitions };
            var path = metadataPath(topic);
            try
            {
                FileIO.WriteAtomic(path, meta.Serialize());
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                logger.LogError(e, "Topic {Topic}: could not rebuild its metadata file {File}; its partition directories are left in place, the topic is offline",
                    topic, path);
                continue;
            }
            logger.LogWarning("Topic {Topic}: metadata file was missing or unreadable; rebuilt from {Found} partition directory(ies) " +
                "as {Partitions} partition(s), topic id {TopicId}, default configs", topic, dirs.Count, partitions, topicId);
            rebuilt.Add(meta);
        }
        return rebuilt;
    }
}
