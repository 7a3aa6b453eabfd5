// bootstrap.js - nimbus' runtime for `nodejs18.x/20.x/22.x` functions: the Lambda Runtime API loop,
// Node standard library only.
//
// Started as `/usr/bin/node /var/runtime/node/bootstrap.js` with Lambda's environment. It loads the
// handler named by _HANDLER ("[dir/]file.export[.nested]") from LAMBDA_TASK_ROOT - `file` may be
// extensionless, .js (CommonJS, or ESM under a "type":"module" package.json), .mjs (ESM, dynamic
// import()) or .cjs - then serves invocations over one keep-alive HTTP connection to
// AWS_LAMBDA_RUNTIME_API (a net.Socket; Node's HTTP parser reads the replies). The outcome of an
// invocation (POST response/error) and the following GET next go out in one write (HTTP/1.1
// pipelining, like runtimes/c), so the platform sees the instance waiting for work as soon as it
// has answered; before an exit the POST goes alone.
//
// It follows the official runtime (aws-lambda-nodejs-runtime-interface-client) in what a function
// can observe: async and callback handlers, callbackWaitsForEmptyEventLoop (the response of a
// callback handler is sent once the event loop is empty: 'beforeExit'), the context object, error
// documents {errorType, errorMessage, trace}, Runtime.* error types, console lines
// `<ISO time>\t<request id>\t<LEVEL>\t<message>` with newlines turned into \r (one record per call),
// and uncaught exceptions / unhandled rejections failing the current invocation (or init) and
// exiting. Differences are listed in runtimes/README.md.
'use strict';

const http = require('http');
const net = require('net');
const fs = require('fs');
const path = require('path');
const util = require('util');
const { pathToFileURL } = require('url');

const RUNTIME_PREFIX = '/2018-06-01/runtime';
const ERROR_TYPE_HEADER = 'Lambda-Runtime-Function-Error-Type';
const USER_AGENT = `nimbus-node/${process.versions.node}`;

// ---- errors ------------------------------------------------------------------------------------

function isErrorLike(obj) {
  return (
    obj &&
    typeof obj.name === 'string' &&
    typeof obj.message === 'string' &&
    typeof obj.stack === 'string'
  );
}

function intoError(err) {
  return err instanceof Error ? err : new Error(err);
}

/* The document posted to /error and /init/error. */
function toRapidResponse(error) {
  try {
    if (util.types.isNativeError(error) || isErrorLike(error)) {
      return {
        errorType: error.name,
        errorMessage: error.message,
        trace: error.stack.split('\n'),
      };
    }
    return {
      errorType: typeof error,
      errorMessage: String(error),
      trace: [],
    };
  } catch (_err) {
    return {
      errorType: 'handled',
      errorMessage:
        'callback called with Error argument, but there was a problem while retrieving one or more of its message, name, and stack',
    };
  }
}

function withEnumerableProperties(error) {
  if (error instanceof Error) {
    const ret = Object.assign(
      { errorType: error.name, errorMessage: error.message, code: error.code },
      error,
    );
    if (typeof error.stack === 'string') {
      ret.stack = error.stack.split('\n');
    }
    return ret;
  }
  return error;
}

/* The error as it appears in a log line; starts with a tab like the official runtime's. */
function toFormatted(error) {
  try {
    return '\t' + JSON.stringify(error, (_k, v) => withEnumerableProperties(v));
  } catch (_err) {
    return '\t' + JSON.stringify(toRapidResponse(error));
  }
}

const Errors = {};
for (const cls of [
  class ImportModuleError extends Error {},
  class HandlerNotFound extends Error {},
  class MalformedHandlerName extends Error {},
  class UserCodeSyntaxError extends Error {},
  class MalformedStreamingHandler extends Error {},
  class NodeJsExit extends Error {},
  class UnhandledPromiseRejection extends Error {
    constructor(reason, promise) {
      super(reason);
      this.reason = reason;
      this.promise = promise;
    }
  },
]) {
  cls.prototype.name = `Runtime.${cls.name}`;
  Errors[cls.name] = cls;
}

// ---- console -----------------------------------------------------------------------------------

