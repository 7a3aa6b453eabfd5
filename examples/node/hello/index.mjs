// index.mjs - the Node "hello" example (runtime nodejs18.x/20.x/22.x, handler index.handler, ES
// module): greets the event's "name", echoes the context fields a function can see, logs with
// console.log, and throws when the event has "fail": true.
export const handler = async (event, context) => {
  console.log('hello from node, request', context.awsRequestId);
  if (event?.fail) {
    throw new Error('the event asked me to fail');
  }
  return {
    message: `Hello, ${event?.name ?? 'world'}!`,
    awsRequestId: context.awsRequestId,
    functionName: context.functionName,
    functionVersion: context.functionVersion,
    memoryLimitInMB: context.memoryLimitInMB,
    invokedFunctionArn: context.invokedFunctionArn,
    logGroupName: context.logGroupName,
    logStreamName: context.logStreamName,
    remainingTimeInMillis: context.getRemainingTimeInMillis(),
    clientContext: context.clientContext ?? null,
    traceId: process.env._X_AMZN_TRACE_ID ?? null,
  };
};
