#!/usr/bin/env node
// A consumer of contact-router's event stream (EventService.StreamEvents), in
// Node.js: what a CRM connector, a screen pop or a warehouse loader does.
//
// It reads every contact and agent event in commit order, prints each as one JSON
// line on stdout, then stores the event's cursor in a file. Started again, it
// resumes after the cursor it stored: nothing is missed and, as long as it stops
// cleanly (SIGTERM, SIGINT, --stop-after), nothing is printed twice. When the
// router ends the stream with UNAVAILABLE (it is stopping, or a standby took
// over) or the connection drops, it reconnects with its last cursor, backing off
// from 0.1 s to 5 s.
//
// Usage: node events.js <host:port> <cursor-file> [--stop-after N]
//   <cursor-file>   where the last processed cursor is kept (created if missing;
//                   missing or empty: start from the beginning of the history)
//   --stop-after N  exit 0 after N events (for tests and one-off exports)
// The bearer token, if the router requires one (a reporting token), comes from
// CONTACT_ROUTER_TOKEN. A cursor of another database, a refused token or a full
// router (RESOURCE_EXHAUSTED) ends it with exit 1 and the error on stderr. Progress
// goes to stderr.
//
// A real consumer does its work (an upsert keyed by contact id, say) where this one
// prints, and stores the cursor in the same transaction as that work when it can:
// then even a crash between the two neither loses nor repeats an event.

'use strict';

const fs = require('node:fs');
const path = require('node:path');
const grpc = require('@grpc/grpc-js');
const protoLoader = require('@grpc/proto-loader');

const PROTO_ROOT = path.resolve(__dirname, '..', '..', 'proto');
const PROTO_FILE = 'contactrouter/v1/contact_router.proto';
const RECONNECT = new Set([grpc.status.UNAVAILABLE, grpc.status.CANCELLED]);
const FIRST_BACKOFF_MS = 100;
const MOST_BACKOFF_MS = 5_000;

function usage(message) {
  process.stderr.write(`${message}\nusage: node events.js <host:port> <cursor-file> [--stop-after N]\n`);
  process.exit(2);
}

function parseArgs(argv) {
  const [target, cursorFile, ...rest] = argv;
  if (!target || !cursorFile) usage('a router address and a cursor file are required');
  let stopAfter = null;
  for (let i = 0; i < rest.length; i += 1) {
    if (rest[i] === '--stop-after') {
      stopAfter = Number.parseInt(rest[i + 1], 10);
      if (!Number.isInteger(stopAfter) || stopAfter < 1) usage('--stop-after takes a positive number');
      i += 1;
    } else {
      usage(`unknown argument ${rest[i]}`);
    }
  }
  return { target, cursorFile, stopAfter };
}

function loadApi() {
  const definition = protoLoader.loadSync(PROTO_FILE, {
    includeDirs: [PROTO_ROOT],
    keepCase: true,
    longs: String,
    enums: String,
    defaults: true,
    oneofs: true,
  });
  return grpc.loadPackageDefinition(definition).contactrouter.v1;
}

function readCursor(file) {
  try {
    return fs.readFileSync(file, 'utf8').trim();
  } catch (error) {
    if (error.code === 'ENOENT') return '';
    throw error;
  }
}

// Write then rename: a crash leaves the old cursor or the new one, never half of one.
function storeCursor(file, cursor) {
  const temporary = `${file}.tmp`;
  fs.writeFileSync(temporary, `${cursor}\n`);
  fs.renameSync(temporary, file);
}

function timestamp(value) {
  if (!value) return null;
  const millis = Number(value.seconds) * 1000 + Math.floor(value.nanos / 1e6);
  return new Date(millis).toISOString();
}

// The event as one flat JSON object: what a screen pop or a CRM would read.
function describe(message) {
  const base = { cursor: message.cursor, at: timestamp(message.at) };
  if (message.event === 'contact_event') {
    const e = message.contact_event;
    const timings = {};
    for (const [name, value] of Object.entries(e.timings || {})) timings[name] = timestamp(value);
    return {
      ...base,
      type: 'contact',
      kind: e.kind,
      contact_id: e.contact_id,
      channel: e.channel,
      customer_id: e.customer_id,
      attributes: e.attributes,
      agent_id: e.agent_id,
      disposition: e.disposition,
      timings,
    };
  }
  const e = message.agent_event;
  return { ...base, type: 'agent', kind: e.kind, agent_id: e.agent_id, status: e.status, reason: e.reason };
}

function main() {
  const { target, cursorFile, stopAfter } = parseArgs(process.argv.slice(2));
  const api = loadApi();
  const client = new api.EventService(target, grpc.credentials.createInsecure());
  const metadata = new grpc.Metadata();
  if (process.env.CONTACT_ROUTER_TOKEN) {
    metadata.set('authorization', `Bearer ${process.env.CONTACT_ROUTER_TOKEN}`);
  }
  let cursor = readCursor(cursorFile);
  let received = 0;
  let backoff = FIRST_BACKOFF_MS;
  let stopping = false;
  let call = null;

  function stop(status) {
    stopping = true;
    if (call) call.cancel();
    client.close();
    process.exitCode = status;
  }

  for (const signal of ['SIGTERM', 'SIGINT']) {
    process.on(signal, () => {
      process.stderr.write(`${signal}: stopping after ${received} events\n`);
      stop(0);
    });
  }

  function open() {
    process.stderr.write(`reading events after ${cursor ? `cursor ${cursor}` : 'the beginning'}\n`);
    call = client.StreamEvents({ cursor }, metadata);
    call.on('data', (message) => {
      if (stopping) return;
      backoff = FIRST_BACKOFF_MS;
      process.stdout.write(`${JSON.stringify(describe(message))}\n`);
      cursor = message.cursor;
      storeCursor(cursorFile, cursor);
      received += 1;
      if (stopAfter !== null && received >= stopAfter) stop(0);
    });
    call.on('error', (error) => {
      if (stopping) return;
      if (!RECONNECT.has(error.code)) {
        process.stderr.write(`event stream refused: ${error.code} ${error.details}\n`);
        stop(1);
        return;
      }
      const wait = backoff * (0.5 + Math.random() / 2);
      process.stderr.write(`event stream ended (${error.details}); reconnecting in ${Math.round(wait)} ms\n`);
      backoff = Math.min(backoff * 2, MOST_BACKOFF_MS);
      setTimeout(open, wait);
    });
  }

  open();
}

main();