// Shared through a global symbol, like the official runtime, so libraries can read it.
const REQUEST_ID_SYMBOL = Symbol.for('aws.lambda.runtime.requestId');
const setCurrentRequestId = (id) => (global[REQUEST_ID_SYMBOL] = id);
const getCurrentRequestId = () => global[REQUEST_ID_SYMBOL];

const LEVELS = Object.freeze({
  TRACE: { name: 'TRACE', priority: 1 },
  DEBUG: { name: 'DEBUG', priority: 2 },
  INFO: { name: 'INFO', priority: 3 },
  WARN: { name: 'WARN', priority: 4 },
  ERROR: { name: 'ERROR', priority: 5 },
  FATAL: { name: 'FATAL', priority: 6 },
});

const LOG_FORMAT_JSON = (process.env.AWS_LAMBDA_LOG_FORMAT || '').toUpperCase() === 'JSON';

function formatJsonMessage(requestId, timestamp, level, ...params) {
  const result = { timestamp, level: level.name, requestId };
  const errReplacer = (_k, value) => {
    if (value instanceof Error) {
      return Object.assign(
        {
          errorType: value?.constructor?.name ?? 'UnknownError',
          errorMessage: value.message,
          stackTrace: typeof value.stack === 'string' ? value.stack.split('\n') : value.stack,
        },
        value,
      );
    }
    return value;
  };
  if (params.length === 1) {
    result.message = params[0];
    try {
      return JSON.stringify(result, errReplacer);
    } catch (_err) {
      result.message = util.format(result.message);
      return JSON.stringify(result);
    }
  }
  result.message = util.format(...params);
  for (const param of params) {
    if (param instanceof Error) {
      result.errorType = param?.constructor?.name ?? 'UnknownError';
      result.errorMessage = param.message;
      result.stackTrace = typeof param.stack === 'string' ? param.stack.split('\n') : [];
      break;
    }
  }
  return JSON.stringify(result);
}

function writeLog(level, message, ...params) {
  const time = new Date().toISOString();
  const requestId = getCurrentRequestId();
  let line = LOG_FORMAT_JSON
    ? formatJsonMessage(requestId, time, level, message, ...params)
    : `${time}\t${requestId}\t${level.name}\t${util.format(message, ...params)}`;
  line = line.replace(/\n/g, '\r');
  process.stdout.write(line + '\n');
}

function patchConsole() {
  const nop = () => {};
  const min = LEVELS[(process.env.AWS_LAMBDA_LOG_LEVEL || '').toUpperCase()] ?? LEVELS.TRACE;
  const make = (level) =>
    level.priority >= min.priority ? (msg, ...params) => writeLog(level, msg, ...params) : nop;
  console.trace = make(LEVELS.TRACE);
  console.debug = make(LEVELS.DEBUG);
  console.info = make(LEVELS.INFO);
  console.log = console.info;
  console.warn = make(LEVELS.WARN);
  console.error = make(LEVELS.ERROR);
  console.fatal = (msg, ...params) => writeLog(LEVELS.FATAL, msg, ...params);
}

function logError(msg, err) {
  if (LOG_FORMAT_JSON) {
    console.error(intoError(err));
  } else {
    console.error(msg, toFormatted(intoError(err)));
  }
}

// ---- the Runtime API client --------------------------------------------------------------------

// Node's own HTTP parser (llhttp), which its http client uses: http.Agent cannot pipeline.
const { HTTPParser } = require('_http_common');

const RESET_CODES = new Set(['ECONNRESET', 'EPIPE', 'ECONNABORTED']);

/* True for a request that got no reply byte because its connection closed or was reset. */
function isUnanswered(err) {
  return err.unanswered === true && RESET_CODES.has(err.code);
}

/* One TCP connection to the Runtime API. Requests are written in order and their replies, parsed
 * by HTTPParser, settle them in the same order (HTTP/1.1 answers pipelined requests in order).
 * The socket holds the event loop open only while a reply is awaited, like an http.Agent's free
 * socket, so 'beforeExit' (callbackWaitsForEmptyEventLoop) still fires while a handler runs. */
