// sdk.mjs - runs a list of AWS SDK for JavaScript v3 calls against nimbus and prints what the SDK
// parsed, one JSON line per call: the e2e tests' JS client (tests/e2e/jssdk.py drives it).
//
// Input (stdin): a JSON array of calls, run in order; a failing call does not stop the rest.
//   {"client": "Lambda", "op": "CreateFunction", "input": {...}}
//     client   the SDK client: "Lambda" loads LambdaClient from @aws-sdk/client-lambda, "SQS"
//              SQSClient from @aws-sdk/client-sqs (any @aws-sdk/client-<lower> in package.json)
//     op       the operation: "<Op>" sends new <Op>Command(input), or
//              "paginate:<Op>"  iterates paginate<Op>({client, pageSize, ...}, input); the output
//                               is {"pages": [page, ...]} (at most "maxPages", default 100)
//              "waitUntil:<W>"  runs waitUntil<W>({client, maxWaitTime, ...}, input); the output
//                               is {"state": "SUCCESS", "reason": <last output>}
//     input    the command input; {"$b64": "..."} anywhere stands for a blob (Uint8Array: ZipFile,
//              Payload), {"$utf8": "..."} for a blob of that text, {"$date": "ISO"} for a Date
//     paginator  extra PaginationConfiguration members, e.g. {"pageSize": 2}
//     waiter     extra WaiterConfiguration members (default {"maxWaitTime": 60, "minDelay": 1,
//                "maxDelay": 2})
//     config     extra client configuration for this call (e.g. {"region": "eu-west-1"} or
//                {"credentials": {"accessKeyId": "...", "secretAccessKey": "..."}})
//     metadata   true keeps the whole $metadata (requestId, attempts, ...) instead of only
//                httpStatusCode
//
// Output (stdout): one line per call, in order:
//   {"output": {...members..., "$metadata": {"httpStatusCode": 200}}}
//   {"error": {"name": "ResourceNotFoundException", "$fault": "client", "message": "...",
//              "$metadata": {"httpStatusCode": 404}, ...modelled members such as "Reason"}}
// A waiter that fails or times out is an error ("TimeoutError", ...) with "waiter": {"state",
// "reason", "observedResponses"}; note that the JS SDK's waiters retry on errors no acceptor
// names (botocore's fail), so a waiter on a missing function times out.
// Returned blobs become {"$b64": "...", "$text": "..."} ($text only when the bytes are valid
// UTF-8), Dates {"$date": "ISO"}, event streams the list of their events. Harness faults (no such
// client or operation) are errors named "HarnessError"; the exit status is non-zero only when
// the input itself cannot be read.
//
// The client: endpoint $NIMBUS_ENDPOINT, region $AWS_REGION (or $AWS_DEFAULT_REGION, else the
// shared config), credentials from the SDK's default provider chain (AWS_ACCESS_KEY_ID/
// AWS_SECRET_ACCESS_KEY, or AWS_SHARED_CREDENTIALS_FILE + AWS_PROFILE, ...), one attempt per
// call (no retries, so a 429 reaches the test).
//
// Adding a test for a new operation needs no change here: call it by name (see tests/README.md).
import { readFileSync } from 'node:fs';

const clients = new Map();
const modules = new Map();

async function sdkModule(client) {
  if (!modules.has(client)) {
    const pkg = `@aws-sdk/client-${client.toLowerCase()}`;
    try {
      modules.set(client, await import(pkg));
    } catch (e) {
      throw harnessError(`cannot load ${pkg} (add it to tests/js/package.json): ${e.message}`);
    }
  }
  return modules.get(client);
}

async function sdkClient(client, config) {
  const key = client + ' ' + JSON.stringify(config || {});
  if (!clients.has(key)) {
    const mod = await sdkModule(client);
    const Ctor = mod[`${client}Client`];
    if (!Ctor) throw harnessError(`@aws-sdk/client-${client.toLowerCase()} has no ${client}Client`);
    clients.set(key, new Ctor({
      endpoint: process.env.NIMBUS_ENDPOINT,
      region: process.env.AWS_REGION || process.env.AWS_DEFAULT_REGION || undefined,
      maxAttempts: 1,
      requestHandler: { connectionTimeout: 5000, requestTimeout: 120000 },
      ...decode(config || {}),
    }));
  }
  return clients.get(key);
}

function harnessError(message) {
  const e = new Error(message);
  e.name = 'HarnessError';
  return e;
}

