-- Fills bench_gen, an unlogged table shaped like cloudtrail_events, with
-- :rows synthetic events spread over the :days days that end now, in rough
-- time order (as a live trail delivers them). Cardinalities follow a busy
-- organisation: 20 accounts, 17 regions, ~200 APIs with a long tail,
-- ~2,000 principals, ~20,000 access keys, ~10,000 source IPs, 5% errors,
-- 10% of events naming resources, records of ~1.3 KB like the corpus's.
--
--   psql -v rows=5000000 -v days=30 -f docs/bench/generate.sql
\set ON_ERROR_STOP on
\timing on

DROP TABLE IF EXISTS bench_gen;
CREATE UNLOGGED TABLE bench_gen (LIKE cloudtrail_events);

CREATE TEMP TABLE api (i int PRIMARY KEY, source text, name text);
INSERT INTO api
SELECT row_number() OVER () - 1, s, n FROM (VALUES
  ('sts.amazonaws.com','AssumeRole'),('s3.amazonaws.com','GetObject'),('kms.amazonaws.com','Decrypt'),
  ('ec2.amazonaws.com','DescribeInstances'),('s3.amazonaws.com','PutObject'),('sts.amazonaws.com','GetCallerIdentity'),
  ('logs.amazonaws.com','PutLogEvents'),('kms.amazonaws.com','GenerateDataKey'),('dynamodb.amazonaws.com','GetItem'),
  ('ssm.amazonaws.com','DescribeInstanceInformation'),('s3.amazonaws.com','ListObjects'),('lambda.amazonaws.com','Invoke'),
  ('secretsmanager.amazonaws.com','GetSecretValue'),('ec2.amazonaws.com','DescribeSecurityGroups'),
  ('iam.amazonaws.com','GetRole'),('s3.amazonaws.com','HeadBucket'),('ssm.amazonaws.com','GetParameters'),
  ('ec2.amazonaws.com','DescribeVolumes'),('monitoring.amazonaws.com','PutMetricData'),('sqs.amazonaws.com','ReceiveMessage')
) v(s, n);
-- The long tail: 180 more APIs, the rarest of them the ones the CIS views watch.
INSERT INTO api
SELECT i, 'svc' || (i % 40) || '.amazonaws.com', 'Api' || i FROM generate_series(20, 181) i;
INSERT INTO api
SELECT 182 + row_number() OVER () - 1, s, n FROM (VALUES
  ('signin.amazonaws.com','ConsoleLogin'),('cloudtrail.amazonaws.com','StopLogging'),('cloudtrail.amazonaws.com','DeleteTrail'),
  ('cloudtrail.amazonaws.com','UpdateTrail'),('cloudtrail.amazonaws.com','PutEventSelectors'),('kms.amazonaws.com','DisableKey'),
  ('kms.amazonaws.com','ScheduleKeyDeletion'),('s3.amazonaws.com','PutBucketPolicy'),('config.amazonaws.com','StopConfigurationRecorder'),
  ('ec2.amazonaws.com','AuthorizeSecurityGroupIngress'),('ec2.amazonaws.com','CreateNetworkAclEntry'),
  ('ec2.amazonaws.com','AttachInternetGateway'),('ec2.amazonaws.com','CreateRoute'),('ec2.amazonaws.com','CreateVpc'),
  ('organizations.amazonaws.com','LeaveOrganization'),('iam.amazonaws.com','PutUserPolicy'),('iam.amazonaws.com','AttachRolePolicy'),
  ('iam.amazonaws.com','CreateAccessKey')
) v(s, n);