class Connection {
  constructor(hostname, port) {
    this.pending = []; // {resolve, reject, gotBytes} per request written, oldest first
    this.reused = false; // a reply was read on it: the peer may have closed it since
    this.dead = false;
    this.error = null;
    this.reply = null; // the reply being parsed (to pending[0])
    const parser = new HTTPParser();
    parser.initialize(HTTPParser.RESPONSE, {}, 0, 0);
    parser[HTTPParser.kOnMessageBegin] = () => {
      this.reply = { rawHeaders: [], chunks: [] };
      if (this.pending.length) this.pending[0].gotBytes = true;
    };
    // many or long headers arrive in parts before kOnHeadersComplete, which then gets none
    parser[HTTPParser.kOnHeaders] = (headers) => this.reply.rawHeaders.push(...headers);
    parser[HTTPParser.kOnHeadersComplete] = (_maj, _min, headers, _m, _u, status, _s, _up, ka) => {
      if (headers) this.reply.rawHeaders.push(...headers);
      this.reply.status = status;
      this.reply.keepAlive = ka;
      return 0;
    };
    parser[HTTPParser.kOnBody] = (b) => this.reply.chunks.push(b);
    parser[HTTPParser.kOnMessageComplete] = () => this.complete();
    this.parser = parser;
    this.socket = net.connect({ host: hostname, port });
    this.socket.setNoDelay(true);
    this.socket.on('data', (d) => this.onData(d));
    this.socket.on('error', (err) => (this.error = err));
    this.socket.on('close', () => this.fail(this.error));
  }

  /* Writes head, body, then `then` (a request pipelined behind it) in one writev; returns a
   * promise of each reply. */
  send(head, body, then) {
    const replies = [this.expect()];
    if (then) replies.push(this.expect());
    this.socket.cork();
    this.socket.write(head, 'latin1');
    if (body !== undefined && body.length) this.socket.write(body);
    if (then) this.socket.write(then);
    this.socket.uncork();
    return replies;
  }

  expect() {
    if (!this.pending.length) this.socket.ref();
    return new Promise((resolve, reject) => {
      this.pending.push({ resolve, reject, gotBytes: false });
    });
  }

  onData(d) {
    if (this.dead) return;
    const ret = this.parser.execute(d);
    if (ret instanceof Error && !this.dead) {
      const err = new Error(`bad HTTP reply from the Runtime API: ${ret.code} ${ret.reason}`);
      err.code = ret.code;
      this.fail(err);
    }
  }

  complete() {
    if (this.dead) return;
    const r = this.reply;
    const headers = {};
    for (let i = 0; i + 1 < r.rawHeaders.length; i += 2) {
      headers[r.rawHeaders[i].toLowerCase()] = r.rawHeaders[i + 1];
    }
    this.reused = true;
    const p = this.pending.shift();
    if (p) p.resolve({ status: r.status, headers, body: Buffer.concat(r.chunks) });
    if (!r.keepAlive) {
      this.fail(null); // the requests behind it will not be answered
    } else if (!this.pending.length) {
      this.socket.unref();
    }
  }

  /* Ends the connection; each request still waiting fails, `unanswered` if no byte of its reply
   * arrived. */
  fail(cause) {
    if (this.dead) return;
    this.dead = true;
    this.socket.destroy();
    for (const p of this.pending.splice(0)) {
      const err = new Error(
        cause ? cause.message : 'the Runtime API closed the connection without a reply',
      );
      err.code = cause && cause.code ? cause.code : 'ECONNRESET';
      err.unanswered = !p.gotBytes;
      p.reject(err);
    }
  }
}

class RuntimeClient {
  constructor(hostPort) {
    const i = hostPort.lastIndexOf(':');
    this.hostPort = hostPort;
    this.hostname = hostPort.slice(0, i).replace(/^\[|\]$/g, '');
    this.port = parseInt(hostPort.slice(i + 1), 10);
    this.conn = null;
    // the reply to the GET next written behind the last POST: a promise of {res} or {err}
    this.nextReply = null;
    this.nextHead = Buffer.from(this.head('GET', `${RUNTIME_PREFIX}/invocation/next`), 'latin1');
  }

