import {
  DeleteMessageCommand,
  GetQueueAttributesCommand,
  ListMessageMoveTasksCommand,
  ReceiveMessageCommand,
  SendMessageCommand,
  SQSClient,
  StartMessageMoveTaskCommand,
  type Message,
  type MessageAttributeValue,
} from '@aws-sdk/client-sqs';
import { ApiError, type ApiClient } from '../api-client';
import { sleep } from '../concurrency';
import { awsErrorMessage, awsFailure, type CliContext } from '../context';
import { JOB_TYPES_OUTPUT, jobIdsFromDeadLetter, laneOfDeadLetter, parseTypeName, queueOutputs, typesFromOutputs, type DeadLetterJobs } from '../dead-letters';
import { CliError, EXIT_FAILURE, EXIT_OK, oneLine } from '../errors';
import { formatTable, formatTime, truncate } from '../output';
import { isUnsupportedOperation, queueCounts, releaseMessages, sendableAttributes } from '../sqs';

export interface DlqOptions {
  peek: number;
  redrive?: boolean;
  json?: boolean;
}

export interface DeadLetterJob {
  jobId: string;
  /** False when the API has no such job (or could not be asked). */
  known: boolean;
  status?: string;
  error?: { code: string; message: string };
}

export interface DeadLetter extends DeadLetterJobs {
  messageId: string;
  sentAt?: string;
  /** Receives so far (the source queue's, carried over, plus peeks). */
  receiveCount?: number;
  body: string;
  messageAttributes?: Record<string, MessageAttributeValue>;
  jobs: DeadLetterJob[];
}

/** Seconds a peeked message stays hidden if this process dies before making it visible again. */
const PEEK_VISIBILITY_SECONDS = 30;
/** Safety stop for the manual redrive loop. */
const MAX_MANUAL_MOVES = 10_000;

/** `offload dlq <type>`: list a job type's dead letters, or `--redrive` them to its queue. */
export async function dlq(ctx: CliContext, typeArg: string, opts: DlqOptions): Promise<number> {
  const name = parseTypeName(typeArg, typesFromOutputs(await ctx.stackOutputs([JOB_TYPES_OUTPUT])));
  const keys = queueOutputs(name);
  const outputs = await ctx.stackOutputs([keys.dlq, keys.queue]);
  const dlqUrl = outputs[keys.dlq];
  const sourceUrl = outputs[keys.queue];
  // The high lane (absent from a stack deployed before lanes).
  const highUrl = outputs[keys.high];
  const sqs = new SQSClient(ctx.aws());
  try {
    return opts.redrive ? await redrive(ctx, sqs, name, dlqUrl, sourceUrl, opts, highUrl) : await list(ctx, sqs, name, dlqUrl, sourceUrl, opts);
  } finally {
    sqs.destroy();
  }
}

/**
 * Peeks at up to `max` dead letters: receives them with a short visibility timeout (so one
 * listing sees each message once), then makes them visible again at once.
 */
export async function peekDeadLetters(sqs: Pick<SQSClient, 'send'>, url: string, max: number): Promise<Message[]> {
  const seen = new Map<string, Message>();
  try {
    while (seen.size < max) {
      const res = await sqs.send(
        new ReceiveMessageCommand({
          QueueUrl: url,
          MaxNumberOfMessages: Math.min(10, max - seen.size),
          VisibilityTimeout: PEEK_VISIBILITY_SECONDS,
          WaitTimeSeconds: 1,
          MessageSystemAttributeNames: ['All'],
          MessageAttributeNames: ['All'],
        }),
      );
      const batch = (res.Messages ?? []).filter((m) => m.MessageId && !seen.has(m.MessageId));
      if (batch.length === 0) break;
      for (const m of batch) seen.set(m.MessageId!, m);
    }
  } finally {
    await releaseMessages(sqs, url, [...seen.values()]);
  }
  return [...seen.values()];
}

async function lookUpJobs(ctx: CliContext, jobIds: string[]): Promise<Map<string, DeadLetterJob>> {
  const found = new Map<string, DeadLetterJob>();
  if (jobIds.length === 0) return found;
  let client: ApiClient;
  try {
    client = await ctx.api();
  } catch (err) {
    ctx.term.warn(`not looking the jobs up (${oneLine(err)})`);
    return found;
  }
  for (const jobId of jobIds) {
    try {
      const job = await client.getJob(jobId);
      found.set(jobId, { jobId, known: true, status: job.status, ...(job.error ? { error: job.error } : {}) });
    } catch (err) {
      if (!(err instanceof ApiError && err.status === 404)) ctx.term.warn(`cannot look job ${jobId} up: ${oneLine(err)}`);
      found.set(jobId, { jobId, known: false });
    }
  }
  return found;
}

