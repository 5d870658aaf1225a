#!/usr/bin/env node
'use strict'
// kafkajs driver for the Cairn interop tests. Same command line and JSON-lines protocol as
// ../python/ck_client.py (see ../python/common.py): hex bytes, JSON null distinct from "".
//
// kafkajs quirks the tests account for:
//  * the only consumer kafkajs offers is a group consumer; `consume` (no group) uses kafkajs'
//    own low-level path instead: its Cluster/Broker objects send Fetch requests and decode
//    record batches exactly as the group consumer would. `group-consume` is the group consumer
//    (consumer.run with eachBatch); the group admin commands use kafkajs' admin client.
//  * headers are an object: duplicate names are grouped (arrays), so the order of headers
//    with different names is by first appearance; a null header value cannot be produced.
//  * fetchTopicOffsetsByTimestamp answers the high watermark where the broker answers -1.

const fs = require('fs')
const { Kafka, CompressionTypes, CompressionCodecs, ConfigResourceTypes, logLevel } = require('kafkajs')
const Cluster = require('kafkajs/src/cluster')
const { createLogger } = require('kafkajs/src/loggers')

let snappyAvailable = false
try {
  CompressionCodecs[CompressionTypes.Snappy] = require('kafkajs-snappy')
  snappyAvailable = true
} catch (e) {
  // kafkajs-snappy not installed: snappy is reported as unsupported
}

process.env.KAFKAJS_NO_PARTITIONER_WARNING = '1'

const CLIENT_ID = 'cairn-interop-kafkajs'

function parseArgs(argv) {
  const args = { _: [] }
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]
    if (a.startsWith('--')) {
      const name = a.slice(2)
      const next = argv[i + 1]
      const value = next === undefined || next.startsWith('--') ? true : (i++, next)
      if (name === 'config') (args.config = args.config || []).push(value)
      else args[name] = value
    } else {
      args._.push(a)
    }
  }
  return args
}

const emit = obj => process.stdout.write(JSON.stringify(obj) + '\n')
const log = (...a) => process.stderr.write(a.join(' ') + '\n')
const hexd = b => (b === null || b === undefined ? null : Buffer.from(b).toString('hex'))
const unhex = s => (s === null || s === undefined ? null : Buffer.from(s, 'hex'))

// kafkajs logs to stdout by default; keep stdout for JSON only.
const stderrLogCreator = () => ({ namespace, level, label, log: entry }) => {
  const { message, ...extra } = entry
  log(`[kafkajs ${label}] ${namespace}: ${message} ${JSON.stringify(extra)}`)
}

function kafkaFor(args) {
  return new Kafka({
    clientId: CLIENT_ID,
    brokers: [args.bootstrap],
    connectionTimeout: 3000,
    requestTimeout: 30000,
    logLevel: logLevel.WARN,
    logCreator: stderrLogCreator,
    retry: { retries: 5, initialRetryTime: 200, maxRetryTime: 2000 },
  })
}

function compressionOf(codec) {
  switch (codec || 'none') {
    case 'none':
      return CompressionTypes.None
    case 'gzip':
      return CompressionTypes.GZIP
    case 'snappy':
      if (!snappyAvailable) throw new Error('snappy codec not installed (kafkajs-snappy)')
      return CompressionTypes.Snappy
    default:
      throw new Error(`codec ${codec} not supported by this driver`)
  }
}

function readRecords(path) {
  return fs
    .readFileSync(path, 'utf8')
    .split('\n')
    .filter(l => l.trim().length > 0)
    .map(l => JSON.parse(l))
}

function toKafkajsHeaders(list) {
  if (!list || list.length === 0) return undefined
  const h = {}
  for (const [name, value] of list) {
    if (value === null) throw new Error('kafkajs cannot produce a null header value')
    const buf = unhex(value)
    if (h[name] === undefined) h[name] = buf
    else if (Array.isArray(h[name])) h[name].push(buf)
    else h[name] = [h[name], buf]
  }
  return h
}

function fromKafkajsHeaders(obj) {
  const out = []
  for (const name of Object.keys(obj || {})) {
    const v = obj[name]
    if (Array.isArray(v)) for (const x of v) out.push([name, hexd(x)])
    else out.push([name, hexd(v)])
  }
  return out
}