  head(method, urlPath, headers, bodyLength) {
    let s = `${method} ${urlPath} HTTP/1.1\r\nHost: ${this.hostPort}\r\n`;
    s += `User-Agent: ${USER_AGENT}\r\n`;
    for (const [name, value] of Object.entries(headers || {})) {
      http.validateHeaderValue(name, value);
      s += `${name}: ${value}\r\n`;
    }
    if (bodyLength !== undefined) s += `Content-Length: ${bodyLength}\r\n`;
    return s + '\r\n';
  }

  /* One request; resolves {status, headers, body: Buffer}. With thenNext, a GET next goes out in
   * the same write (nextInvocation takes its reply). Retries once on a fresh connection when a
   * reused keep-alive connection turns out to be closed before any reply arrived. */
  request(method, urlPath, body, headers, thenNext) {
    let head;
    try {
      const length = body === undefined ? undefined : Buffer.byteLength(body);
      head = this.head(method, urlPath, headers, length);
    } catch (err) {
      return Promise.reject(err); // a header value Node refuses (ERR_INVALID_CHAR)
    }
    return this.attempt(head, body, thenNext, false);
  }

  attempt(head, body, thenNext, retried) {
    if (!this.conn || this.conn.dead) this.conn = new Connection(this.hostname, this.port);
    const reused = this.conn.reused;
    const [reply, next] = this.conn.send(head, body, thenNext ? this.nextHead : null);
    this.nextReply = next ? next.then((res) => ({ res }), (err) => ({ err })) : null;
    return reply.catch((err) => {
      if (!retried && reused && isUnanswered(err)) return this.attempt(head, body, thenNext, true);
      throw err;
    });
  }

  async nextInvocation() {
    let res = null;
    if (this.nextReply) {
      const r = await this.nextReply;
      this.nextReply = null;
      if (r.err && !isUnanswered(r.err)) throw r.err;
      res = r.res; // unanswered (the connection closed): ask again on a fresh one
    }
    if (!res) res = await this.request('GET', `${RUNTIME_PREFIX}/invocation/next`);
    if (res.status !== 200) {
      throw new Error(`GET invocation/next answered ${res.status}: ${res.body.toString()}`);
    }
    return { bodyJson: res.body.toString('utf8'), headers: res.headers };
  }

  post(urlPath, body, headers, callback, thenNext) {
    this.request('POST', urlPath, body, headers, thenNext).then(
      (res) => {
        if (res.status >= 500) {
          fatal(`POST ${urlPath} answered ${res.status}: ${res.body.toString()}`);
        }
        if (res.status !== 202) {
          // e.g. 413 for a response over 6 MB: the platform reports it to the caller
          process.stderr.write(
            `nimbus-runtime: POST ${urlPath} answered ${res.status}: ${res.body.toString()}\n`,
          );
        }
        if (callback) callback();
      },
      (err) => fatal(`POST ${urlPath} failed: ${err.message}`),
    );
  }

  /* Posts the result with the next GET next behind it; callback (the next iteration) runs once
   * the platform answered the POST, which it does together with the next invocation. */
  postInvocationResponse(response, id, callback) {
    // throws (synchronously) for values JSON cannot represent; the caller turns that into an error
    const bodyString = trySerializeResponse(response);
    this.post(
      `${RUNTIME_PREFIX}/invocation/${encodeURIComponent(id)}/response`,
      bodyString,
      { 'Content-Type': 'application/json' },
      callback,
      true,
    );
  }

  postInvocationRaw(body, contentType, id, callback) {
    this.post(
      `${RUNTIME_PREFIX}/invocation/${encodeURIComponent(id)}/response`,
      body,
      { 'Content-Type': contentType },
      callback,
      true,
    );
  }

  /* thenNext: the loop goes on after it (a GET next goes out with it); not when the process is
   * about to exit, whose POST must be answered on its own. */
  postInvocationError(error, id, callback, thenNext) {
    const response = toRapidResponse(error);
    this.post(
      `${RUNTIME_PREFIX}/invocation/${encodeURIComponent(id)}/error`,
      JSON.stringify(response),
      errorHeaders(response),
      callback,
      thenNext,
    );
  }

