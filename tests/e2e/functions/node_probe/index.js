// index.js - the Node function of the invocation e2e tests (runtime nodejs20.x, handler
// index.handler, CommonJS): answers the event, the context fields and a few environment
// variables; throws a TypeError when the event has "fail": true.
const INSTANCE = require('crypto').randomUUID();
let calls = 0;

exports.handler = async (event, context) => {
  calls += 1;
  console.log('node probe event', JSON.stringify(event));
  if (event && event.fail) {
    throw new TypeError('node probe was asked to fail');
  }
  return {
    instance: INSTANCE,
    calls,
    event,
    awsRequestId: context.awsRequestId,
    functionName: context.functionName,
    functionVersion: context.functionVersion,
    memoryLimitInMB: context.memoryLimitInMB,
    invokedFunctionArn: context.invokedFunctionArn,
    logGroupName: context.logGroupName,
    remaining: context.getRemainingTimeInMillis(),
    clientContext: context.clientContext ?? null,
    env: {
      AWS_LAMBDA_FUNCTION_NAME: process.env.AWS_LAMBDA_FUNCTION_NAME,
      AWS_EXECUTION_ENV: process.env.AWS_EXECUTION_ENV,
      AWS_LAMBDA_RUNTIME_API: process.env.AWS_LAMBDA_RUNTIME_API,
      _HANDLER: process.env._HANDLER,
      USER_VAR: process.env.USER_VAR ?? null,
    },
  };
};