async function list(ctx: CliContext, sqs: SQSClient, name: string, dlqUrl: string, sourceUrl: string, opts: DlqOptions): Promise<number> {
  const { term } = ctx;
  let counts: Awaited<ReturnType<typeof queueCounts>>;
  let messages: Message[];
  try {
    counts = await queueCounts(sqs, dlqUrl);
    messages = await peekDeadLetters(sqs, dlqUrl, opts.peek);
  } catch (err) {
    throw awsFailure(`cannot read the ${name} DLQ (${dlqUrl})`, err);
  }
  const letters = messages.map((m) => {
    const parsed = jobIdsFromDeadLetter(m.Body ?? '');
    const sent = Number(m.Attributes?.SentTimestamp);
    const letter: DeadLetter = {
      messageId: m.MessageId!,
      ...(Number.isFinite(sent) && sent > 0 ? { sentAt: new Date(sent).toISOString() } : {}),
      receiveCount: Number(m.Attributes?.ApproximateReceiveCount) || undefined,
      ...parsed,
      body: m.Body ?? '',
      ...(m.MessageAttributes && Object.keys(m.MessageAttributes).length ? { messageAttributes: m.MessageAttributes } : {}),
      jobs: [],
    };
    return letter;
  });
  const jobs = await lookUpJobs(ctx, [...new Set(letters.flatMap((l) => l.jobIds))]);
  for (const l of letters) l.jobs = l.jobIds.map((id) => jobs.get(id) ?? { jobId: id, known: false });

  if (opts.json) {
    term.json({ queue: name, dlqUrl, sourceQueueUrl: sourceUrl, visible: counts.visible, inFlight: counts.inFlight, messages: letters });
    return EXIT_OK;
  }
  term.err(`${name} DLQ: ${counts.visible} message(s) visible, ${counts.inFlight} in flight; showing ${letters.length}`);
  if (letters.length === 0) return EXIT_OK;
  term.out(
    formatTable(
      [
        { header: 'MESSAGE ID' },
        { header: 'SENT' },
        { header: 'RECEIVES', align: 'right' },
        { header: 'JOB ID' },
        { header: 'JOB STATUS' },
        { header: 'LAST ERROR / PROBLEM', maxWidth: 70 },
        { header: 'BODY', maxWidth: 40 },
      ],
      letters.flatMap((l) => {
        const base = [l.messageId, formatTime(l.sentAt), String(l.receiveCount ?? '-')];
        const body = l.body.replace(/\s+/g, ' ');
        if (l.jobs.length === 0) return [[...base, '-', '-', `${l.kind}: ${l.problem ?? ''}`, body]];
        return l.jobs.map((j, i) => [
          ...(i === 0 ? base : ['', '', '']),
          j.jobId,
          j.known ? term.status(j.status ?? '') : 'unknown to the API',
          j.error ? `${j.error.code}: ${j.error.message}` : '',
          i === 0 ? body : '',
        ]);
      }),
    ),
  );
  return EXIT_OK;
}

export interface RedriveResult {
  queue: string;
  method: 'StartMessageMoveTask' | 'manual';
  moved: number;
  /** Messages sent back but not deleted from the DLQ (they are now in both queues). */
  duplicated: number;
  failed: number;
  /** Messages another reader kept invisible until the end (left in the DLQ). */
  notMoved?: number;
  taskHandle?: string;
  taskStatus?: string;
  error?: string;
}

async function redrive(ctx: CliContext, sqs: SQSClient, name: string, dlqUrl: string, sourceUrl: string, opts: DlqOptions, highUrl?: string): Promise<number> {
  const { term } = ctx;
  let arn: string | undefined;
  try {
    arn = (await sqs.send(new GetQueueAttributesCommand({ QueueUrl: dlqUrl, AttributeNames: ['QueueArn'] }))).Attributes?.QueueArn;
  } catch (err) {
    throw awsFailure(`cannot read the ${name} DLQ (${dlqUrl})`, err);
  }
  if (!arn) throw new CliError(`the ${name} DLQ has no ARN`);

  // One attempt only: an endpoint without the call answers 500, which the SDK would retry.
  const once = new SQSClient({ ...ctx.aws(), maxAttempts: 1 });
  let native: RedriveResult | undefined;
  try {
    native = await startMoveTask(once, name, arn, (line) => term.err(line));
  } finally {
    once.destroy();
  }
  const result = native ?? (await manualMove(sqs, name, dlqUrl, sourceUrl, { highUrl }));

  if (opts.json) term.json(result);
  else {
    const how = result.method === 'manual' ? 'one by one (SendMessage, then DeleteMessage)' : `with a message move task (${result.taskStatus ?? 'started'})`;
    term.out(`moved ${result.moved} message(s) from the ${name} DLQ back to its queue ${how}`);
    if (result.notMoved) term.warn(`${result.notMoved} message(s) were held by another reader and stay in the DLQ: run the redrive again`);
    if (result.duplicated) term.warn(`${result.duplicated} message(s) were sent back but could not be deleted from the DLQ: they are in both queues`);
  }
  if (result.error) term.error(result.error);
  return result.failed > 0 || result.error ? EXIT_FAILURE : EXIT_OK;
}

/**
 * SQS's own redrive (StartMessageMoveTask, SourceArn = the DLQ, no destination: back to the
 * queue(s) the messages came from), followed until it ends (at most a minute). Undefined
 * when the endpoint does not implement the call (moto), so the caller moves messages itself.
 */