  postInitError(error, callback) {
    const response = toRapidResponse(error);
    this.post(`${RUNTIME_PREFIX}/init/error`, JSON.stringify(response), errorHeaders(response), callback);
  }
}

function errorHeaders(response) {
  const type = String(response.errorType || '').replace(/[^\x20-\x7e]/g, '?');
  return { 'Content-Type': 'application/json', [ERROR_TYPE_HEADER]: type || 'Runtime.Unknown' };
}

function trySerializeResponse(body) {
  try {
    return JSON.stringify(body === undefined ? null : body);
  } catch (_err) {
    throw new Error('Unable to stringify response body');
  }
}

function fatal(message) {
  process.stderr.write(`nimbus-runtime: ${message}\n`);
  process.exit(1);
}

// ---- loading the handler -----------------------------------------------------------------------

const FUNCTION_EXPR = /^([^.]*)\.(.*)$/;
const HANDLER_STREAMING = Symbol.for('aws.lambda.runtime.handler.streaming');
const STREAM_RESPONSE = 'response';

function hasFolderPackageJsonTypeModule(folder) {
  if (folder.endsWith('/node_modules')) {
    return false;
  }
  const pj = path.join(folder, '/package.json');
  if (fs.existsSync(pj)) {
    try {
      const pkg = JSON.parse(fs.readFileSync(pj));
      if (pkg) {
        return pkg.type === 'module';
      }
    } catch (e) {
      console.warn(`${pj} cannot be read, it will be ignored for ES module detection purposes.`, e);
      return false;
    }
  }
  if (folder === '/') {
    return false;
  }
  return hasFolderPackageJsonTypeModule(path.resolve(folder, '..'));
}

function tryRequireFile(file, extension) {
  const p = file + (extension || '');
  return fs.existsSync(p) ? require(p) : undefined;
}

async function tryAwaitImport(file, extension) {
  const p = file + (extension || '');
  return fs.existsSync(p) ? await import(pathToFileURL(p).href) : undefined;
}

async function tryRequire(appRoot, moduleRoot, module) {
  const lambdaStylePath = path.resolve(appRoot, moduleRoot, module);

  const extensionless = tryRequireFile(lambdaStylePath);
  if (extensionless) {
    return extensionless;
  }
  const pjHasModule = hasFolderPackageJsonTypeModule(path.dirname(lambdaStylePath));
  if (!pjHasModule) {
    const loaded = tryRequireFile(lambdaStylePath, '.js');
    if (loaded) {
      return loaded;
    }
  }
  const loaded =
    (pjHasModule && (await tryAwaitImport(lambdaStylePath, '.js'))) ||
    (await tryAwaitImport(lambdaStylePath, '.mjs')) ||
    tryRequireFile(lambdaStylePath, '.cjs');
  if (loaded) {
    return loaded;
  }
  // not a file under the task root: a package name resolved from there (node_modules)
  const nodeStylePath = require.resolve(module, { paths: [appRoot, moduleRoot] });
  return require(nodeStylePath);
}

async function loadUserApp(appRoot, moduleRoot, module) {
  try {
    return await tryRequire(appRoot, moduleRoot, module);
  } catch (e) {
    if (e instanceof SyntaxError) {
      throw new Errors.UserCodeSyntaxError(e);
    } else if (e && (e.code === 'MODULE_NOT_FOUND' || e.code === 'ERR_MODULE_NOT_FOUND')) {
      throw new Errors.ImportModuleError(e);
    }
    throw e;
  }
}

