#!/usr/bin/env node
// A channel gateway and an agent desktop for contact-router, in Node.js.
//
// Written from proto/contactrouter/v1/contact_router.proto alone (loaded at run
// time with @grpc/proto-loader; no generated code), to show that the contract
// works outside Python. One run drives one chat contact through its whole life:
//
//   gateway: SubmitContact, the same submission again (a duplicate), and one
//            malformed submission (INVALID_ARGUMENT naming "channel", with its
//            rich error details decoded: ErrorInfo and BadRequest)
//   agent:   SignIn, StreamOffers, the offer for that contact, AcceptOffer,
//            EndContact, CompleteContact("order-status")
//   gateway: GetContact shows it COMPLETED with its timings
//   agent:   cancel the offer stream, SignOut
//
// Every error the router answers carries the standard rich error details: a
// google.rpc.Status in the "grpc-status-details-bin" trailer (the proto's header
// comment says which details come with which code). This client decodes them with
// the google/rpc protos in ./proto (copied from googleapis) and prints them.
//
// Usage: node client.js <host:port>
// Prints one JSON line on stdout and exits 0 ({"ok": true, "contact_id": ...,
// "steps": [...], "invalid_argument": <error>}), or 1 on a failure
// ({"ok": false, "error": <error>}, and the error on stderr). An <error> is
// {"code", "message", "reason", "domain", "metadata", "field_violations",
// "retry_delay_seconds"}: the gRPC status and its decoded details (null or empty
// where the error carried none). Progress goes to stderr.

'use strict';

const crypto = require('node:crypto');
const path = require('node:path');
const grpc = require('@grpc/grpc-js');
const protoLoader = require('@grpc/proto-loader');
const protobuf = require('protobufjs');

const PROTO_ROOT = path.resolve(__dirname, '..', '..', 'proto');
const PROTO_FILE = 'contactrouter/v1/contact_router.proto';
// google/rpc/status.proto and error_details.proto, unchanged from googleapis.
const RPC_PROTO_ROOT = path.resolve(__dirname, 'proto');
const RPC_PROTO_FILES = ['google/rpc/status.proto', 'google/rpc/error_details.proto'];
const STATUS_DETAILS_KEY = 'grpc-status-details-bin';

const CALL_TIMEOUT_MS = 5_000; // deadline of each unary call
const OFFER_TIMEOUT_MS = 10_000; // how long the agent waits for its offer
const OVERALL_TIMEOUT_MS = 30_000; // the whole run
const DISPOSITION = 'order-status';

// --- loading the contract --------------------------------------------------

function loadApi() {
  const definition = protoLoader.loadSync(PROTO_FILE, {
    // google/protobuf/timestamp.proto is one of the well-known types that
    // proto-loader (through protobufjs) ships; the contract's own files resolve
    // from the repository's proto/ folder.
    includeDirs: [PROTO_ROOT],
    keepCase: true,
    longs: String,
    enums: String,
    defaults: true,
    oneofs: true,
  });
  return grpc.loadPackageDefinition(definition).contactrouter.v1;
}

// --- the rich error details ------------------------------------------------

// google.rpc.Status and the detail messages, decoded with protobufjs (which
// proto-loader uses too). google/protobuf/any.proto and duration.proto are
// well-known types that protobufjs ships.
function loadRpcTypes() {
  const root = new protobuf.Root();
  root.resolvePath = (origin, target) =>
    target in protobuf.common ? target : path.join(RPC_PROTO_ROOT, target);
  root.loadSync(RPC_PROTO_FILES, { keepCase: true });
  root.resolveAll();
  return root;
}

const rpcTypes = loadRpcTypes();

function statusName(code) {
  return Object.keys(grpc.status).find((name) => grpc.status[name] === code) || String(code);
}