export async function startMoveTask(
  sqs: Pick<SQSClient, 'send'>,
  name: string,
  arn: string,
  log: (line: string) => void,
  opts: { waitMs?: number; pollMs?: number } = {},
): Promise<RedriveResult | undefined> {
  let handle: string | undefined;
  try {
    handle = (await sqs.send(new StartMessageMoveTaskCommand({ SourceArn: arn }))).TaskHandle;
  } catch (err) {
    if (isUnsupportedOperation(err)) {
      log(`StartMessageMoveTask is not available on this endpoint (${truncate(awsErrorMessage(err), 80)}): moving the messages one by one`);
      return undefined;
    }
    throw awsFailure(`StartMessageMoveTask on the ${name} DLQ failed`, err);
  }
  const result: RedriveResult = { queue: name, method: 'StartMessageMoveTask', moved: 0, duplicated: 0, failed: 0, taskHandle: handle, taskStatus: 'RUNNING' };
  const deadline = Date.now() + (opts.waitMs ?? 60_000);
  while (Date.now() < deadline) {
    const tasks = await sqs.send(new ListMessageMoveTasksCommand({ SourceArn: arn, MaxResults: 1 })).catch(() => undefined);
    // The most recent task of this source: ours (only running tasks carry their handle).
    const task = tasks?.Results?.[0];
    if (task) {
      result.moved = task.ApproximateNumberOfMessagesMoved ?? 0;
      result.taskStatus = task.Status;
      if (task.Status === 'FAILED') result.error = `the message move task failed: ${task.FailureReason ?? 'no reason given'}`;
      if (task.Status && task.Status !== 'RUNNING') break;
    }
    await sleep(opts.pollMs ?? 1000);
  }
  return result;
}

/**
 * The fallback redrive: receive from the DLQ, SendMessage to the source queue with the same
 * body and attributes (to `highUrl`, the high lane, when the message came from it: its
 * `priority` attribute or its upload key says so; StartMessageMoveTask knows the source queue
 * itself), and only once that succeeded DeleteMessage from the DLQ. A failed send
 * stops the move and leaves that message (and the rest of its batch) in the DLQ, visible again.
 */
export async function manualMove(
  sqs: Pick<SQSClient, 'send'>,
  name: string,
  dlqUrl: string,
  sourceUrl: string,
  opts: { retryDelayMs?: number; highUrl?: string } = {},
): Promise<RedriveResult> {
  const result: RedriveResult = { queue: name, method: 'manual', moved: 0, duplicated: 0, failed: 0 };
  let emptyReceives = 0;
  while (result.moved + result.duplicated < MAX_MANUAL_MOVES) {
    let messages: Message[];
    try {
      const res = await sqs.send(
        new ReceiveMessageCommand({
          QueueUrl: dlqUrl,
          MaxNumberOfMessages: 10,
          VisibilityTimeout: 60,
          WaitTimeSeconds: 1,
          MessageAttributeNames: ['All'],
          MessageSystemAttributeNames: ['AWSTraceHeader'],
        }),
      );
      messages = res.Messages ?? [];
    } catch (err) {
      result.error = `cannot receive from the ${name} DLQ: ${awsErrorMessage(err)}`;
      return result;
    }
    if (messages.length === 0) {
      // Empty, or someone else (the sweeper, a `dlq` listing) holds messages for a moment:
      // look again a few times before leaving those to a later redrive.
      const counts = await queueCounts(sqs, dlqUrl).catch(() => undefined);
      const left = counts ? counts.visible + counts.inFlight : 0;
      if (left > result.duplicated && ++emptyReceives <= 3) {
        await sleep(opts.retryDelayMs ?? 2000);
        continue;
      }
      if (left > result.duplicated) result.notMoved = left - result.duplicated;
      return result;
    }
    for (let i = 0; i < messages.length; i++) {
      const m = messages[i];
      try {
        const trace = m.Attributes?.AWSTraceHeader;
        await sqs.send(
          new SendMessageCommand({
            QueueUrl: opts.highUrl && laneOfDeadLetter(m) === 'high' ? opts.highUrl : sourceUrl,
            MessageBody: m.Body ?? '',
            MessageAttributes: sendableAttributes(m.MessageAttributes),
            ...(trace ? { MessageSystemAttributes: { AWSTraceHeader: { DataType: 'String', StringValue: trace } } } : {}),
          }),
        );
      } catch (err) {
        result.failed = messages.length - i;
        result.error = `cannot send message ${m.MessageId} back to the ${name} queue (it stays in the DLQ): ${awsErrorMessage(err)}`;
        await releaseMessages(sqs, dlqUrl, messages.slice(i));
        return result;
      }
      try {
        await sqs.send(new DeleteMessageCommand({ QueueUrl: dlqUrl, ReceiptHandle: m.ReceiptHandle! }));
        result.moved++;
      } catch {
        result.duplicated++;
      }
    }
  }
  return result;
}