async function loadHandler(appRoot, fullHandlerString) {
  if (fullHandlerString.includes('..')) {
    throw new Errors.MalformedHandlerName(
      `'${fullHandlerString}' is not a valid handler name. Use absolute paths when specifying root directories in handler names.`,
    );
  }
  const handlerString = path.basename(fullHandlerString);
  const moduleRoot = fullHandlerString.substring(0, fullHandlerString.indexOf(handlerString));
  const match = handlerString.match(FUNCTION_EXPR);
  if (!match || match.length !== 3) {
    throw new Errors.MalformedHandlerName('Bad handler');
  }
  const [, module, handlerPath] = match;

  const userApp = await loadUserApp(appRoot, moduleRoot, module);
  const handlerFunc = handlerPath.split('.').reduce((nested, key) => nested && nested[key], userApp);
  if (!handlerFunc) {
    throw new Errors.HandlerNotFound(`${fullHandlerString} is undefined or not exported`);
  }
  if (typeof handlerFunc !== 'function') {
    throw new Errors.HandlerNotFound(`${fullHandlerString} is not a function`);
  }
  return handlerFunc;
}

function isAsyncFunction(fn) {
  try {
    return fn && fn.constructor && fn.constructor.name === 'AsyncFunction';
  } catch (_err) {
    return false;
  }
}

function isPromise(obj) {
  return obj && obj.then && typeof obj.then === 'function';
}

// ---- awslambda.streamifyResponse: accepted, but the response is buffered --------------------

class HttpResponseStream {
  static from(underlyingStream, prelude) {
    underlyingStream.setContentType('application/vnd.awslambda.http-integration-response');
    const metadata = JSON.stringify(prelude);
    underlyingStream._onBeforeFirstWrite = (write) => {
      write(metadata);
      write(new Uint8Array(8));
    };
    return underlyingStream;
  }
}

function installGlobalAwsLambda() {
  const off = process.env.AWS_LAMBDA_NODEJS_NO_GLOBAL_AWSLAMBDA;
  if (off === '1' || off === 'true') {
    return;
  }
  globalThis.awslambda = {
    streamifyResponse: (handler, _options) => {
      handler[HANDLER_STREAMING] = STREAM_RESPONSE;
      return handler;
    },
    HttpResponseStream,
  };
}

/* A Writable that collects the whole "stream" in memory (nimbus does not stream responses). */
function createBufferedResponseStream() {
  const { Writable } = require('stream');
  const chunks = [];
  let contentType = 'application/octet-stream';
  let started = false;
  const push = (chunk) =>
    chunks.push(typeof chunk === 'string' ? Buffer.from(chunk) : Buffer.from(chunk));
  const begin = () => {
    if (!started) {
      started = true;
      if (stream._onBeforeFirstWrite) stream._onBeforeFirstWrite(push);
    }
  };
  const stream = new Writable({
    write(chunk, _encoding, cb) {
      begin();
      push(chunk);
      cb();
    },
    final(cb) {
      begin();
      cb();
    },
  });
  stream.setContentType = (ct) => {
    if (started) throw new Error('Cannot set content-type, too late.');
    contentType = ct;
  };
  stream.result = () => ({ body: Buffer.concat(chunks), contentType });
  return stream;
}

// ---- the invocation context ----------------------------------------------------------------

function parseJsonHeader(jsonString, name) {
  if (jsonString === undefined) {
    return undefined;
  }
  try {
    return JSON.parse(jsonString);
  } catch (err) {
    throw new Error(`Cannot parse ${name} as json: ${err.toString()}`);
  }
}

/* Adds the environment and header data to the callback context (Object.assign, like the RIC). */
function attachEnvironmentData(callbackContext, headers) {
  const trace = headers['lambda-runtime-trace-id'];
  if (trace) {
    process.env._X_AMZN_TRACE_ID = trace;
  } else {
    delete process.env._X_AMZN_TRACE_ID;
  }
  const deadline = headers['lambda-runtime-deadline-ms'];
  return Object.assign(
    callbackContext,
    {
      functionVersion: process.env.AWS_LAMBDA_FUNCTION_VERSION,
      functionName: process.env.AWS_LAMBDA_FUNCTION_NAME,
      memoryLimitInMB: process.env.AWS_LAMBDA_FUNCTION_MEMORY_SIZE,
      logGroupName: process.env.AWS_LAMBDA_LOG_GROUP_NAME,
      logStreamName: process.env.AWS_LAMBDA_LOG_STREAM_NAME,
    },
    {
      clientContext: parseJsonHeader(headers['lambda-runtime-client-context'], 'ClientContext'),
      identity: parseJsonHeader(headers['lambda-runtime-cognito-identity'], 'CognitoIdentity'),
      invokedFunctionArn: headers['lambda-runtime-invoked-function-arn'],
      awsRequestId: headers['lambda-runtime-aws-request-id'],
      tenantId: headers['lambda-runtime-aws-tenant-id'],
      getRemainingTimeInMillis: function () {
        return deadline - Date.now();
      },
    },
  );
}