// ------------------------------------------------------------------ produce
async function produce(args) {
  const records = readRecords(args.input)
  const kafka = kafkaFor(args)
  const idempotent = args.idempotent === true
  const producer = kafka.producer({
    allowAutoTopicCreation: true,
    idempotent,
    maxInFlightRequests: idempotent ? 1 : undefined,
  })
  await producer.connect()
  const compression = compressionOf(args.codec)
  // One send per run of consecutive records for the same partition keeps input order,
  // and the ack's baseOffset + index gives every record's offset.
  const results = []
  let i = 0
  let failed = 0
  while (i < records.length) {
    const partition = records[i].partition === null || records[i].partition === undefined ? 0 : records[i].partition
    const run = []
    while (i < records.length && (records[i].partition ?? 0) === partition) run.push({ idx: i, r: records[i++] })
    const messages = run.map(({ r }) => {
      const m = { partition, key: unhex(r.key), value: unhex(r.value), headers: toKafkajsHeaders(r.headers) }
      if (r.timestamp !== null && r.timestamp !== undefined) m.timestamp = String(r.timestamp)
      return m
    })
    try {
      const md = await producer.send({ topic: args.topic, acks: -1, timeout: 30000, compression, messages })
      const meta = md.find(x => x.partition === partition)
      const base = BigInt(meta.baseOffset)
      run.forEach(({ idx }, k) => results.push({ i: idx, partition, offset: Number(base + BigInt(k)) }))
    } catch (e) {
      failed += run.length
      run.forEach(({ idx }) => results.push({ i: idx, error: String(e && e.stack ? e.stack : e) }))
    }
  }
  await producer.disconnect()
  results.sort((a, b) => a.i - b.i).forEach(emit)
  emit({ event: 'done', acked: records.length - failed, failed })
  return failed === 0 ? 0 : 1
}

// ------------------------------------------------------------------ consume (low-level)
async function partitionsOf(admin, topic, wanted) {
  if (wanted && wanted !== 'all') return String(wanted).split(',').map(Number)
  const md = await admin.fetchTopicMetadata({ topics: [topic] })
  return md.topics[0].partitions.map(p => p.partitionId).sort((a, b) => a - b)
}

async function startOffsets(admin, topic, parts, start) {
  const pos = {}
  if (start === 'earliest' || start === 'latest') {
    const offs = await admin.fetchTopicOffsets(topic)
    for (const o of offs) pos[o.partition] = BigInt(start === 'earliest' ? o.low : o.high)
  } else if (start.startsWith('offset:')) {
    for (const p of parts) pos[p] = BigInt(start.slice('offset:'.length))
  } else if (start.startsWith('timestamp:')) {
    const offs = await admin.fetchTopicOffsetsByTimestamp(topic, Number(start.slice('timestamp:'.length)))
    for (const o of offs) pos[o.partition] = BigInt(o.offset)
  } else {
    throw new Error(`bad --start ${start}`)
  }
  for (const p of parts) if (pos[p] === undefined) throw new Error(`no start offset for partition ${p}`)
  return pos
}

