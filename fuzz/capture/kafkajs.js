// kafkajs through the recording proxy: admin, produce (none/gzip), consume in a group, offsets. Needs
// tests/Cairn.Interop.Tests/drivers/node/node_modules (npm ci there).
const path = require('path');
const { Kafka, CompressionTypes, logLevel } = require(path.join(__dirname, '../../tests/Cairn.Interop.Tests/drivers/node/node_modules/kafkajs'));

async function main() {
  const kafka = new Kafka({ clientId: 'capture-kafkajs', brokers: [process.argv[2]], logLevel: logLevel.NOTHING });
  const topic = 'kjs-' + Math.random().toString(16).slice(2, 8);
  const admin = kafka.admin();
  await admin.connect();
  await admin.createTopics({ topics: [{ topic, numPartitions: 2 }] });
  await admin.fetchTopicMetadata({ topics: [topic] });
  const producer = kafka.producer();
  await producer.connect();
  for (const compression of [CompressionTypes.None, CompressionTypes.GZIP]) {
    await producer.send({ topic, compression, messages: Array.from({ length: 20 }, (_, i) => ({ key: `k${i}`, value: 'v'.repeat(i * 7), headers: { h: 'x' } })) });
  }
  await producer.disconnect();
  const consumer = kafka.consumer({ groupId: 'kjs-group' });
  await consumer.connect();
  await consumer.subscribe({ topic, fromBeginning: true });
  let n = 0;
  await new Promise((resolve) => {
    const timer = setTimeout(resolve, 20000);
    consumer.run({ eachMessage: async () => { if (++n >= 40) { clearTimeout(timer); resolve(); } } });
  });
  await consumer.disconnect();
  await admin.fetchOffsets({ groupId: 'kjs-group', topics: [topic] });
  await admin.fetchTopicOffsetsByTimestamp(topic, 0);
  await admin.describeGroups(['kjs-group']);
  await admin.deleteTopics({ topics: [topic] });
  await admin.disconnect();
  console.error(`kafkajs: consumed ${n}`);
}

main().catch((e) => { console.error(e); process.exit(1); });
