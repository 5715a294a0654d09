import { PublishCommand, type SNSClient } from '@aws-sdk/client-sns';
import type { CompletionNotification, JobRecord } from './model';

/** Publishes completion notifications; `type` and `status` are message attributes for subscription filters. */
export class Notifier {
  constructor(
    private readonly sns: SNSClient,
    private readonly topicArn: string,
  ) {}

  async publish(job: JobRecord): Promise<void> {
    if (job.status !== 'succeeded' && job.status !== 'failed') {
      throw new Error(`job ${job.jobId} is ${job.status}, not terminal`);
    }
    const completedAt = job.completedAt ?? new Date().toISOString();
    const message: CompletionNotification = {
      notificationId: `${job.jobId}:${completedAt}`,
      jobId: job.jobId,
      type: job.type,
      status: job.status,
      outputs: job.outputs ?? [],
      error: job.error ?? null,
      completedAt,
    };
    await this.sns.send(
      new PublishCommand({
        TopicArn: this.topicArn,
        Subject: `offload ${job.type} job ${job.status}`,
        Message: JSON.stringify(message),
        MessageAttributes: {
          type: { DataType: 'String', StringValue: job.type },
          status: { DataType: 'String', StringValue: job.status },
          notificationId: { DataType: 'String', StringValue: message.notificationId },
        },
      }),
    );
  }
}