async function consume(args) {
  const deadline = Date.now() + Number(args.timeout || 45) * 1000
  const count = Number(args.count)
  const topic = args.topic
  const kafka = kafkaFor(args)
  const admin = kafka.admin()
  await admin.connect()
  const parts = await partitionsOf(admin, topic, args.partitions)
  const pos = await startOffsets(admin, topic, parts, args.start || 'earliest')
  await admin.disconnect()

  const cluster = new Cluster({
    logger: createLogger({ level: logLevel.WARN, logCreator: stderrLogCreator }),
    brokers: [args.bootstrap],
    clientId: CLIENT_ID,
    connectionTimeout: 3000,
    requestTimeout: 30000,
    enforceRequestTimeout: true,
    retry: { retries: 5, initialRetryTime: 200, maxRetryTime: 2000 },
    allowAutoTopicCreation: false,
    metadataMaxAge: 300000,
    isolationLevel: 1,
    socketFactory: require('kafkajs/src/network/socketFactory')(),
  })
  await cluster.connect()
  await cluster.addTargetTopic(topic)
  emit({ event: 'ready', partitions: parts, positions: Object.fromEntries(parts.map(p => [p, Number(pos[p])])) })

  let n = 0
  while (n < count && Date.now() < deadline) {
    const byLeader = cluster.findLeaderForPartitions(topic, parts)
    for (const nodeId of Object.keys(byLeader)) {
      const broker = await cluster.findBroker({ nodeId })
      const resp = await broker.fetch({
        replicaId: -1,
        isolationLevel: 1,
        maxWaitTime: 200,
        minBytes: 1,
        maxBytes: 16 * 1024 * 1024,
        topics: [
          {
            topic,
            partitions: byLeader[nodeId].map(p => ({ partition: p, fetchOffset: pos[p].toString(), maxBytes: 4 * 1024 * 1024 })),
          },
        ],
      })
      for (const t of resp.responses) {
        for (const pr of t.partitions) {
          for (const m of pr.messages) {
            if (m.isControlRecord) continue
            const off = BigInt(m.offset)
            if (off < pos[pr.partition]) continue // a fetch from mid-batch returns the whole batch
            emit({
              partition: pr.partition,
              offset: Number(off),
              timestamp: Number(m.timestamp),
              key: hexd(m.key),
              value: hexd(m.value),
              headers: fromKafkajsHeaders(m.headers),
            })
            pos[pr.partition] = off + 1n
            n++
          }
        }
      }
    }
  }
  emit({ event: n >= count ? 'done' : 'timeout', count: n })
  await cluster.disconnect()
  return 0
}

// ------------------------------------------------------------------ admin
async function withAdmin(args, fn) {
  const admin = kafkaFor(args).admin()
  await admin.connect()
  try {
    return await fn(admin)
  } finally {
    await admin.disconnect()
  }
}

const commands = {
  produce,
  consume,
  'create-topic': args =>
    withAdmin(args, async admin => {
      const configEntries = (args.config || []).map(c => {
        const i = c.indexOf('=')
        return { name: c.slice(0, i), value: c.slice(i + 1) }
      })
      const created = await admin.createTopics({
        waitForLeaders: true,
        timeout: 15000,
        topics: [{ topic: args.topic, numPartitions: Number(args.partitions || 1), replicationFactor: 1, configEntries }],
      })
      if (!created) throw new Error(`createTopics returned false (topic ${args.topic} already exists?)`)
      emit({ ok: true })
    }),
  'create-partitions': args =>
    withAdmin(args, async admin => {
      await admin.createPartitions({ timeout: 15000, topicPartitions: [{ topic: args.topic, count: Number(args.count) }] })
      emit({ ok: true })
    }),
  'delete-topic': args =>
    withAdmin(args, async admin => {
      await admin.deleteTopics({ topics: [args.topic], timeout: 15000 })
      emit({ ok: true })
    }),
  'list-topics': args =>
    withAdmin(args, async admin => {
      emit({ topics: (await admin.listTopics()).sort() })
    }),
  'describe-topic': args =>
    withAdmin(args, async admin => {
      // listTopics first: metadata for a missing topic is retried by kafkajs (and could auto-create it).
      if (!(await admin.listTopics()).includes(args.topic)) {
        emit({ name: args.topic, exists: false })
        return
      }
      const md = await admin.fetchTopicMetadata({ topics: [args.topic] })
      const t = md.topics.find(x => x.name === args.topic)
      const partitions = t.partitions
        .map(p => ({ partition: p.partitionId, leader: p.leader, replicas: p.replicas, isr: p.isr }))
        .sort((a, b) => a.partition - b.partition)
      const cfg = await admin.describeConfigs({
        includeSynonyms: false,
        resources: [{ type: ConfigResourceTypes.TOPIC, name: args.topic }],
      })
      const configs = {}
      for (const r of cfg.resources) {
        if (r.errorCode) throw new Error(`describeConfigs error ${r.errorCode} ${r.errorMessage}`)
        for (const e of r.configEntries) configs[e.configName] = e.configValue
      }
      emit({ name: args.topic, exists: true, partitions, configs })
    }),
  offsets: args =>
    withAdmin(args, async admin => {
      const offs = await admin.fetchTopicOffsets(args.topic)
      emit({
        partitions: offs
          .map(o => ({ partition: o.partition, low: Number(o.low), high: Number(o.high) }))
          .sort((a, b) => a.partition - b.partition),
      })
    }),
  'offsets-for-time': args =>
    withAdmin(args, async admin => {
      const offs = await admin.fetchTopicOffsetsByTimestamp(args.topic, Number(args.timestamp))
      emit({ partitions: offs.map(o => ({ partition: o.partition, offset: Number(o.offset) })).sort((a, b) => a.partition - b.partition) })
    }),
  'delete-records': args =>
    withAdmin(args, async admin => {
      // deleteTopicRecords needs the topic's metadata cached (else KafkaJSTopicMetadataNotLoaded).
      await admin.fetchTopicMetadata({ topics: [args.topic] })
      await admin.deleteTopicRecords({
        topic: args.topic,
        partitions: [{ partition: Number(args.partition), offset: String(args.offset) }],
      })
      emit({ ok: true })
    }),
  cluster: args =>
    withAdmin(args, async admin => {
      const c = await admin.describeCluster()
      emit({
        cluster_id: c.clusterId,
        controller: c.controller,
        brokers: c.brokers.map(b => ({ id: b.nodeId, host: b.host, port: b.port })),
      })
    }),
  codecs: async () => {
    emit({ codecs: ['none', 'gzip'].concat(snappyAvailable ? ['snappy'] : []) })
  },
}


