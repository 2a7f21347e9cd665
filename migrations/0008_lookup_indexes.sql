-- What CloudTrail's LookupEvents API needs (pgtrail serve, pgtrail lookup;
-- docs/lookup.md): the two attributes that CloudTrail derives from a record
-- rather than copies, as functions, and an index for each lookup attribute
-- that 0003 does not already serve.
--
-- The derivations live here, once: the indexes are built on them, and the
-- lookup query selects them for its answer, so that what a lookup matches
-- and what it shows cannot disagree.

-- pgtrail_lookup_username is the Username of LookupEvents, inferred from
-- CloudTrail's own answers (docs/lookup.md, "Username and Resources"):
--
--  * the root user: "root";
--  * an assumed role or a federated user: the session's name, the last
--    part of the ARN (arn:aws:sts::…:assumed-role/Role/alice → alice), or
--    what follows the colon of the principal ID when there is no ARN;
--  * anyone else (IAM users, SAML and web-identity users, Identity Center
--    users, failed sign-ins): userIdentity.userName;
--  * nobody (NULL) when the record has none, as for a service's own events.
--
-- It is not user_identity_user_name, which is empty for assumed roles.
-- split_part, not a regular expression: it runs for every stored event (the
-- index), and a regular expression cost the writer a fifth more CPU per row.
CREATE OR REPLACE FUNCTION pgtrail_lookup_username(identity_type text, user_name text, arn text, principal_id text)
RETURNS text LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT CASE
        WHEN identity_type = 'Root' THEN 'root'
        WHEN identity_type IN ('AssumedRole', 'FederatedUser') THEN
            coalesce(nullif(CASE WHEN strpos(arn, '/') > 0 THEN split_part(arn, '/', -1) END, ''),
                     nullif(split_part(principal_id, ':', 2), ''))
        ELSE nullif(user_name, '')
    END
$$;

-- pgtrail_lookup_resource_source tells the services whose identifier fields
-- pgtrail_lookup_resources knows: the events of any other service get their
-- resources from the record's resources array only, so that neither the
-- derivation nor its index costs the writer anything for them.
CREATE OR REPLACE FUNCTION pgtrail_lookup_resource_source(event_source text)
RETURNS boolean LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT event_source IN ('ec2.amazonaws.com', 'iam.amazonaws.com', 's3.amazonaws.com', 'cloudtrail.amazonaws.com',
        'kms.amazonaws.com', 'lambda.amazonaws.com', 'dynamodb.amazonaws.com', 'rds.amazonaws.com',
        'cloudformation.amazonaws.com', 'sns.amazonaws.com', 'sqs.amazonaws.com', 'autoscaling.amazonaws.com',
        'elasticloadbalancing.amazonaws.com', 'secretsmanager.amazonaws.com', 'config.amazonaws.com')
$$;

