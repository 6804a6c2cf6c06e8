/**
 * The AWS simulator: EC2 DescribeInstances/DescribeVpcs/DescribeSubnets in the EC2 Query wire
 * format the unmodified `@aws-sdk/client-ec2` reads, and the IMDSv2 metadata service, over the
 * shared SimStore, Faults and /_sim/ admin interface. See cloud-sim/README.md, "AWS".
 */
export { startAwsSim, type AwsSim, type AwsSimOptions } from "./server.js";
export { handleEc2, parseCredentialScope, renderInstance, Ec2ApiError, EC2_NAMESPACE, EC2_STATE_CODES, type Ec2ApiOptions } from "./ec2.js";
export { createImdsHandler, awsIdentityDocument, type ImdsOptions } from "./imds.js";
export { createAwsIdentitySigner, type AwsIdentitySigner } from "./identity.js";
