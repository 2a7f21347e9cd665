-- Views for the questions every security team asks, after the monitoring
-- controls of the CIS AWS Foundations Benchmark (section 4 of v1.5 to v3.0;
-- section 3 of v1.2), one view per control. Each view's filter is the
-- control's CloudWatch metric filter written in SQL; failed attempts are
-- included (error_code tells them apart). All of them have the same columns,
-- so that ct_cis_findings can put them together.
--
-- The views are plain filters over cloudtrail_events: a condition on
-- event_time in the query reaches the table, so that only the partitions in
-- range are read. Always bound event_time.
--
-- Reader grants are in 0005_roles.sql; a later migration that adds a view
-- must grant it to the reader itself.

-- CIS 4.1: Unauthorized API calls.
CREATE VIEW ct_unauthorized_calls AS
SELECT event_time, event_id, recipient_account_id, aws_region, event_source, event_name,
    user_identity_type, user_identity_arn, user_identity_access_key_id, source_ip_address,
    user_agent, error_code, error_message, request_parameters, response_elements,
    additional_event_data
FROM cloudtrail_events
WHERE (error_code LIKE '%UnauthorizedOperation' OR error_code LIKE 'AccessDenied%')
  AND source_ip_address IS DISTINCT FROM 'delivery.logs.amazonaws.com'
  AND event_name IS DISTINCT FROM 'HeadBucket';
COMMENT ON VIEW ct_unauthorized_calls IS 'CIS AWS Foundations 4.1 (Unauthorized API calls): API calls refused for want of permission (errorCode *UnauthorizedOperation or AccessDenied*), less the S3 log-delivery service and HeadBucket probes.';

-- CIS 4.2: Management Console sign-in without MFA.
CREATE VIEW ct_console_logins_without_mfa AS
SELECT event_time, event_id, recipient_account_id, aws_region, event_source, event_name,
    user_identity_type, user_identity_arn, user_identity_access_key_id, source_ip_address,
    user_agent, error_code, error_message, request_parameters, response_elements,
    additional_event_data
FROM cloudtrail_events
WHERE event_source = 'signin.amazonaws.com' AND event_name = 'ConsoleLogin'
  AND user_identity_type = 'IAMUser'
  AND response_elements->>'ConsoleLogin' = 'Success'
  AND additional_event_data->>'MFAUsed' IS DISTINCT FROM 'Yes';
COMMENT ON VIEW ct_console_logins_without_mfa IS 'CIS AWS Foundations 4.2 (Management Console sign-in without MFA): Successful console sign-ins of IAM users that did not use MFA.';

-- CIS 4.3: Usage of the root account.
CREATE VIEW ct_root_account_usage AS
SELECT event_time, event_id, recipient_account_id, aws_region, event_source, event_name,
    user_identity_type, user_identity_arn, user_identity_access_key_id, source_ip_address,
    user_agent, error_code, error_message, request_parameters, response_elements,
    additional_event_data
FROM cloudtrail_events
WHERE user_identity_type = 'Root' AND invoked_by IS NULL
  AND event_type IS DISTINCT FROM 'AwsServiceEvent';
COMMENT ON VIEW ct_root_account_usage IS 'CIS AWS Foundations 4.3 (Usage of the root account): Calls made by the account''s root user itself (not by an AWS service on its behalf).';

-- CIS 4.4: IAM policy changes.
CREATE VIEW ct_iam_policy_changes AS
SELECT event_time, event_id, recipient_account_id, aws_region, event_source, event_name,
    user_identity_type, user_identity_arn, user_identity_access_key_id, source_ip_address,
    user_agent, error_code, error_message, request_parameters, response_elements,
    additional_event_data
FROM cloudtrail_events
WHERE event_source = 'iam.amazonaws.com' AND event_name IN (
    'DeleteGroupPolicy', 'DeleteRolePolicy', 'DeleteUserPolicy',
    'PutGroupPolicy', 'PutRolePolicy', 'PutUserPolicy',
    'CreatePolicy', 'DeletePolicy', 'CreatePolicyVersion', 'DeletePolicyVersion',
    'AttachRolePolicy', 'DetachRolePolicy', 'AttachUserPolicy', 'DetachUserPolicy',
    'AttachGroupPolicy', 'DetachGroupPolicy');