// ------------------------------------------------------------------ groups
// group-consume: one group member on one topic until SIGTERM. Prints (see ../python/common.py)
// {"event":"assigned","partitions":[..],"owned":[..]} on GROUP_JOIN, a record line per message
// {"event":"record","partition":p,"offset":o,"value":text}, {"event":"committed","offsets":{p:o}}
// on COMMIT_OFFSETS and {"event":"closed"} after consumer.disconnect() (commit + leave).
async function groupConsume(args) {
  const topic = args.topic
  const kafka = kafkaFor(args)
  const consumer = kafka.consumer({
    groupId: args.group,
    sessionTimeout: Number(args['session-timeout'] || 6000),
    heartbeatInterval: Number(args.heartbeat || 500),
    rebalanceTimeout: Number(args['rebalance-timeout'] || 10000),
    maxWaitTimeInMs: 100,
    retry: { retries: 5, initialRetryTime: 200, maxRetryTime: 2000 },
  })
  const { GROUP_JOIN, COMMIT_OFFSETS, CRASH } = consumer.events
  consumer.on(GROUP_JOIN, e => {
    const ps = (e.payload.memberAssignment[topic] || []).slice().sort((a, b) => a - b)
    emit({ event: 'assigned', partitions: ps, owned: ps, member: e.payload.memberId })
  })
  consumer.on(COMMIT_OFFSETS, e => {
    const offsets = {}
    for (const t of e.payload.topics) for (const p of t.partitions) offsets[p.partition] = Number(p.offset)
    emit({ event: 'committed', offsets })
  })
  consumer.on(CRASH, e => emit({ event: 'crash', error: String(e.payload.error), restart: e.payload.restart }))
  let stopping = null
  const stopped = new Promise(resolve => {
    const stop = () => {
      if (stopping) return
      stopping = (async () => {
        try {
          await consumer.disconnect()
          emit({ event: 'closed' })
        } catch (err) {
          log(`disconnect failed: ${err && err.stack ? err.stack : err}`)
        }
        resolve(0)
      })()
    }
    process.on('SIGTERM', stop)
    process.on('SIGINT', stop)
  })
  await consumer.connect()
  await consumer.subscribe({ topics: [topic], fromBeginning: true })
  emit({ event: 'subscribed' })
  await consumer.run({
    autoCommit: true,
    eachBatchAutoResolve: false,
    eachBatch: async ({ batch, resolveOffset, heartbeat, isRunning, isStale }) => {
      for (const m of batch.messages) {
        if (!isRunning() || isStale()) break
        emit({ event: 'record', partition: batch.partition, offset: Number(m.offset), value: m.value === null ? null : m.value.toString('utf8') })
        resolveOffset(m.offset)
        await heartbeat()
      }
    },
  })
  return stopped
}