// JSON input -> SDK input: {"$b64"}, {"$utf8"} -> Uint8Array; {"$date"} -> Date.
function decode(v) {
  if (Array.isArray(v)) return v.map(decode);
  if (v === null || typeof v !== 'object') return v;
  const keys = Object.keys(v);
  if (keys.length === 1 && keys[0] === '$b64') return new Uint8Array(Buffer.from(v.$b64, 'base64'));
  if (keys.length === 1 && keys[0] === '$utf8') return new TextEncoder().encode(v.$utf8);
  if (keys.length === 1 && keys[0] === '$date') return new Date(v.$date);
  return Object.fromEntries(keys.map((k) => [k, decode(v[k])]));
}

const utf8 = new TextDecoder('utf-8', { fatal: true });

// SDK output -> JSON: blobs, dates and event streams made explicit (see the header).
async function encode(v) {
  if (v instanceof Uint8Array) {
    const out = { $b64: Buffer.from(v.buffer, v.byteOffset, v.byteLength).toString('base64') };
    try {
      out.$text = utf8.decode(v);
    } catch {
      /* binary: $b64 only */
    }
    return out;
  }
  if (v instanceof Date) return { $date: v.toISOString() };
  if (Array.isArray(v)) return Promise.all(v.map(encode));
  if (v === null || typeof v !== 'object') return v;
  if (typeof v[Symbol.asyncIterator] === 'function') {
    const events = [];
    for await (const ev of v) events.push(await encode(ev));
    return events;
  }
  const out = {};
  for (const [k, x] of Object.entries(v)) {
    if (x !== undefined) out[k] = await encode(x);
  }
  return out;
}

function metadata(md, call) {
  if (!md) return undefined;
  return call.metadata ? md : { httpStatusCode: md.httpStatusCode };
}

async function result(output, call) {
  const { $metadata, ...members } = output || {};
  const out = await encode(members);
  if ($metadata) out.$metadata = metadata($metadata, call);
  return { output: out };
}

function errorResult(e, call) {
  const out = { name: e.name, message: e.message };
  if (e.$fault) out.$fault = e.$fault;
  // modelled members (Reason, Type, retryAfterSeconds, Message, ...) are own properties
  for (const [k, x] of Object.entries(e)) {
    if (!k.startsWith('$') && !(k in out) && typeof x !== 'function') out[k] = x;
  }
  if (e.$metadata) out.$metadata = metadata(e.$metadata, call);
  if (String(call.op).startsWith('waitUntil:') && !e.$fault && /^\{/.test(e.message || '')) {
    // a waiter that failed, timed out or was aborted: its message is the JSON of {state, reason}
    try {
      out.waiter = JSON.parse(e.message);
    } catch {
      /* not the waiter's own error */
    }
  }
  return { error: out };
}

async function runOne(call) {
  if (typeof call.op !== 'string') throw harnessError('a call needs an "op"');
  const client = call.client || 'Lambda';
  const [kind, name] = call.op.includes(':') ? call.op.split(':', 2) : ['send', call.op];
  const mod = await sdkModule(client);
  const c = await sdkClient(client, call.config);
  const input = decode(call.input || {});
  if (kind === 'send') {
    const Cmd = mod[`${name}Command`];
    if (!Cmd) throw harnessError(`${client} has no operation ${name}`);
    return result(await c.send(new Cmd(input)), call);
  }
  if (kind === 'paginate') {
    const paginate = mod[`paginate${name}`];
    if (!paginate) throw harnessError(`${client} has no paginator for ${name}`);
    const maxPages = call.maxPages || 100;
    const pages = [];
    for await (const page of paginate({ client: c, ...(call.paginator || {}) }, input)) {
      pages.push((await result(page, call)).output);
      if (pages.length > maxPages) throw harnessError(`paginator ${name} exceeded ${maxPages} pages`);
    }
    return { output: { pages } };
  }
  if (kind === 'waitUntil') {
    const wait = mod[`waitUntil${name}`];
    if (!wait) throw harnessError(`${client} has no waiter ${name}`);
    const cfg = { client: c, maxWaitTime: 60, minDelay: 1, maxDelay: 2, ...(call.waiter || {}) };
    const r = await wait(cfg, input);
    const reason = r.reason && typeof r.reason === 'object' ? (await result(r.reason, call)).output : r.reason;
    return { output: { state: r.state, reason } };
  }
  throw harnessError(`unknown op kind '${kind}' (want <Op>, paginate:<Op> or waitUntil:<Waiter>)`);
}

let calls;
try {
  calls = JSON.parse(readFileSync(0, 'utf8'));
  if (!Array.isArray(calls)) throw new Error('the input is not a JSON array');
} catch (e) {
  process.stderr.write(`sdk.mjs: cannot read the calls from stdin: ${e.message}\n`);
  process.exit(2);
}
for (const call of calls) {
  let line;
  try {
    line = await runOne(call);
  } catch (e) {
    line = errorResult(e, call);
  }
  process.stdout.write(JSON.stringify(line) + '\n');
}