COMMENT ON VIEW ct_iam_policy_changes IS 'CIS AWS Foundations 4.4 (IAM policy changes): Creation, change, deletion, attachment and detachment of IAM policies.';

-- CIS 4.5: CloudTrail configuration changes.
CREATE VIEW ct_cloudtrail_changes AS
SELECT event_time, event_id, recipient_account_id, aws_region, event_source, event_name,
    user_identity_type, user_identity_arn, user_identity_access_key_id, source_ip_address,
    user_agent, error_code, error_message, request_parameters, response_elements,
    additional_event_data
FROM cloudtrail_events
WHERE event_source = 'cloudtrail.amazonaws.com' AND event_name IN (
    'CreateTrail', 'UpdateTrail', 'DeleteTrail', 'StartLogging', 'StopLogging',
    'PutEventSelectors', 'PutInsightSelectors');
COMMENT ON VIEW ct_cloudtrail_changes IS 'CIS AWS Foundations 4.5 (CloudTrail configuration changes): Trails created, updated, deleted, started or stopped, and changes to what they record (event and insight selectors).';

-- CIS 4.6: Management Console authentication failures.
CREATE VIEW ct_console_login_failures AS
SELECT event_time, event_id, recipient_account_id, aws_region, event_source, event_name,
    user_identity_type, user_identity_arn, user_identity_access_key_id, source_ip_address,
    user_agent, error_code, error_message, request_parameters, response_elements,
    additional_event_data
FROM cloudtrail_events
WHERE event_source = 'signin.amazonaws.com' AND event_name = 'ConsoleLogin'
  AND (error_message = 'Failed authentication' OR response_elements->>'ConsoleLogin' = 'Failure');
COMMENT ON VIEW ct_console_login_failures IS 'CIS AWS Foundations 4.6 (Management Console authentication failures): Console sign-ins that failed.';

-- CIS 4.7: Disabling or scheduled deletion of customer-managed KMS keys.
CREATE VIEW ct_kms_key_disabled_or_deleted AS
SELECT event_time, event_id, recipient_account_id, aws_region, event_source, event_name,
    user_identity_type, user_identity_arn, user_identity_access_key_id, source_ip_address,
    user_agent, error_code, error_message, request_parameters, response_elements,
    additional_event_data
FROM cloudtrail_events
WHERE event_source = 'kms.amazonaws.com' AND event_name IN ('DisableKey', 'ScheduleKeyDeletion');
COMMENT ON VIEW ct_kms_key_disabled_or_deleted IS 'CIS AWS Foundations 4.7 (Disabling or scheduled deletion of customer-managed KMS keys): KMS keys disabled or scheduled for deletion.';

-- CIS 4.8: S3 bucket policy changes.
CREATE VIEW ct_s3_bucket_policy_changes AS
SELECT event_time, event_id, recipient_account_id, aws_region, event_source, event_name,
    user_identity_type, user_identity_arn, user_identity_access_key_id, source_ip_address,
    user_agent, error_code, error_message, request_parameters, response_elements,
    additional_event_data
FROM cloudtrail_events
WHERE event_source = 's3.amazonaws.com' AND event_name IN (
    'PutBucketAcl', 'PutBucketPolicy', 'PutBucketCors', 'PutBucketLifecycle', 'PutBucketReplication',
    'DeleteBucketPolicy', 'DeleteBucketCors', 'DeleteBucketLifecycle', 'DeleteBucketReplication');
COMMENT ON VIEW ct_s3_bucket_policy_changes IS 'CIS AWS Foundations 4.8 (S3 bucket policy changes): Changes to S3 bucket ACLs, policies, CORS, lifecycle and replication.';

-- CIS 4.9: AWS Config configuration changes.
CREATE VIEW ct_config_changes AS
SELECT event_time, event_id, recipient_account_id, aws_region, event_source, event_name,
    user_identity_type, user_identity_arn, user_identity_access_key_id, source_ip_address,
    user_agent, error_code, error_message, request_parameters, response_elements,
    additional_event_data
FROM cloudtrail_events
WHERE event_source = 'config.amazonaws.com' AND event_name IN (
    'StopConfigurationRecorder', 'DeleteDeliveryChannel', 'PutDeliveryChannel', 'PutConfigurationRecorder');
