import { randomBytes } from 'node:crypto';
import { ConditionalCheckFailedException } from '@aws-sdk/client-dynamodb';
import { GetCommand, UpdateCommand, type DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { TENANT_ITEM_PREFIX, WEBHOOK_SECRET_OVERLAP_SECONDS } from './contract';

/**
 * A tenant's item in the jobs table (`tenant#<apiKeyId>`): what API Gateway, the registry of
 * tenants, cannot hold. Secrets stay in the table (encrypted at rest, readable only by the
 * functions granted GetItem on it and by the operator's credentials): a Secrets Manager secret
 * per tenant would cost $0.40 a month each and a call per delivery, for no extra isolation.
 */
export interface TenantRecord {
  tenantId: string;
  /** The name given to `offload tenants create` (absent on a key nobody registered yet). */
  name?: string;
  /** Signs webhooks (`whsec_` + 32 random bytes, hex). */
  webhookSecret?: string;
  /** The secret before the last rotation, still signing (a second `v1=`) until previousSecretUntil (epoch s). */
  previousWebhookSecret?: string;
  previousSecretUntil?: number;
}

export const newWebhookSecret = (): string => `whsec_${randomBytes(32).toString('hex')}`;
const itemKey = (tenantId: string) => ({ jobId: `${TENANT_ITEM_PREFIX}${tenantId}` });

export class TenantsRepo {
  constructor(
    private readonly doc: DynamoDBDocumentClient,
    private readonly table: string,
    private readonly now: () => Date = () => new Date(),
  ) {}

  async get(tenantId: string): Promise<TenantRecord | undefined> {
    const out = await this.doc.send(new GetCommand({ TableName: this.table, Key: itemKey(tenantId), ConsistentRead: true }));
    if (!out.Item) return undefined;
    const { jobId, ...rest } = out.Item as Record<string, unknown>;
    return { ...(rest as Omit<TenantRecord, 'tenantId'>), tenantId: String(jobId).slice(TENANT_ITEM_PREFIX.length) };
  }

  /** The secrets a webhook of this tenant is signed with now: the current one first, then a previous one still in its overlap. */
  async signingSecrets(tenantId: string): Promise<string[]> {
    const t = await this.get(tenantId);
    if (!t?.webhookSecret) return [];
    const nowS = Math.floor(this.now().getTime() / 1000);
    return [t.webhookSecret, ...(t.previousWebhookSecret && (t.previousSecretUntil ?? 0) > nowS ? [t.previousWebhookSecret] : [])];
  }

  /** Gives the tenant a webhook secret if it has none (atomic: of two concurrent callers one writes); returns the current one. */
  async ensureSecret(tenantId: string, name?: string): Promise<string> {
    const secret = newWebhookSecret();
    try {
      await this.doc.send(
        new UpdateCommand({
          TableName: this.table,
          Key: itemKey(tenantId),
          UpdateExpression: name ? 'SET webhookSecret = :s, #n = if_not_exists(#n, :n)' : 'SET webhookSecret = :s',
          ConditionExpression: 'attribute_not_exists(webhookSecret)',
          ...(name ? { ExpressionAttributeNames: { '#n': 'name' } } : {}),
          ExpressionAttributeValues: { ':s': secret, ...(name ? { ':n': name } : {}) },
        }),
      );
      return secret;
    } catch (err) {
      if (!(err instanceof ConditionalCheckFailedException)) throw err;
      const t = await this.get(tenantId);
      return t!.webhookSecret!;
    }
  }

  /** Replaces the secret; the old one still signs for WEBHOOK_SECRET_OVERLAP_SECONDS (receivers move over without a gap). */
  async rotateSecret(tenantId: string, name?: string): Promise<string> {
    const secret = newWebhookSecret();
    const until = Math.floor(this.now().getTime() / 1000) + WEBHOOK_SECRET_OVERLAP_SECONDS;
    const old = (await this.get(tenantId))?.webhookSecret;
    await this.doc.send(
      new UpdateCommand({
        TableName: this.table,
        Key: itemKey(tenantId),
        UpdateExpression: `SET webhookSecret = :s${old ? ', previousWebhookSecret = :o, previousSecretUntil = :u' : ''}${name ? ', #n = :n' : ''}`,
        ...(name ? { ExpressionAttributeNames: { '#n': 'name' } } : {}),
        ExpressionAttributeValues: { ':s': secret, ...(old ? { ':o': old, ':u': until } : {}), ...(name ? { ':n': name } : {}) },
      }),
    );
    return secret;
  }
}