-- pgtrail_lookup_resource_keys derives the Resources of LookupEvents, as
-- text keys, each once: for each resource "t:" and its type, "n:" and its
-- name, and "p:", its type, a space and its name. The resources index holds
-- them (a GIN index on a text array answers containment exactly: a lookup
-- does not derive the resources again for every candidate row, as
-- jsonb_path_ops's lossy hashes would make it), and the answer's Resources
-- are the "p:" keys. The resources are:
--
--  * every entry of the record's own resources array (type, ARN);
--  * for an event that is not read-only, of a service the table below
--    knows, every string value (or string in an array value) of a known
--    identifier field of that service, at any depth of requestParameters and
--    responseElements: instanceId is an AWS::EC2::Instance in
--    ec2.amazonaws.com's events; groupName an EC2 security group there and
--    an IAM group in iam.amazonaws.com's.
--
-- CloudTrail's own table is not published; this one reproduces the real
-- export in the corpus and covers the services of the CIS views. Extend it
-- with a migration that replaces the function and rebuilds the index.
-- Created through EXECUTE so that the call of pgtrail_lookup_resource_source
-- names pgtrail's schema: the function runs while a partition's indexes
-- are built inside pgtrail_ensure_partition, whose search_path is only
-- pg_catalog, pg_temp (0007).
DO $do$ BEGIN EXECUTE replace($f$
CREATE OR REPLACE FUNCTION pgtrail_lookup_resource_keys(read_only boolean, event_source text,
    request_parameters jsonb, response_elements jsonb, resources jsonb)
RETURNS text[] LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT coalesce(array_agg(DISTINCT k), '{}')
    FROM (
        SELECT r->>'type' AS t, r->>'ARN' AS n
        FROM jsonb_array_elements(CASE WHEN jsonb_typeof(resources) = 'array' THEN resources END) r
        WHERE jsonb_typeof(r) = 'object' AND r->>'type' IS NOT NULL AND r->>'ARN' IS NOT NULL
        UNION
        SELECT m.t, v #>> '{}'
        FROM unnest(CASE WHEN read_only IS NOT TRUE AND @schema@.pgtrail_lookup_resource_source(event_source)
                          THEN ARRAY[request_parameters, response_elements] END) d(doc)
        CROSS JOIN LATERAL jsonb_path_query(d.doc,
            'strict $.** ? (@.type() == "object").keyvalue() ? (@.key like_regex "^(instanceId|imageId|vpcId|subnetId|networkInterfaceId|keyName|groupId|groupName|volumeId|snapshotId|internetGatewayId|routeTableId|networkAclId|natGatewayId|allocationId|userName|roleName|policyArn|accessKeyId|instanceProfileName|bucketName|trailName|name|keyId|functionName|tableName|dBInstanceIdentifier|dBClusterIdentifier|dBSnapshotIdentifier|stackName|topicArn|queueUrl|autoScalingGroupName|loadBalancerName|secretId|configurationRecorderName|deliveryChannelName)$")') kv
        JOIN (VALUES
            ('instanceId', 'AWS::EC2::Instance', 'ec2.amazonaws.com'),
            ('imageId', 'AWS::EC2::Ami', 'ec2.amazonaws.com'),
            ('vpcId', 'AWS::EC2::VPC', 'ec2.amazonaws.com'),
            ('subnetId', 'AWS::EC2::Subnet', 'ec2.amazonaws.com'),
            ('networkInterfaceId', 'AWS::EC2::NetworkInterface', 'ec2.amazonaws.com'),
            ('keyName', 'AWS::EC2::KeyPair', 'ec2.amazonaws.com'),
            ('groupId', 'AWS::EC2::SecurityGroup', 'ec2.amazonaws.com'),
            ('groupName', 'AWS::EC2::SecurityGroup', 'ec2.amazonaws.com'),
            ('volumeId', 'AWS::EC2::Volume', 'ec2.amazonaws.com'),
            ('snapshotId', 'AWS::EC2::Snapshot', 'ec2.amazonaws.com'),
            ('internetGatewayId', 'AWS::EC2::InternetGateway', 'ec2.amazonaws.com'),
            ('routeTableId', 'AWS::EC2::RouteTable', 'ec2.amazonaws.com'),
            ('networkAclId', 'AWS::EC2::NetworkAcl', 'ec2.amazonaws.com'),
            ('natGatewayId', 'AWS::EC2::NatGateway', 'ec2.amazonaws.com'),
            ('allocationId', 'AWS::EC2::EIP', 'ec2.amazonaws.com'),
            ('userName', 'AWS::IAM::User', 'iam.amazonaws.com'),
            ('roleName', 'AWS::IAM::Role', 'iam.amazonaws.com'),
            ('groupName', 'AWS::IAM::Group', 'iam.amazonaws.com'),
            ('policyArn', 'AWS::IAM::Policy', 'iam.amazonaws.com'),
            ('accessKeyId', 'AWS::IAM::AccessKey', 'iam.amazonaws.com'),
            ('instanceProfileName', 'AWS::IAM::InstanceProfile', 'iam.amazonaws.com'),
            ('bucketName', 'AWS::S3::Bucket', 's3.amazonaws.com'),
            ('trailName', 'AWS::CloudTrail::Trail', 'cloudtrail.amazonaws.com'),
            ('name', 'AWS::CloudTrail::Trail', 'cloudtrail.amazonaws.com'),
            ('keyId', 'AWS::KMS::Key', 'kms.amazonaws.com'),
            ('functionName', 'AWS::Lambda::Function', 'lambda.amazonaws.com'),
            ('tableName', 'AWS::DynamoDB::Table', 'dynamodb.amazonaws.com'),
            ('dBInstanceIdentifier', 'AWS::RDS::DBInstance', 'rds.amazonaws.com'),
            ('dBClusterIdentifier', 'AWS::RDS::DBCluster', 'rds.amazonaws.com'),
            ('dBSnapshotIdentifier', 'AWS::RDS::DBSnapshot', 'rds.amazonaws.com'),
            ('stackName', 'AWS::CloudFormation::Stack', 'cloudformation.amazonaws.com'),
            ('topicArn', 'AWS::SNS::Topic', 'sns.amazonaws.com'),
            ('queueUrl', 'AWS::SQS::Queue', 'sqs.amazonaws.com'),
            ('autoScalingGroupName', 'AWS::AutoScaling::AutoScalingGroup', 'autoscaling.amazonaws.com'),
            ('loadBalancerName', 'AWS::ElasticLoadBalancing::LoadBalancer', 'elasticloadbalancing.amazonaws.com'),
            ('secretId', 'AWS::SecretsManager::Secret', 'secretsmanager.amazonaws.com'),
            ('configurationRecorderName', 'AWS::Config::ConfigurationRecorder', 'config.amazonaws.com'),
            ('deliveryChannelName', 'AWS::Config::DeliveryChannel', 'config.amazonaws.com')
        ) m(k, t, src) ON m.k = kv->>'key' AND m.src = event_source
        CROSS JOIN LATERAL jsonb_array_elements(
            CASE WHEN jsonb_typeof(kv->'value') = 'array' THEN kv->'value' ELSE jsonb_build_array(kv->'value') END) v
        WHERE jsonb_typeof(v) = 'string' AND v #>> '{}' <> ''
    ) x,
    LATERAL (VALUES ('t:' || t), ('n:' || n), ('p:' || t || ' ' || n)) v(k)
$$
$f$, '@schema@', quote_ident(current_schema())); END $do$;

-- pgtrail_lookup_resources is the Resources of LookupEvents as JSON, for
-- people writing SQL: an array of {"ResourceType", "ResourceName"} objects,
-- sorted, from the "p:" keys (a type has no space). The lookup itself reads
-- the keys and makes the JSON in Go: a SQL function that calls another
-- with a FROM clause plans it again on every call (measured: 660 µs a row,
-- against 65 for the keys alone).
CREATE OR REPLACE FUNCTION pgtrail_lookup_resources(read_only boolean, event_source text,
    request_parameters jsonb, response_elements jsonb, resources jsonb)
RETURNS jsonb LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT (SELECT coalesce(jsonb_agg(jsonb_build_object('ResourceType', split_part(p, ' ', 1),
                                                         'ResourceName', substr(p, strpos(p, ' ') + 1)) ORDER BY p COLLATE "C"), '[]'::jsonb)
            FROM unnest(pgtrail_lookup_resource_keys(read_only, event_source, request_parameters, response_elements, resources)) k,
                 LATERAL (SELECT substr(k, 3) AS p) x
            WHERE k LIKE 'p:%')
$$;

-- pgtrail_lookup_resources_indexed tells the events that can have
-- resources by the rules above: those with a resources array, and the
-- writes of a service the table knows, data events left out. It is
-- PL/pgSQL so that the planner takes it as one opaque condition, which a
-- lookup repeats word for word: spelled out, proving that a query implies
-- the index's predicate took it 2 ms per partition.
-- Created through EXECUTE so that the call of pgtrail_lookup_resource_source
-- names pgtrail's schema: the function runs while a partition's indexes
-- are built inside pgtrail_ensure_partition, whose search_path is only
-- pg_catalog, pg_temp (0007).
DO $do$ BEGIN EXECUTE replace($f$
CREATE OR REPLACE FUNCTION pgtrail_lookup_resources_indexed(management_event boolean, read_only boolean,
    event_source text, resources jsonb)
RETURNS boolean LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE AS $$
BEGIN
    RETURN management_event IS NOT FALSE
        AND (resources IS NOT NULL OR (read_only IS NOT TRUE AND @schema@.pgtrail_lookup_resource_source(event_source)));
END
$$
$f$, '@schema@', quote_ident(current_schema())); END $do$;

-- The indexes, measured in docs/lookup.md ("What the indexes cost"):
--
--  * Username: a B-tree on the derivation and event_time, like the
--    principal index of 0003: "the latest 50" reads it backwards and stops.
--  * EventSource: the same shape; a few hundred values, but the rare ones
--    (cloudtrail.amazonaws.com) are what people look up.
--  * ResourceType and ResourceName: one GIN index on the derived keys
--    serves both. It is partial: by the rules above, only an event with a
--    resources array, or a write to a service the table knows, can have
--    resources, and data events (managementEvent false) are no lookup's;
--    every other event costs the writer neither the derivation nor an index
--    entry. The lookup query repeats the predicate so that the planner can
--    use the index.
--  * EventCategory insight: Insights events are rare; a partial index on
--    event_time finds them without reading the others.
--
-- EventId (the primary key), EventName (0003's event_name), AccessKeyId
-- (0003's access-key index) are served already, and ReadOnly has two
-- values: the newest day partition answers it.
--
-- Each is created on the partitioned table, so that every partition gets its
-- own. On a database that already holds events, this migration builds them
-- for every partition while writers wait (readers do not): see
-- docs/lookup.md for how long that took on five million events, and how to
-- build them beforehand, concurrently, so that this migration finds them
-- (IF NOT EXISTS) and only records itself.
CREATE INDEX IF NOT EXISTS cloudtrail_events_lookup_username ON cloudtrail_events
    (pgtrail_lookup_username(user_identity_type, user_identity_user_name, user_identity_arn, user_identity_principal_id), event_time);
CREATE INDEX IF NOT EXISTS cloudtrail_events_lookup_source ON cloudtrail_events (event_source, event_time);
CREATE INDEX IF NOT EXISTS cloudtrail_events_lookup_resources ON cloudtrail_events
    USING gin (pgtrail_lookup_resource_keys(read_only, event_source, request_parameters, response_elements, resources))
    WHERE pgtrail_lookup_resources_indexed(management_event, read_only, event_source, resources);
CREATE INDEX IF NOT EXISTS cloudtrail_events_lookup_insights ON cloudtrail_events (event_time)
    WHERE event_type = 'AwsCloudTrailInsight';
