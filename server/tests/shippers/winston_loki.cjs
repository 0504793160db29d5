// Pushes logs to Ledger's Loki door the way a Node.js service would: winston with the
// winston-loki transport, which encodes Loki's PushRequest with protobufjs and compresses it
// with snappy (`json: false`). Run by server/tests/loki.rs with LOKI_HOST and LOKI_KEY set;
// exits non-zero if the transport fell back to JSON or any push failed.
'use strict';
const winston = require('winston');
const LokiTransport = require('winston-loki');

async function main() {
    const failures = [];
    const transport = new LokiTransport({
        host: process.env.LOKI_HOST,
        basicAuth: `loki:${process.env.LOKI_KEY}`,
        labels: { service_name: 'nodeapp', env: 'test' },
        json: false,
        // One push for all three logs: close() below stops the batching loop and sends.
        batching: true,
        interval: 60,
        replaceTimestamp: false,
        gracefulShutdown: false,
        onConnectionError: (err) => failures.push(err),
    });
    if (transport.batcher.options.json) {
        throw new Error('snappy did not load: winston-loki fell back to JSON');
    }
    const logger = winston.createLogger({ level: 'debug', transports: [transport] });
    const t = Date.parse(process.env.LOKI_TIME);
    logger.error('node says boom', { labels: { request: 'r1' }, timestamp: new Date(t).toISOString() });
    logger.info('node says hello', { timestamp: new Date(t + 1).toISOString() });
    logger.debug('node says <b>&', { timestamp: new Date(t + 2).toISOString() });
    await transport.close();
    if (failures.length) {
        throw new Error(`push failed: ${failures.map(String).join('; ')}`);
    }
    console.log(`pushed 3 logs as ${transport.batcher.contentType}`);
}

main().catch((err) => {
    console.error(err);
    process.exit(1);
});