// The one 'beforeExit' action: what to do when the event loop runs dry during an invocation.
const BeforeExit = {
  listener: () => {},
  set(fn) {
    this.listener = fn;
  },
  reset() {
    this.listener = () => {};
  },
  invoke() {
    BeforeExit.listener();
  },
};

/* callback(err, result) and context.succeed/fail/done, each answering at most once (as the RIC). */
function buildCallbackContext(client, id, scheduleNext) {
  const postError = (err, callback) => {
    logError('Invoke Error', err);
    client.postInvocationError(err, id, callback, true);
  };
  let isCompleteInvoked = false;
  const complete = (result, callback) => {
    if (isCompleteInvoked) {
      console.error(
        'Invocation has already been reported as done. Cannot call complete more than once per invocation.',
      );
      return;
    }
    isCompleteInvoked = true;
    client.postInvocationResponse(result, id, callback);
  };
  let waitForEmptyEventLoop = true;

  const callback = function (err, result) {
    BeforeExit.reset();
    if (err !== undefined && err !== null) {
      postError(err, scheduleNext);
    } else if (!waitForEmptyEventLoop) {
      complete(result, scheduleNext);
    } else {
      BeforeExit.set(() => setImmediate(() => complete(result, scheduleNext)));
    }
  };
  const done = (err, result) => {
    BeforeExit.reset();
    if (err !== undefined && err !== null) {
      postError(err, scheduleNext);
    } else {
      complete(result, scheduleNext);
    }
  };
  const succeed = (result) => done(null, result);
  const fail = (err) => (err === undefined || err === null ? done('handled') : done(err, null));

  const callbackContext = {
    get callbackWaitsForEmptyEventLoop() {
      return waitForEmptyEventLoop;
    },
    set callbackWaitsForEmptyEventLoop(value) {
      waitForEmptyEventLoop = value;
    },
    succeed,
    fail,
    done,
  };

  let finished = false;
  const once =
    (fn) =>
    (...args) => {
      if (!finished) {
        fn(...args);
        finished = true;
      }
    };
  callbackContext.succeed = once(callbackContext.succeed);
  callbackContext.fail = once(callbackContext.fail);
  callbackContext.done = once(callbackContext.done);
  return [once(callback), callbackContext, () => (isCompleteInvoked = true)];
}

// ---- the loop ----------------------------------------------------------------------------------

class Runtime {
  constructor(client, handler, errorCallbacks) {
    this.client = client;
    this.handler = handler;
    this.isAsync = isAsyncFunction(handler);
    this.streaming = handler[HANDLER_STREAMING] === STREAM_RESPONSE;
    this.errorCallbacks = errorCallbacks;
  }

  scheduleIteration() {
    setImmediate(() => {
      const once = this.streaming ? this.handleOnceStreaming() : this.handleOnce();
      once.then(
        () => {},
        (err) => {
          console.log(`Unexpected Top Level Error: ${err.toString()}`);
          fatal(`cannot get the next invocation: ${err.message}`);
        },
      );
    });
  }

  async next() {
    const { bodyJson, headers } = await this.client.nextInvocation();
    const id = headers['lambda-runtime-aws-request-id'];
    if (!id) {
      fatal('invocation without Lambda-Runtime-Aws-Request-Id');
    }
    setCurrentRequestId(id);
    return { bodyJson, headers, id };
  }

