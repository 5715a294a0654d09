import { Duration, RemovalPolicy, Stack } from 'aws-cdk-lib';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as kms from 'aws-cdk-lib/aws-kms';
import * as sns from 'aws-cdk-lib/aws-sns';
import * as subs from 'aws-cdk-lib/aws-sns-subscriptions';
import { Construct } from 'constructs';

/** What key administrators may do (the console's "key administrators" set), by name. */
const KEY_ADMIN_ACTIONS = [
  'kms:CreateAlias', 'kms:CreateGrant', 'kms:DescribeKey', 'kms:EnableKey', 'kms:EnableKeyRotation', 'kms:ListAliases',
  'kms:ListGrants', 'kms:ListKeyPolicies', 'kms:ListResourceTags', 'kms:PutKeyPolicy', 'kms:UpdateAlias',
  'kms:UpdateKeyDescription', 'kms:RevokeGrant', 'kms:RetireGrant', 'kms:DisableKey', 'kms:DisableKeyRotation',
  'kms:GetKeyPolicy', 'kms:GetKeyRotationStatus', 'kms:DeleteAlias', 'kms:TagResource', 'kms:UntagResource',
  'kms:ScheduleKeyDeletion', 'kms:CancelKeyDeletion',
];

export interface NotificationsProps {
  notifyEmail: string;
  alarmEmail: string;
  removalPolicy: RemovalPolicy;
}

/**
 * The job-completion topic (clients subscribe, filtering on the `type` and `status`
 * message attributes) and the alarm topic. Both are encrypted with one customer-managed
 * KMS key (rotated yearly): CloudWatch alarms cannot publish to a topic under the
 * AWS-managed SNS key, so the key's policy lets CloudWatch use it. Both topics refuse
 * non-TLS publishers and subscribers.
 */
export class Notifications extends Construct {
  readonly key: kms.Key;
  readonly completionTopic: sns.Topic;
  readonly alarmTopic: sns.Topic;

  constructor(scope: Construct, id: string, props: NotificationsProps) {
    super(scope, id);
    this.key = new kms.Key(this, 'Key', {
      description: 'offload: encrypts the completion and alarm topics',
      enableKeyRotation: true,
      pendingWindow: Duration.days(7),
      removalPolicy: props.removalPolicy,
      // The default key policy gives the account `kms:*`; this one names the actions.
      policy: new iam.PolicyDocument({
        statements: [
          new iam.PolicyStatement({
            sid: 'KeyAdministration',
            principals: [new iam.AccountRootPrincipal()],
            actions: KEY_ADMIN_ACTIONS,
            resources: ['*'],
          }),
          new iam.PolicyStatement({
            sid: 'AllowIamPoliciesToUseTheKey',
            principals: [new iam.AccountRootPrincipal()],
            actions: ['kms:Encrypt', 'kms:Decrypt', 'kms:ReEncryptFrom', 'kms:ReEncryptTo', 'kms:GenerateDataKey', 'kms:DescribeKey'],
            resources: ['*'],
          }),
        ],
      }),
    });
    // CloudWatch alarms of this account only (a confused-deputy guard): the alarms publish to the alarm topic under this key.
    this.key.addToResourcePolicy(
      new iam.PolicyStatement({
        sid: 'AllowCloudWatchAlarmsOfThisAccount',
        principals: [new iam.ServicePrincipal('cloudwatch.amazonaws.com')],
        actions: ['kms:Decrypt', 'kms:GenerateDataKey'],
        resources: ['*'],
        conditions: {
          StringEquals: { 'aws:SourceAccount': Stack.of(this).account },
          ArnLike: { 'aws:SourceArn': `arn:${Stack.of(this).partition}:cloudwatch:${Stack.of(this).region}:${Stack.of(this).account}:alarm:*` },
        },
      }),
    );

    this.completionTopic = new sns.Topic(this, 'Completion', {
      displayName: 'offload job completions',
      masterKey: this.key,
      enforceSSL: true,
    });
    this.alarmTopic = new sns.Topic(this, 'Alarms', {
      displayName: 'offload alarms',
      masterKey: this.key,
      enforceSSL: true,
    });
    if (props.notifyEmail) this.completionTopic.addSubscription(new subs.EmailSubscription(props.notifyEmail));
    if (props.alarmEmail) this.alarmTopic.addSubscription(new subs.EmailSubscription(props.alarmEmail));
  }

  /** Publish rights on the completion topic: sns:Publish plus the key operations it needs. */
  grantPublish(grantee: iam.IGrantable): void {
    grantee.grantPrincipal.addToPrincipalPolicy(
      new iam.PolicyStatement({ actions: ['sns:Publish'], resources: [this.completionTopic.topicArn] }),
    );
    grantee.grantPrincipal.addToPrincipalPolicy(
      new iam.PolicyStatement({ actions: ['kms:GenerateDataKey', 'kms:Decrypt'], resources: [this.key.keyArn] }),
    );
  }
}