// A gRPC error as plain JSON: its code and message, and what its rich status
// says. An error without the trailer (one that never reached a router, such as
// a refused connection) has a null reason and no details.
function describeError(error) {
  const described = {
    code: statusName(error.code),
    message: error.details || '',
    reason: null,
    domain: null,
    metadata: {},
    field_violations: [],
    retry_delay_seconds: null,
  };
  const raw = error.metadata ? error.metadata.get(STATUS_DETAILS_KEY) : [];
  if (raw.length === 0) return described;
  const status = rpcTypes.lookupType('google.rpc.Status').decode(raw[0]);
  check(status.code === error.code, `the details' code ${status.code} is the call's ${error.code}`);
  check(status.message === error.details, "the details' message is the call's");
  for (const any of status.details) {
    // type_url is "type.googleapis.com/google.rpc.ErrorInfo": the type is its last part.
    const typeName = any.type_url.slice(any.type_url.lastIndexOf('/') + 1);
    let type;
    try {
      type = rpcTypes.lookupType(typeName);
    } catch {
      continue; // a detail type this client does not know: skip it
    }
    const detail = type.toObject(type.decode(any.value), { longs: Number, defaults: true });
    if (typeName === 'google.rpc.ErrorInfo') {
      described.reason = detail.reason;
      described.domain = detail.domain;
      described.metadata = detail.metadata;
    } else if (typeName === 'google.rpc.BadRequest') {
      for (const violation of detail.field_violations) {
        described.field_violations.push({ field: violation.field, description: violation.description });
      }
    } else if (typeName === 'google.rpc.RetryInfo') {
      const delay = detail.retry_delay;
      described.retry_delay_seconds = delay.seconds + delay.nanos / 1e9;
    }
  }
  return described;
}

// --- small promisified wrappers --------------------------------------------

function deadline(ms = CALL_TIMEOUT_MS) {
  return new Date(Date.now() + ms);
}

// Call a unary RPC and resolve with its response; reject with the gRPC error
// (which carries .code and .details), its message prefixed by the method name.
function unary(client, method, request) {
  return new Promise((resolve, reject) => {
    client[method](request, { deadline: deadline() }, (error, response) => {
      if (error) {
        error.message = `${method}: ${error.message}`;
        reject(error);
      } else {
        resolve(response);
      }
    });
  });
}

// Call a unary RPC that must fail; resolve with its error.
async function unaryError(client, method, request) {
  try {
    await unary(client, method, request);
  } catch (error) {
    return error;
  }
  throw new Error(`${method} succeeded but should have failed`);
}

