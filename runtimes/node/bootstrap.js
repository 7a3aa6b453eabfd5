// bootstrap.js - nimbus' runtime for `nodejs18.x/20.x/22.x` functions: the Lambda Runtime API loop,
// Node standard library only.
//
// Started as `/usr/bin/node /var/runtime/node/bootstrap.js` with Lambda's environment. It loads the
// handler named by _HANDLER ("[dir/]file.export[.nested]") from LAMBDA_TASK_ROOT - `file` may be
// extensionless, .js (CommonJS, or ESM under a "type":"module" package.json), .mjs (ESM, dynamic
// import()) or .cjs - then serves invocations over one keep-alive HTTP connection (http.Agent,
// maxSockets 1) to AWS_LAMBDA_RUNTIME_API.
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

class RuntimeClient {
  constructor(hostPort) {
    const i = hostPort.lastIndexOf(':');
    this.hostname = hostPort.slice(0, i).replace(/^\[|\]$/g, '');
    this.port = parseInt(hostPort.slice(i + 1), 10);
    this.agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  }

  /* One request; resolves {status, headers, body: Buffer}. Retries once on a fresh connection when
   * a reused keep-alive socket turns out to be closed before any response arrived. */
  request(method, urlPath, body, headers, retried) {
    return new Promise((resolve, reject) => {
      const hdrs = Object.assign({ 'User-Agent': USER_AGENT }, headers || {});
      if (body !== undefined) {
        hdrs['Content-Length'] = Buffer.byteLength(body);
      }
      const req = http.request(
        {
          hostname: this.hostname,
          port: this.port,
          path: urlPath,
          method,
          headers: hdrs,
          agent: this.agent,
        },
        (res) => {
          const chunks = [];
          res.on('data', (c) => chunks.push(c));
          res.on('end', () =>
            resolve({ status: res.statusCode, headers: res.headers, body: Buffer.concat(chunks) }),
          );
          res.on('error', reject);
        },
      );
      req.on('error', (err) => {
        if (!retried && req.reusedSocket && err.code === 'ECONNRESET') {
          this.request(method, urlPath, body, headers, true).then(resolve, reject);
        } else {
          reject(err);
        }
      });
      req.end(body);
    });
  }

  async nextInvocation() {
    const res = await this.request('GET', `${RUNTIME_PREFIX}/invocation/next`);
    if (res.status !== 200) {
      throw new Error(`GET invocation/next answered ${res.status}: ${res.body.toString()}`);
    }
    return { bodyJson: res.body.toString('utf8'), headers: res.headers };
  }

  post(urlPath, body, headers, callback) {
    this.request('POST', urlPath, body, headers).then(
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

  postInvocationResponse(response, id, callback) {
    // throws (synchronously) for values JSON cannot represent; the caller turns that into an error
    const bodyString = trySerializeResponse(response);
    this.post(
      `${RUNTIME_PREFIX}/invocation/${encodeURIComponent(id)}/response`,
      bodyString,
      { 'Content-Type': 'application/json' },
      callback,
    );
  }

  postInvocationRaw(body, contentType, id, callback) {
    this.post(
      `${RUNTIME_PREFIX}/invocation/${encodeURIComponent(id)}/response`,
      body,
      { 'Content-Type': contentType },
      callback,
    );
  }

  postInvocationError(error, id, callback) {
    const response = toRapidResponse(error);
    this.post(
      `${RUNTIME_PREFIX}/invocation/${encodeURIComponent(id)}/error`,
      JSON.stringify(response),
      errorHeaders(response),
      callback,
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
    client.postInvocationError(err, id, callback);
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
      this.client.postInvocationError(intoError(err), id, scheduleNext);
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
      this.client.postInvocationError(error, id, () => process.exit(129));
    };
    this.errorCallbacks.unhandledRejection = (error) => {
      this.client.postInvocationError(error, id, () => process.exit(128));
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
        this.client.postInvocationError(err, id, () => this.scheduleIteration());
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
