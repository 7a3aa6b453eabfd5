// index.js - the Node function of test_node_park.py (nodejs20.x, index.handler): answers which
// instance ran it (a random id made at init), how many events that instance saw, its code
// version (VERSION below, rewritten by the tests) and, when asked, its whole environment.
// {"sleep": ms} waits before answering; {"exit": true} ends the process (Runtime.ExitError).
const VERSION = 'v1';
const INSTANCE = require('crypto').randomUUID();
let calls = 0;

exports.handler = async (event) => {
  calls += 1;
  if (event.exit) process.exit(3);
  if (event.sleep) await new Promise((r) => setTimeout(r, event.sleep));
  return {
    version: VERSION,
    instance: INSTANCE,
    calls,
    pid: process.pid,
    initType: process.env.AWS_LAMBDA_INITIALIZATION_TYPE,
    stream: process.env.AWS_LAMBDA_LOG_STREAM_NAME,
    env: event.env ? process.env : undefined,
  };
};