  async handleOnce() {
    const { bodyJson, headers, id } = await this.next();
    const scheduleNext = this.scheduleIteration.bind(this);
    const [callback, callbackContext, markCompleted] = buildCallbackContext(
      this.client,
      id,
      scheduleNext,
    );
    try {
      this.setErrorCallbacks(id);
      this.setDefaultExitListener(id, markCompleted);
      const result = this.handler(
        JSON.parse(bodyJson),
        attachEnvironmentData(callbackContext, headers),
        callback,
      );
      if (isPromise(result)) {
        result.then(callbackContext.succeed, callbackContext.fail).catch(callbackContext.fail);
      }
    } catch (err) {
      callback(err);
    }
  }

  async handleOnceStreaming() {
    const { bodyJson, headers, id } = await this.next();
    const scheduleNext = this.scheduleIteration.bind(this);
    const stream = createBufferedResponseStream();
    let reported = false;
    const fail = (err) => {
      if (reported) return;
      reported = true;
      logError('Invoke Error', err);
      this.client.postInvocationError(intoError(err), id, scheduleNext, true);
    };
    this.setErrorCallbacks(id);
    BeforeExit.set(() => fail(new Error('Response stream is not finished.')));
    try {
      const ctx = attachEnvironmentData({ callbackWaitsForEmptyEventLoop: true }, headers);
      const pending = this.handler(JSON.parse(bodyJson), stream, ctx);
      if (!isPromise(pending)) {
        fail(new Error('Streaming does not support non-async handlers.'));
        return;
      }
      await pending;
      if (!stream.writableFinished) {
        await new Promise((resolve) => stream.once('finish', resolve));
      }
      BeforeExit.reset();
      if (reported) return;
      reported = true;
      const { body, contentType } = stream.result();
      this.client.postInvocationRaw(body, contentType, id, scheduleNext);
    } catch (err) {
      BeforeExit.reset();
      fail(err);
    }
  }

  setErrorCallbacks(id) {
    this.errorCallbacks.uncaughtException = (error) => {
      this.client.postInvocationError(error, id, () => process.exit(129), false);
    };
    this.errorCallbacks.unhandledRejection = (error) => {
      this.client.postInvocationError(error, id, () => process.exit(128), false);
    };
  }

  /* If the loop runs dry before the handler answered: a sync/callback handler answers null; an
   * async handler whose promise never settled fails with Runtime.NodeJsExit. */
  setDefaultExitListener(id, markCompleted) {
    BeforeExit.set(() => {
      markCompleted();
      if (this.isAsync) {
        const err = new Errors.NodeJsExit(
          'The event loop became empty before the handler\'s promise settled',
        );
        logError('Invoke Error', err);
        this.client.postInvocationError(err, id, () => this.scheduleIteration(), true);
      } else {
        this.client.postInvocationResponse(null, id, () => this.scheduleIteration());
      }
    });
  }
}

async function main() {
  patchConsole();
  const apiAddress = process.env.AWS_LAMBDA_RUNTIME_API || '127.0.0.1:9001';
  const client = new RuntimeClient(apiAddress);

  const errorCallbacks = {
    uncaughtException: (error) => client.postInitError(error, () => process.exit(129)),
    unhandledRejection: (error) => client.postInitError(error, () => process.exit(128)),
  };
  process.on('uncaughtException', (error) => {
    logError('Uncaught Exception', error);
    errorCallbacks.uncaughtException(error);
  });
  process.on('unhandledRejection', (reason, promise) => {
    const error = new Errors.UnhandledPromiseRejection(reason, promise);
    logError('Unhandled Promise Rejection', error);
    errorCallbacks.unhandledRejection(error);
  });
  BeforeExit.reset();
  process.on('beforeExit', BeforeExit.invoke);

  const appRoot = process.env.LAMBDA_TASK_ROOT || process.cwd();
  try {
    process.chdir(appRoot);
  } catch (_err) {
    // keep the current directory
  }
  installGlobalAwsLambda();

  let handler;
  try {
    handler = await loadHandler(appRoot, process.env._HANDLER || '');
  } catch (err) {
    // what the official runtime does with a failed load: it surfaces as an uncaught exception
    logError('Uncaught Exception', err);
    client.postInitError(err, () => process.exit(129));
    return;
  }
  new Runtime(client, handler, errorCallbacks).scheduleIteration();
}

main();
