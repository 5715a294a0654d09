/** What the console's page and the API's console routes share (no Node, no DOM: both sides import it). */

/** One job type's queues, as `GET /queues` shows them. */
export interface QueueStats {
  type: string;
  /** Messages waiting (ApproximateNumberOfMessages), both lanes (normal and high). */
  visible: number;
  /** Received and not yet deleted (ApproximateNumberOfMessagesNotVisible). */
  inFlight: number;
  /** Sent with a delay that has not passed (ApproximateNumberOfMessagesDelayed). */
  delayed: number;
  /** CloudWatch's ApproximateAgeOfOldestMessage (latest minute); null where none is published (e.g. local mode). */
  oldestAgeSeconds: number | null;
  /** Messages in the type's dead-letter queue. */
  deadLetters: number;
}