COMMENT ON VIEW ct_config_changes IS 'CIS AWS Foundations 4.9 (AWS Config configuration changes): AWS Config recorders stopped or changed, delivery channels changed or deleted.';

-- CIS 4.10: Security group changes.
CREATE VIEW ct_security_group_changes AS
SELECT event_time, event_id, recipient_account_id, aws_region, event_source, event_name,
    user_identity_type, user_identity_arn, user_identity_access_key_id, source_ip_address,
    user_agent, error_code, error_message, request_parameters, response_elements,
    additional_event_data
FROM cloudtrail_events
WHERE event_source = 'ec2.amazonaws.com' AND event_name IN (
    'AuthorizeSecurityGroupIngress', 'AuthorizeSecurityGroupEgress',
    'RevokeSecurityGroupIngress', 'RevokeSecurityGroupEgress',
    'CreateSecurityGroup', 'DeleteSecurityGroup');
COMMENT ON VIEW ct_security_group_changes IS 'CIS AWS Foundations 4.10 (Security group changes): EC2 security groups created, deleted, or their rules changed.';

-- CIS 4.11: Network ACL changes.
CREATE VIEW ct_nacl_changes AS
SELECT event_time, event_id, recipient_account_id, aws_region, event_source, event_name,
    user_identity_type, user_identity_arn, user_identity_access_key_id, source_ip_address,
    user_agent, error_code, error_message, request_parameters, response_elements,
    additional_event_data
FROM cloudtrail_events
WHERE event_source = 'ec2.amazonaws.com' AND event_name IN (
    'CreateNetworkAcl', 'CreateNetworkAclEntry', 'DeleteNetworkAcl', 'DeleteNetworkAclEntry',
    'ReplaceNetworkAclEntry', 'ReplaceNetworkAclAssociation');
COMMENT ON VIEW ct_nacl_changes IS 'CIS AWS Foundations 4.11 (Network ACL changes): Network ACLs and their entries created, replaced or deleted.';

-- CIS 4.12: Network gateway changes.
CREATE VIEW ct_network_gateway_changes AS
SELECT event_time, event_id, recipient_account_id, aws_region, event_source, event_name,
    user_identity_type, user_identity_arn, user_identity_access_key_id, source_ip_address,
    user_agent, error_code, error_message, request_parameters, response_elements,
    additional_event_data
FROM cloudtrail_events
WHERE event_source = 'ec2.amazonaws.com' AND event_name IN (
    'CreateCustomerGateway', 'DeleteCustomerGateway', 'AttachInternetGateway',
    'CreateInternetGateway', 'DeleteInternetGateway', 'DetachInternetGateway');
COMMENT ON VIEW ct_network_gateway_changes IS 'CIS AWS Foundations 4.12 (Network gateway changes): Internet and customer gateways created, attached, detached or deleted.';

-- CIS 4.13: Route table changes.
CREATE VIEW ct_route_table_changes AS
SELECT event_time, event_id, recipient_account_id, aws_region, event_source, event_name,
    user_identity_type, user_identity_arn, user_identity_access_key_id, source_ip_address,
    user_agent, error_code, error_message, request_parameters, response_elements,
    additional_event_data
FROM cloudtrail_events
WHERE event_source = 'ec2.amazonaws.com' AND event_name IN (
    'CreateRoute', 'CreateRouteTable', 'ReplaceRoute', 'ReplaceRouteTableAssociation',
    'DeleteRouteTable', 'DeleteRoute', 'DisassociateRouteTable');
COMMENT ON VIEW ct_route_table_changes IS 'CIS AWS Foundations 4.13 (Route table changes): Route tables and routes created, replaced, deleted or (dis)associated.';

-- CIS 4.14: VPC changes.
CREATE VIEW ct_vpc_changes AS
SELECT event_time, event_id, recipient_account_id, aws_region, event_source, event_name,
    user_identity_type, user_identity_arn, user_identity_access_key_id, source_ip_address,
    user_agent, error_code, error_message, request_parameters, response_elements,
    additional_event_data