function parseOffsetList(spec) {
  return String(spec || '')
    .split(',')
    .filter(x => x.length > 0)
    .map(x => {
      const [p, o] = x.split(':')
      return { partition: Number(p), offset: String(o) }
    })
}

async function describeGroup(admin, groupId) {
  const d = await admin.describeGroups([groupId])
  return d.groups.find(g => g.groupId === groupId)
}

const groupCommands = {
  'group-consume': groupConsume,
  'fetch-offsets': args =>
    withAdmin(args, async admin => {
      const res = await admin.fetchOffsets({ groupId: args.group, topics: [args.topic] })
      const t = res.find(x => x.topic === args.topic)
      emit({
        partitions: (t ? t.partitions : [])
          .map(p => ({ partition: p.partition, offset: Number(p.offset), metadata: p.metadata }))
          .sort((a, b) => a.partition - b.partition),
      })
    }),
  'set-offsets': args =>
    withAdmin(args, async admin => {
      try {
        await admin.setOffsets({ groupId: args.group, topic: args.topic, partitions: parseOffsetList(args.offsets) })
        emit({ ok: true })
      } catch (e) {
        emit({ ok: false, error: String(e && e.message ? e.message : e), type: e && e.type })
      }
    }),
  'reset-offsets': args =>
    withAdmin(args, async admin => {
      await admin.resetOffsets({ groupId: args.group, topic: args.topic, earliest: args.earliest === true })
      emit({ ok: true })
    }),
  'delete-groups': args =>
    withAdmin(args, async admin => {
      try {
        const res = await admin.deleteGroups([args.group])
        emit({ ok: true, results: res.map(r => ({ group: r.groupId, error_code: r.errorCode })) })
      } catch (e) {
        // KafkaJSDeleteGroupsError carries the per-group results
        emit({
          ok: false,
          error: String(e && e.message ? e.message : e),
          results: (e.groups || []).map(r => ({ group: r.groupId, error_code: r.errorCode, error: r.error && r.error.type })),
        })
      }
    }),
  'describe-group': args =>
    withAdmin(args, async admin => {
      const g = await describeGroup(admin, args.group)
      emit({
        group: g.groupId,
        state: g.state,
        protocol_type: g.protocolType,
        protocol: g.protocol,
        error_code: g.errorCode,
        members: g.members.map(m => ({ member_id: m.memberId, client_id: m.clientId })),
      })
    }),
  'list-groups': args =>
    withAdmin(args, async admin => {
      const res = await admin.listGroups()
      emit({ groups: res.groups.map(g => [g.groupId, g.protocolType]).sort() })
    }),
}

Object.assign(commands, groupCommands)

async function main() {
  const args = parseArgs(process.argv.slice(2))
  const cmd = args._[0]
  if (!commands[cmd]) {
    log(`usage: kjs_client.js <${Object.keys(commands).join('|')}> --bootstrap host:port ...`)
    return 2
  }
  const bound = Number(args.timeout || 45) * 1000 + 10000
  const timer = setTimeout(() => {
    log(`kjs_client: ${cmd} did not finish within ${bound} ms`)
    process.exit(3)
  }, bound)
  timer.unref()
  return (await commands[cmd](args)) || 0
}

// Exit once main settles, even if a kafkajs socket or timer would keep the loop alive. Writes to
// stdout/stderr are asynchronous when they are pipes (POSIX): exit only after what was written has
// been handed to the reader (an empty write completes after every earlier one), or after 15 s.
// (Exiting on a fixed 200 ms timer cut off a 200 kB record line when the reader was slow.)
const finish = code => {
  process.exitCode = code
  const exit = () => process.exit(code)
  process.stdout.write('', () => process.stderr.write('', exit))
  setTimeout(exit, 15000).unref()
}

main().then(finish, err => {
  log(`kjs_client error: ${err && err.stack ? err.stack : err}`)
  if (err && err.type) log(`kafka error type: ${err.type}`)
  finish(1)
})