// Reject after `ms` with `what` in the message, unless `promise` settles first.
function withTimeout(promise, ms, what) {
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms: ${what}`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

// An offer stream that buffers its messages so that they can be awaited.
class OfferStream {
  constructor(agents, agentId) {
    this.messages = [];
    this.waiters = [];
    this.ended = null; // why the stream ended, once it has
    this.cancelled = false;
    // The stream lives at most as long as the whole run.
    this.call = agents.StreamOffers({ agent_id: agentId }, { deadline: deadline(OVERALL_TIMEOUT_MS) });
    this.call.on('data', (message) => {
      this.messages.push(message);
      this.wake();
    });
    // Always listen for 'error': cancel() ends the call with CANCELLED, and an
    // unhandled 'error' event would crash the process.
    this.call.on('error', (error) => {
      this.ended = this.cancelled && error.code === grpc.status.CANCELLED ? 'cancelled' : error;
      this.wake();
    });
    this.call.on('end', () => {
      this.ended = this.ended || 'the server ended the stream';
      this.wake();
    });
  }

  wake() {
    for (const wake of this.waiters.splice(0)) wake();
  }

  // The first buffered or future message for which `accept(message)` returns
  // true; `skip(message)` is called for the others (and removes them).
  next(accept, skip, ms, what) {
    const search = async () => {
      for (;;) {
        while (this.messages.length > 0) {
          const message = this.messages.shift();
          if (accept(message)) return message;
          await skip(message);
        }
        if (this.ended) {
          throw new Error(`offer stream ended while waiting for ${what}: ${this.ended.message || this.ended}`);
        }
        await new Promise((resolve) => this.waiters.push(resolve));
      }
    };
    return withTimeout(search(), ms, what);
  }

  cancel() {
    this.cancelled = true;
    this.call.cancel();
  }
}

// --- checks ------------------------------------------------------------------

function check(condition, message) {
  if (!condition) throw new Error(`check failed: ${message}`);
}

function isSet(timestamp) {
  return timestamp !== null && timestamp !== undefined;
}

function toDate(timestamp) {
  // longs: String, so seconds arrive as a decimal string.
  return new Date(Number(timestamp.seconds) * 1000 + Math.floor(timestamp.nanos / 1e6));
}

// --- the run -------------------------------------------------------------

async function run(target) {
  const api = loadApi();
  const credentials = grpc.credentials.createInsecure();
  const contacts = new api.ContactService(target, credentials);
  const agents = new api.AgentService(target, credentials);
  const steps = [];
  const step = (name, detail) => {
    steps.push(name);
    process.stderr.write(`[node-client] ${name}${detail ? `: ${detail}` : ''}\n`);
  };
  const runId = crypto.randomUUID();
  const agentId = `node-agent-${runId}`;
  let stream = null;
  let signedIn = false;

  try {
    // Gateway: a new chat contact.
    const submission = {
      idempotency_key: `node-chat-${runId}`,
      channel: 'CHANNEL_CHAT',
      customer_id: 'chat-visitor-4711',
      attributes: { name: 'Ada Lovelace', order: 'A-1042', topic: 'Where is my order?' },
    };
    const submitted = await unary(contacts, 'SubmitContact', submission);
    const contact = submitted.contact;
    check(submitted.duplicate === false, 'a first submission is not a duplicate');
    check(/^[0-9a-f-]{36}$/i.test(contact.contact_id), `contact_id is a UUID: ${contact.contact_id}`);
    check(contact.channel === 'CHANNEL_CHAT', `channel echoed: ${contact.channel}`);
    check(contact.idempotency_key === submission.idempotency_key, 'idempotency_key echoed');
    check(contact.attributes.order === 'A-1042', 'attributes echoed');
    check(isSet(contact.timings) && isSet(contact.timings.queued_at), 'queued_at is set');
    step('submit', `${contact.contact_id} ${contact.state}`);

    // Gateway: the same submission again, as after a lost answer.
    const again = await unary(contacts, 'SubmitContact', submission);
    check(again.duplicate === true, 'a repeated key is reported as a duplicate');
    check(again.contact.contact_id === contact.contact_id, 'a duplicate returns the same contact');
    step('submit-duplicate', `duplicate=${again.duplicate}`);

    // Gateway: a malformed submission.
    const bad = await unaryError(contacts, 'SubmitContact', {
      ...submission,
      idempotency_key: `node-bad-${runId}`,
      channel: 'CHANNEL_UNSPECIFIED',
    });
    check(bad.code === grpc.status.INVALID_ARGUMENT, `INVALID_ARGUMENT (3), got ${bad.code}: ${bad.details}`);
    check(/channel/i.test(bad.details || ''), `the message names "channel": ${bad.details}`);
    const invalid = describeError(bad);
    check(invalid.reason === 'INVALID_FIELD', `ErrorInfo reason INVALID_FIELD: ${invalid.reason}`);
    check(
      invalid.field_violations.some((v) => v.field === 'channel'),
      `a BadRequest violation of "channel": ${JSON.stringify(invalid.field_violations)}`,
    );
    step('invalid-argument', JSON.stringify(invalid));

    // Agent: sign in for chat only (3 at once), then open the offer stream.
    // Phone and email are listed with capacity 0: channels not listed take the
    // server's defaults (phone 1, email 1), and this agent takes only chats.
    const signIn = await unary(agents, 'SignIn', {
      agent_id: agentId,
      capacities: [
        { channel: 'CHANNEL_CHAT', capacity: 3 },
        { channel: 'CHANNEL_PHONE', capacity: 0 },
        { channel: 'CHANNEL_EMAIL', capacity: 0 },
      ],
    });
    signedIn = true;
    check(signIn.agent.agent_id === agentId, 'SignIn returns the agent');
    check(signIn.agent.status === 'AGENT_STATUS_READY', `unset initial_status means READY: ${signIn.agent.status}`);
    step('sign-in', agentId);

    stream = new OfferStream(agents, agentId);
    step('stream-offers');

    // Agent: wait for the offer of this contact. Offers for other contacts (a
    // shared server may have some) are declined so that they go to others.
    const message = await stream.next(
      (m) =>
        (m.event === 'offer' && m.offer.contact.contact_id === contact.contact_id) ||
        (m.event === 'offer_withdrawn' && m.offer_withdrawn.contact_id === contact.contact_id),
      async (m) => {
        if (m.event === 'offer') {
          await unary(agents, 'DeclineOffer', { agent_id: agentId, offer_id: m.offer.offer_id });
          step('decline-other', m.offer.contact.contact_id);
        }
      },
      OFFER_TIMEOUT_MS,
      `the offer of contact ${contact.contact_id}`,
    );
    check(message.event === 'offer', `expected an offer, got a withdrawal (${JSON.stringify(message.offer_withdrawn)})`);
    const offer = message.offer;
    check(offer.offer_id !== '', 'the offer has an id');
    check(offer.contact.state === 'CONTACT_STATE_OFFERED', `an offered contact is OFFERED: ${offer.contact.state}`);
    check(offer.contact.attributes.name === 'Ada Lovelace', 'the offer carries the attributes');
    check(isSet(offer.expires_at) && toDate(offer.expires_at) > new Date(Date.now() - 60_000), 'the offer expires later');
    step('offer', `${offer.offer_id} expires ${toDate(offer.expires_at).toISOString()}`);

    // Agent: accept, talk, end, wrap up.
    const accepted = await unary(agents, 'AcceptOffer', { agent_id: agentId, offer_id: offer.offer_id });
    check(accepted.contact.state === 'CONTACT_STATE_CONNECTED', `accepted is CONNECTED: ${accepted.contact.state}`);
    check(accepted.contact.agent_id === agentId, 'the accepting agent holds it');
    step('accept');

    const ended = await unary(agents, 'EndContact', { agent_id: agentId, contact_id: contact.contact_id });
    check(ended.contact.state === 'CONTACT_STATE_WRAP_UP', `ended is WRAP_UP: ${ended.contact.state}`);
    step('end');

    const completed = await unary(agents, 'CompleteContact', {
      agent_id: agentId,
      contact_id: contact.contact_id,
      disposition: DISPOSITION,
    });
    check(completed.contact.state === 'CONTACT_STATE_COMPLETED', `completed is COMPLETED: ${completed.contact.state}`);
    check(completed.contact.disposition === DISPOSITION, `disposition: ${completed.contact.disposition}`);
    step('complete', DISPOSITION);

    // Gateway: the contact as the router now has it.
    const got = await unary(contacts, 'GetContact', { contact_id: contact.contact_id });
    const final = got.contact;
    check(final.state === 'CONTACT_STATE_COMPLETED', `GetContact shows COMPLETED: ${final.state}`);
    check(final.disposition === DISPOSITION, `GetContact shows the disposition: ${final.disposition}`);
    check(final.agent_id === agentId, `GetContact shows the agent: ${final.agent_id}`);
    check(final.offer_count >= 1, `offered at least once: ${final.offer_count}`);
    check(got.queue_position === 0, `a completed contact is not waiting: position ${got.queue_position}`);
    check(!isSet(got.estimated_wait_seconds), `no estimate when not waiting: ${got.estimated_wait_seconds}`);
    check(got.wait_seconds >= 0, `wait_seconds: ${got.wait_seconds}`);
    const t = final.timings;
    const order = ['queued_at', 'offered_at', 'answered_at', 'ended_at', 'completed_at'];
    for (const field of order) check(isSet(t[field]), `timings.${field} is set`);
    check(!isSet(t.abandoned_at), 'timings.abandoned_at is unset');
    for (let i = 1; i < order.length; i += 1) {
      check(toDate(t[order[i - 1]]) <= toDate(t[order[i]]), `${order[i - 1]} <= ${order[i]}`);
    }
    step('get-contact', `${final.state}, waited ${got.wait_seconds.toFixed(3)} s`);

    // Agent: close the stream and sign out.
    stream.cancel();
    step('cancel-stream');
    const signedOut = await unary(agents, 'SignOut', { agent_id: agentId });
    signedIn = false;
    check(signedOut.agent.status === 'AGENT_STATUS_OFFLINE', `signed out is OFFLINE: ${signedOut.agent.status}`);
    step('sign-out');

    return { ok: true, contact_id: contact.contact_id, agent_id: agentId, steps, invalid_argument: invalid };
  } finally {
    if (stream && !stream.cancelled) stream.cancel();
    if (signedIn) {
      // Best effort, so that a failed run leaves no agent signed in.
      await unary(agents, 'SignOut', { agent_id: agentId }).catch(() => {});
    }
    contacts.close();
    agents.close();
  }
}

async function main() {
  const target = process.argv[2];
  if (!target || process.argv.length > 3) {
    process.stderr.write('usage: node client.js <host:port>\n');
    return 2;
  }
  const overall = setTimeout(() => {
    process.stderr.write(`node-client: failed: the run took longer than ${OVERALL_TIMEOUT_MS} ms\n`);
    process.exit(1);
  }, OVERALL_TIMEOUT_MS);
  overall.unref();
  try {
    const summary = await run(target);
    process.stdout.write(`${JSON.stringify(summary)}\n`);
    return 0;
  } catch (error) {
    // A gRPC error carries its status code; its message already names the method.
    const isGrpc = typeof error.code === 'number';
    const code = isGrpc ? ` (gRPC status ${error.code})` : '';
    process.stderr.write(`node-client: failed${code}: ${error.message || error}\n`);
    let described;
    try {
      described = isGrpc ? describeError(error) : { message: String(error.message || error) };
    } catch (undecodable) {
      described = { code: statusName(error.code), message: error.details, undecodable: String(undecodable) };
    }
    process.stdout.write(`${JSON.stringify({ ok: false, error: described })}\n`);
    return 1;
  } finally {
    clearTimeout(overall);
  }
}

main().then((code) => {
  // Exit now rather than when the event loop drains: the summary is already
  // written (stdout to a pipe or file is synchronous), and nothing may linger.
  process.exit(code);
});
