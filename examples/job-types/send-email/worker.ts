import { MessageRejected, SESClient, SendEmailCommand } from '@aws-sdk/client-ses';
import { PermanentJobError } from '../../../lambda/shared/errors';
import { createWorker } from '../../../lambda/shared/worker';
import { definition } from './definition';

const ses = new SESClient({});

export const handler = createWorker(definition, async ({ input, settings, putOutput }) => {
  try {
    const sent = await ses.send(
      new SendEmailCommand({
        Source: settings.from,
        Destination: { ToAddresses: [input.to] },
        Message: { Subject: { Data: input.subject }, Body: { Text: { Data: input.text } } },
      }),
    );
    const receipt = JSON.stringify({ messageId: sent.MessageId, to: input.to });
    return { outputs: [await putOutput('receipt.json', receipt, { name: 'receipt', format: 'json', contentType: 'application/json' })] };
  } catch (err) {
    // A rejected message will be rejected again: fail the job now. Anything else (throttling) is retried with backoff.
    if (err instanceof MessageRejected) throw new PermanentJobError('rejected', err.message);
    throw err;
  }
});