INSERT INTO bench_gen
SELECT
    gen_random_uuid()::text,
    -- rough time order: position in the run plus up to 15 minutes of jitter
    now() - make_interval(days => :days) + (g::float8 / :rows) * make_interval(days => :days)
        - random() * interval '15 minutes',
    '1.08', a.source, a.name, 'AwsApiCall', 'Management',
    (ARRAY['us-east-1','us-east-2','us-west-1','us-west-2','eu-west-1','eu-west-2','eu-west-3','eu-central-1',
           'eu-north-1','ap-south-1','ap-northeast-1','ap-northeast-2','ap-southeast-1','ap-southeast-2',
           'ca-central-1','sa-east-1','me-south-1'])[1 + (g % 17)],
    CASE WHEN g % 10 = 0 THEN a.source
         ELSE (11 + ip % 200) || '.' || (ip / 200 % 250) || '.' || (ip % 7) || '.' || (ip % 250) END,
    'aws-sdk-go-v2/1.30.' || (g % 9) || ' os/linux lang/go#1.22',
    CASE WHEN p % 50 = 0 THEN 'IAMUser' ELSE 'AssumedRole' END,
    CASE WHEN p % 50 = 0 THEN 'arn:aws:iam::' || acct || ':user/user-' || p
         ELSE 'arn:aws:sts::' || acct || ':assumed-role/role-' || p || '/session-' || (g % 97) END,
    acct,
    'AROA' || lpad(p::text, 17, '0'),
    (CASE WHEN p % 50 = 0 THEN 'AKIA' ELSE 'ASIA' END) || lpad(k::text, 16, '0'),
    CASE WHEN p % 50 = 0 THEN 'user-' || p END,
    CASE WHEN p % 50 <> 0 THEN 'arn:aws:iam::' || acct || ':role/role-' || p END,
    (g % 3 = 0),
    NULL,
    CASE WHEN g % 20 = 0 THEN (ARRAY['AccessDenied','Client.UnauthorizedOperation','ThrottlingException',
                                     'NoSuchEntity','ResourceNotFoundException'])[1 + (g / 20 % 5)] END,
    CASE WHEN g % 20 = 0 THEN 'User is not authorized to perform this operation' END,
    gen_random_uuid()::text,
    a.name LIKE 'Describe%' OR a.name LIKE 'Get%' OR a.name LIKE 'List%',
    true,
    acct,
    NULL, NULL,
    jsonb_build_object('bucketName', 'bucket-' || (p % 300), 'key', 'path/to/object-' || g),
    NULL, NULL,
    CASE WHEN g % 10 = 3 THEN jsonb_build_array(jsonb_build_object(
        'ARN', 'arn:aws:s3:::bucket-' || (p % 300) || '/path/to/object-' || g, 'accountId', acct,
        'type', 'AWS::S3::Object')) END,
    jsonb_build_object('eventVersion', '1.08', 'eventSource', a.source, 'eventName', a.name,
        'awsRegion', 'us-east-1', 'sourceIPAddress', '203.0.113.' || (ip % 250),
        'userAgent', 'aws-sdk-go-v2/1.30.0 os/linux lang/go#1.22 md/GOOS#linux md/GOARCH#amd64',
        'userIdentity', jsonb_build_object('type', 'AssumedRole', 'principalId', 'AROA' || lpad(p::text, 17, '0'),
            'arn', 'arn:aws:sts::' || acct || ':assumed-role/role-' || p || '/session',
            'accountId', acct, 'accessKeyId', 'ASIA' || lpad(k::text, 16, '0'),
            'sessionContext', jsonb_build_object('sessionIssuer', jsonb_build_object('type', 'Role',
                'arn', 'arn:aws:iam::' || acct || ':role/role-' || p, 'accountId', acct),
                'attributes', jsonb_build_object('creationDate', '2024-01-01T00:00:00Z', 'mfaAuthenticated', 'false'))),
        'requestParameters', jsonb_build_object('bucketName', 'bucket-' || (p % 300), 'key', 'path/to/object-' || g),
        'responseElements', NULL,
        'additionalEventData', jsonb_build_object('SignatureVersion', 'SigV4', 'CipherSuite', 'TLS_AES_128_GCM_SHA256',
            'bytesTransferredIn', 0, 'AuthenticationMethod', 'AuthHeader', 'x-amz-id-2', md5(g::text) || md5((g + 1)::text)),
        'requestID', md5(g::text), 'eventID', md5((g * 7)::text), 'readOnly', true,
        'tlsDetails', jsonb_build_object('tlsVersion', 'TLSv1.3', 'cipherSuite', 'TLS_AES_128_GCM_SHA256',
            'clientProvidedHostHeader', 'bucket.s3.us-east-1.amazonaws.com'),
        'eventType', 'AwsApiCall', 'managementEvent', true, 'recipientAccountId', acct, 'eventCategory', 'Management'),
    'pgtrail-bench',
    'AWSLogs/' || acct || '/CloudTrail/us-east-1/' || to_char(now(), 'YYYY/MM/DD') || '/' || acct || '_CloudTrail_' || (g / 500) || '.json.gz',
    now()
FROM generate_series(0, :rows - 1) g
CROSS JOIN LATERAL (SELECT
    floor(2000 * random() ^ 2)::int AS p,                       -- principal, skewed
    floor(20000 * random())::int AS k,                           -- access key
    floor(10000 * random() ^ 2)::int AS ip,                      -- source IP, skewed
    lpad((100000000000 + (g % 20) * 7919)::text, 12, '0') AS acct,
    floor(200 * random() ^ 4)::int AS ai) r
JOIN api a ON a.i = r.ai;

ANALYZE bench_gen;
SELECT count(*) AS rows, pg_size_pretty(pg_total_relation_size('bench_gen')) AS size,
       min(event_time), max(event_time) FROM bench_gen;