FROM cloudtrail_events
WHERE event_source = 'ec2.amazonaws.com' AND event_name IN (
    'CreateVpc', 'DeleteVpc', 'ModifyVpcAttribute',
    'AcceptVpcPeeringConnection', 'CreateVpcPeeringConnection', 'DeleteVpcPeeringConnection',
    'RejectVpcPeeringConnection', 'AttachClassicLinkVpc', 'DetachClassicLinkVpc',
    'DisableVpcClassicLink', 'EnableVpcClassicLink');
COMMENT ON VIEW ct_vpc_changes IS 'CIS AWS Foundations 4.14 (VPC changes): VPCs created, deleted or modified, peering connections and ClassicLink changes.';

-- CIS 4.15: AWS Organizations changes.
CREATE VIEW ct_organizations_changes AS
SELECT event_time, event_id, recipient_account_id, aws_region, event_source, event_name,
    user_identity_type, user_identity_arn, user_identity_access_key_id, source_ip_address,
    user_agent, error_code, error_message, request_parameters, response_elements,
    additional_event_data
FROM cloudtrail_events
WHERE event_source = 'organizations.amazonaws.com' AND event_name IN (
    'AcceptHandshake', 'AttachPolicy', 'CreateAccount', 'CreateOrganizationalUnit', 'CreatePolicy',
    'DeclineHandshake', 'DeleteOrganization', 'DeleteOrganizationalUnit', 'DeletePolicy', 'DetachPolicy',
    'DisablePolicyType', 'EnablePolicyType', 'InviteAccountToOrganization', 'LeaveOrganization',
    'MoveAccount', 'RemoveAccountFromOrganization', 'UpdatePolicy', 'UpdateOrganizationalUnit');
COMMENT ON VIEW ct_organizations_changes IS 'CIS AWS Foundations 4.15 (AWS Organizations changes): Changes to the organization: accounts, organizational units, policies and handshakes.';

-- ct_cis_findings is every view above in one, with the control's number
-- (CIS v1.5 to v3.0 numbering) and the view's name without its prefix.
CREATE VIEW ct_cis_findings (cis_control, finding, event_time, event_id, recipient_account_id, aws_region, event_source, event_name,
    user_identity_type, user_identity_arn, user_identity_access_key_id, source_ip_address,
    user_agent, error_code, error_message, request_parameters, response_elements,
    additional_event_data) AS
SELECT '4.1'::text, 'unauthorized_calls'::text, * FROM ct_unauthorized_calls
UNION ALL
SELECT '4.2'::text, 'console_logins_without_mfa'::text, * FROM ct_console_logins_without_mfa
UNION ALL
SELECT '4.3'::text, 'root_account_usage'::text, * FROM ct_root_account_usage
UNION ALL
SELECT '4.4'::text, 'iam_policy_changes'::text, * FROM ct_iam_policy_changes
UNION ALL
SELECT '4.5'::text, 'cloudtrail_changes'::text, * FROM ct_cloudtrail_changes
UNION ALL
SELECT '4.6'::text, 'console_login_failures'::text, * FROM ct_console_login_failures
UNION ALL
SELECT '4.7'::text, 'kms_key_disabled_or_deleted'::text, * FROM ct_kms_key_disabled_or_deleted
UNION ALL
SELECT '4.8'::text, 's3_bucket_policy_changes'::text, * FROM ct_s3_bucket_policy_changes
UNION ALL
SELECT '4.9'::text, 'config_changes'::text, * FROM ct_config_changes
UNION ALL
SELECT '4.10'::text, 'security_group_changes'::text, * FROM ct_security_group_changes
UNION ALL
SELECT '4.11'::text, 'nacl_changes'::text, * FROM ct_nacl_changes
UNION ALL
SELECT '4.12'::text, 'network_gateway_changes'::text, * FROM ct_network_gateway_changes
UNION ALL
SELECT '4.13'::text, 'route_table_changes'::text, * FROM ct_route_table_changes
UNION ALL
SELECT '4.14'::text, 'vpc_changes'::text, * FROM ct_vpc_changes
UNION ALL
SELECT '4.15'::text, 'organizations_changes'::text, * FROM ct_organizations_changes;
COMMENT ON VIEW ct_cis_findings IS 'Every CIS monitoring view (ct_*) in one, labelled by control.';
